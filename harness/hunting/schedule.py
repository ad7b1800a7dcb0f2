"""Fault schedules for `ses-harness hunt`: explicit one-shot faults, as hypothesis strategies.

A schedule is a short list of events, each either

- a limit: the server closes a session after `k` messages (SES's 421 cap, made small), or
- one fault rule that fires at most once, pinned to a place:
  - in a session: "the 3rd MAIL FROM of session 1" (``Matcher(MAIL, session=1, nth=3)``), or
  - to a try: "the 2nd end of data that is some message's 1st try"
    (``Matcher(EOM, attempt=1, nth=2)``; RCPT and end of data count tries).

The actions are what SES does (SPEC §1): a 421 that closes the connection, a transient 4xx
(also one followed by a hang-up, as SES's idle timeout does), a 454 throttle at end of data, a
permanent 554 where it names a message (RCPT, DATA, end of data: a 5xx at MAIL FROM or EHLO
names no message, so no scorer could call it a rightful rejection), a dropped connection, and at
end of data drop_after_accept.

Two of them are *ambiguous*: a drop at end of data, with or without the server keeping the
message. The client sees the same thing both times (the connection died after its final "."),
so no client is exactly-once there; `ambiguous=False` leaves them out.

Order is meaning: hypothesis shrinks every choice toward the first option, so the simplest
schedules come first. A session limit before any fault; a session pin before a try pin; a 421
before a 4xx, before a 5xx, before a drop.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from hypothesis import strategies as st

from harness.core.plan import Action, Drop, DropAfterAccept, Matcher, Plan, Reply, Rule, Stage
from harness.hunting import MAX_EVENTS

#: Sessions a fault may be pinned to: strategies under a handful of faults use a few at most.
MAX_SESSIONS = 3
#: Try pins reach this far: the first, second and third try of a message.
MAX_ATTEMPT = 3

_GREETED = (Stage.EHLO, Stage.MAIL, Stage.RCPT, Stage.DATA, Stage.EOM, Stage.RSET)
_PER_MESSAGE = (Stage.RCPT, Stage.DATA, Stage.EOM)
_ONCE_PER_SESSION = (Stage.CONNECT, Stage.EHLO)


@dataclass(frozen=True)
class FaultKind:
    """An action and the stages where the hunt tries it."""

    action: Action
    stages: tuple[Stage, ...]


FAULT_KINDS: tuple[FaultKind, ...] = (
    FaultKind(
        Reply(421, "Service not available, closing transmission channel"),
        (Stage.CONNECT, *_GREETED),
    ),
    FaultKind(Reply(451, "Temporary service failure"), _GREETED),
    FaultKind(
        Reply(451, "4.4.2 Timeout waiting for data from client.", close=True),
        (Stage.MAIL, Stage.RCPT, Stage.DATA, Stage.EOM),
    ),
    FaultKind(Reply(454, "Throttling failure: Maximum sending rate exceeded"), (Stage.EOM,)),
    FaultKind(Reply(554, "Message rejected: Transaction failed"), _PER_MESSAGE),
    FaultKind(Drop(), (Stage.CONNECT, *_GREETED)),
    FaultKind(DropAfterAccept(), (Stage.EOM,)),
)


def is_ambiguous(stage: Stage, action: Action) -> bool:
    """True for a connection cut after the final ".": the client cannot know the outcome."""
    return stage is Stage.EOM and isinstance(action, Drop | DropAfterAccept)


@dataclass(frozen=True)
class SessionLimit:
    """A limit event: the server takes `messages` per connection, then 421 at MAIL FROM."""

    messages: int


@dataclass(frozen=True)
class Schedule:
    """What the hunt arranges for one run: an optional session limit and one-shot rules."""

    session_limit: int | None = None
    faults: tuple[Rule, ...] = ()

    @classmethod
    def from_events(cls, events: list[SessionLimit | Rule]) -> Schedule:
        limits = [e.messages for e in events if isinstance(e, SessionLimit)]
        rules = [e for e in events if isinstance(e, Rule)]
        return cls(
            session_limit=min(limits) if limits else None,
            faults=tuple(
                dataclasses.replace(rule, name=f"hunt-{i}") for i, rule in enumerate(rules, 1)
            ),
        )

    @property
    def events(self) -> int:
        """How many things the schedule arranges: the size the hunt shrinks."""
        return len(self.faults) + (self.session_limit is not None)

    def plan(self, profile: str, seed: int) -> Plan:
        limits = {"session_limit": self.session_limit} if self.session_limit else {}
        return Plan(profile=profile, seed=seed, limits=limits, faults=self.faults)


def schedules(
    messages: int, *, ambiguous: bool = True, max_events: int = MAX_EVENTS
) -> st.SearchStrategy[Schedule]:
    """Schedules for a batch of `messages`; `ambiguous=False` leaves out drops at end of data."""
    kinds: list[FaultKind | None] = [None] if messages > 1 else []  # None: a session limit
    for kind in FAULT_KINDS:
        stages = tuple(s for s in kind.stages if ambiguous or not is_ambiguous(s, kind.action))
        if stages:
            kinds.append(FaultKind(kind.action, stages))
    return st.lists(_events(messages, kinds), max_size=max_events).map(Schedule.from_events)


@st.composite
def _events(draw: st.DrawFn, messages: int, kinds: list[FaultKind | None]) -> SessionLimit | Rule:
    kind = draw(st.sampled_from(kinds))
    if kind is None:
        return SessionLimit(draw(st.integers(1, messages - 1)))
    stage = draw(st.sampled_from(kind.stages))
    if stage in (Stage.RCPT, Stage.EOM) and draw(st.booleans()):
        attempt = draw(st.integers(1, MAX_ATTEMPT))
        match = Matcher(stage, attempt=attempt, nth=draw(st.integers(1, messages)))
    else:
        session = draw(st.integers(1, MAX_SESSIONS))
        nth = 1 if stage in _ONCE_PER_SESSION else draw(st.integers(1, messages))
        match = Matcher(stage, session=session, nth=nth)
    return Rule(match, kind.action)


# --- in words -------------------------------------------------------------------------------

STAGE_WORDS = {
    Stage.CONNECT: "connection",
    Stage.EHLO: "EHLO",
    Stage.AUTH: "AUTH",
    Stage.MAIL: "MAIL FROM",
    Stage.RCPT: "RCPT TO",
    Stage.DATA: "DATA",
    Stage.EOM: "end of data",
    Stage.RSET: "RSET",
    Stage.NOOP: "NOOP",
    Stage.QUIT: "QUIT",
}


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 21st..."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def describe_action(action: Action) -> str:
    """What the server does, in words."""
    if isinstance(action, Reply):
        closes = action.close if action.close is not None else action.code == 421
        return f'reply "{action.line}"' + (", then hang up" if closes else "")
    if isinstance(action, DropAfterAccept):
        return "keep the message, then drop the connection before the 250"
    if isinstance(action, Drop):
        return "drop the connection without a reply"
    return action.kind


def describe_rule(rule: Rule) -> str:
    """Where and what, e.g. "session 1, 3rd end of data: drop the connection without a reply"."""
    match, stage = rule.match, STAGE_WORDS[rule.match.stage]
    if match.attempt is not None:
        where = f"the {ordinal(match.nth or 1)} {stage} of a message's {ordinal(match.attempt)} try"
    elif match.stage is Stage.CONNECT:
        where = f"session {match.session}, connecting"
    else:
        where = f"session {match.session}, {ordinal(match.nth or 1)} {stage}"
    return f"{where}: {describe_action(rule.action)}"


def describe_schedule(schedule: Schedule) -> list[str]:
    """One line per event."""
    lines = []
    if schedule.session_limit is not None:
        s = "" if schedule.session_limit == 1 else "s"
        lines.append(
            f"session limit: {schedule.session_limit} message{s} per connection, "
            "then 421 at the next MAIL FROM"
        )
    lines += [describe_rule(rule) for rule in schedule.faults]
    return lines or ["no fault at all"]
