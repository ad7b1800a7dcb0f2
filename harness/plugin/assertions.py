"""The plugin's assertions, where they have always been imported from.

They live in :mod:`harness.server.verdicts` now, beside the view that uses them
(:mod:`harness.server.view`), so `async with FakeSES(...)` gives the same assertions as the
fixture without the server importing the plugin.
"""

from __future__ import annotations

from harness.server.verdicts import (
    SHOWN,
    DeliveryVerdict,
    carried_note,
    delivery_report,
    delivery_verdict,
    describe_fault,
    marker_call,
    recipient_verdict,
    rule_spec,
)

__all__ = [
    "SHOWN",
    "DeliveryVerdict",
    "carried_note",
    "delivery_report",
    "delivery_verdict",
    "describe_fault",
    "marker_call",
    "recipient_verdict",
    "rule_spec",
]
