"""ses-fault-harness: a fault-injecting fake Amazon SES SMTP server and exactly-once scoring.

The public API. The CLI, the pytest plugin and the HTTP API use only these names.
"""

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
from harness.ledger import FaultRecord, Ledger, MessageRecord, SessionRecord, TranscriptLine
from harness.profiles import PROFILES, Evidence, Line, Profile
from harness.server.runner import FakeSES

__all__ = [
    "ACTIONS",
    "PROFILES",
    "Clock",
    "Decision",
    "Delay",
    "Drop",
    "DropAfterAccept",
    "Endpoint",
    "Engine",
    "Evidence",
    "FakeSES",
    "FaultRecord",
    "Ledger",
    "Limits",
    "Line",
    "Matcher",
    "MessageRecord",
    "Outcome",
    "Plan",
    "PlanError",
    "Profile",
    "RealClock",
    "Reply",
    "Rule",
    "SessionRecord",
    "Stage",
    "Stall",
    "TlsMode",
    "TranscriptLine",
    "VirtualClock",
]
