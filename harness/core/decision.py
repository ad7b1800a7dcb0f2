"""What the engine hands the adapter: a decision, with the reply as data (code and text).

The adapter carries a decision out without reading its text: whether to close, what to
record as the reason (`Decision.decided_by`), and the reply's code are fields.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from harness.core.api_errors import SesApiError
from harness.core.outcomes import Fate


class Outcome(enum.StrEnum):
    PROCEED = "proceed"  # do what a normal server does
    ACCEPT = "accept"  # end of data: record the message, then send `reply`
    REPLY = "reply"  # send `reply` instead, then close if `close`
    DROP = "drop"  # close without replying
    DROP_AFTER_ACCEPT = "drop_after_accept"  # record the message, then close without the 250
    STALL = "stall"  # never reply; close after `stall_s` (None: when the client does)


@dataclass(frozen=True)
class Answer:
    """A reply line: its code and the text after it.

    >>> str(Answer(421, "4.4.2 Timeout"))
    '421 4.4.2 Timeout'
    """

    code: int
    text: str = ""

    def __str__(self) -> str:
        return f"{self.code} {self.text}".rstrip()


@dataclass(frozen=True)
class Fired:
    """A rule or limit that shaped a decision: what the ledger's fault log records."""

    source: str  # "rule" or "limit"
    name: str  # rule label, or the limit's field name (e.g. "session_limit")
    action: str  # reply, drop, drop_after_accept, delay, stall, duplicate (NOTIFY)
    reply: str | None = None
    rule_index: int | None = None

    @property
    def key(self) -> str:
        return f"{self.source}:{self.name}"


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reply: Answer | None = None
    close: bool = False
    delay_s: float = 0.0
    stall_s: float | None = None
    fired: tuple[Fired, ...] = ()
    ses_id: str | None = None
    error: SesApiError | None = None  # API only: the error to answer with (outcome REPLY)
    # What decided it when no rule or limit fired (a protocol rule, e.g. "protocol:starttls_first").
    rule: str | None = None
    # What becomes of the message once accepted (a rule's bounce, the suppression list...).
    fates: tuple[Fate, ...] = ()

    @property
    def decided_by(self) -> str | None:
        """The key of what shaped the reply: the last rule or limit that fired, or `rule`."""
        return self.fired[-1].key if self.fired else self.rule


PROCEED = Decision(Outcome.PROCEED)
