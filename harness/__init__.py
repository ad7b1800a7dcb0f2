"""ses-fault-harness: a fault-injecting fake Amazon SES SMTP server and exactly-once scoring.

The public API: a user's code imports from here. Inside the package each module imports from
the modules it needs, in its own layer or below (see each subpackage's docstring).

Names load on first use (PEP 562): pytest imports this package for its plugin entry point in
every run, and the server (aiosmtpd, cryptography) should cost nothing until a test needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.base.clock import Clock, RealClock, ScaledClock, VirtualClock
    from harness.base.endpoint import Endpoint, TlsMode
    from harness.base.ledger import (
        FaultRecord,
        Ledger,
        MessageRecord,
        SessionRecord,
        TranscriptLine,
    )
    from harness.console.client import RemoteFakeSES
    from harness.core.engine import Decision, Engine, Outcome
    from harness.core.errors import PlanError
    from harness.core.limits import Limits
    from harness.core.plan import (
        ACTIONS,
        Delay,
        Drop,
        DropAfterAccept,
        Matcher,
        Plan,
        Reply,
        Rule,
        Stage,
        Stall,
    )
    from harness.core.profiles import PROFILES, Evidence, Line, Profile
    from harness.hunting.search import hunt
    from harness.plugin.play import Played, play
    from harness.runner.matrix import run_case, run_matrix
    from harness.runner.resolve import resolve_strategy
    from harness.runner.scenario import Scenario, load_scenario
    from harness.runner.strategy import Claim, ClaimStatus, OutgoingMessage, Strategy
    from harness.server.fake_ses import FakeSES
    from harness.server.view import FakeSESView

_HOMES = {
    "harness.base.clock": ("Clock", "RealClock", "ScaledClock", "VirtualClock"),
    "harness.core.engine": ("Decision", "Engine", "Outcome"),
    "harness.core.errors": ("PlanError",),
    "harness.core.limits": ("Limits",),
    "harness.core.plan": (
        "ACTIONS",
        "Delay",
        "Drop",
        "DropAfterAccept",
        "Matcher",
        "Plan",
        "Reply",
        "Rule",
        "Stage",
        "Stall",
    ),
    "harness.base.endpoint": ("Endpoint", "TlsMode"),
    "harness.base.ledger": (
        "FaultRecord",
        "Ledger",
        "MessageRecord",
        "SessionRecord",
        "TranscriptLine",
    ),
    "harness.core.profiles": ("PROFILES", "Evidence", "Line", "Profile"),
    "harness.server.fake_ses": ("FakeSES",),
    "harness.server.view": ("FakeSESView",),
    "harness.hunting.search": ("hunt",),
    "harness.plugin.play": ("Played", "play"),
    "harness.runner.matrix": ("run_case", "run_matrix"),
    "harness.runner.scenario": ("Scenario", "load_scenario"),
    "harness.runner.resolve": ("resolve_strategy",),
    "harness.runner.strategy": ("Claim", "ClaimStatus", "OutgoingMessage", "Strategy"),
    "harness.console.client": ("RemoteFakeSES",),
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
    "Played",
    "Profile",
    "RealClock",
    "RemoteFakeSES",
    "Reply",
    "Rule",
    "ScaledClock",
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
    "play",
    "resolve_strategy",
    "run_case",
    "run_matrix",
]
