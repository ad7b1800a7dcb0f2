"""ses-fault-harness: a fault-injecting fake Amazon SES SMTP server and exactly-once scoring.

The public API. The CLI, the pytest plugin and the HTTP API use only these names.

Names load on first use (PEP 562): pytest imports this package for its plugin entry point in
every run, and the server (aiosmtpd, cryptography) should cost nothing until a test needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.arrange import FakeSESView
    from harness.clock import Clock, RealClock, VirtualClock
    from harness.core.engine import Decision, Engine, Outcome
    from harness.core.errors import PlanError
    from harness.core.plan import (
        ACTIONS,
        Delay,
        Drop,
        DropAfterAccept,
        Limits,
        Matcher,
        Plan,
        Reply,
        Rule,
        Stage,
        Stall,
    )
    from harness.endpoint import Endpoint, TlsMode
    from harness.hunt import hunt
    from harness.ledger import FaultRecord, Ledger, MessageRecord, SessionRecord, TranscriptLine
    from harness.matrix import run_case, run_matrix
    from harness.profiles import PROFILES, Evidence, Line, Profile
    from harness.scenario import Scenario, load_scenario
    from harness.server.runner import FakeSES
    from harness.strategy import Claim, ClaimStatus, OutgoingMessage, Strategy, resolve_strategy

_HOMES = {
    "harness.clock": ("Clock", "RealClock", "VirtualClock"),
    "harness.core.engine": ("Decision", "Engine", "Outcome"),
    "harness.core.errors": ("PlanError",),
    "harness.core.plan": (
        "ACTIONS",
        "Delay",
        "Drop",
        "DropAfterAccept",
        "Limits",
        "Matcher",
        "Plan",
        "Reply",
        "Rule",
        "Stage",
        "Stall",
    ),
    "harness.endpoint": ("Endpoint", "TlsMode"),
    "harness.ledger": ("FaultRecord", "Ledger", "MessageRecord", "SessionRecord", "TranscriptLine"),
    "harness.profiles": ("PROFILES", "Evidence", "Line", "Profile"),
    "harness.server.runner": ("FakeSES",),
    "harness.arrange": ("FakeSESView",),
    "harness.hunt": ("hunt",),
    "harness.matrix": ("run_case", "run_matrix"),
    "harness.scenario": ("Scenario", "load_scenario"),
    "harness.strategy": ("Claim", "ClaimStatus", "OutgoingMessage", "Strategy", "resolve_strategy"),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _HOME_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "ACTIONS",
    "PROFILES",
    "Claim",
    "ClaimStatus",
    "Clock",
    "Decision",
    "Delay",
    "Drop",
    "DropAfterAccept",
    "Endpoint",
    "Engine",
    "Evidence",
    "FakeSES",
    "FakeSESView",
    "FaultRecord",
    "Ledger",
    "Limits",
    "Line",
    "Matcher",
    "MessageRecord",
    "Outcome",
    "OutgoingMessage",
    "Plan",
    "PlanError",
    "Profile",
    "RealClock",
    "Reply",
    "Rule",
    "Scenario",
    "SessionRecord",
    "Stage",
    "Stall",
    "Strategy",
    "TlsMode",
    "TranscriptLine",
    "VirtualClock",
    "hunt",
    "load_scenario",
    "resolve_strategy",
    "run_case",
    "run_matrix",
]
