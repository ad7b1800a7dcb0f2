"""The story of one run, told from the server's ledger and the client's claims.

``session 1, end of data of message 3: the server kept the message and dropped the connection
before its 250; the client resent it in session 2`` and then the verdict, ``message 3: 2 copies
on the server (sessions 1, 2): duplicated``. `ses-harness hunt` tells its smallest
counterexample this way.

Which message a command was about is read from the ledger's records: a transaction belongs to the
message of its first RCPT TO (each message of a workload has its own first recipient). A
refusal at MAIL FROM names no message; it is put on the message the client was at, taking it
that the client goes through the batch in order (see `_refused_at_mail`).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.base.ledger import Ledger
from harness.base.records import EOM, ClientLine, FaultRecord, ServerLine, SessionRecord
from harness.hunting.schedule import STAGE_WORDS
from harness.runner.strategy import OutgoingMessage

#: The scorer's classes that break the hunt's property (see :mod:`harness.hunting.search`).
BROKEN = ("duplicated", "silently_lost", "misreported", "uncertain", "given_up", "abandoned")


@dataclass(frozen=True)
class Story:
    """A run in words: what was arranged, what happened, and the verdict on each broken
    message."""

    schedule: tuple[str, ...]
    happened: tuple[str, ...]
    verdict: tuple[str, ...]

    def text(self, width: int = 100) -> str:
        """The three parts under their headings, indented and wrapped at `width`."""
        parts = (
            ("Schedule", self.schedule),
            ("What happened", self.happened),
            ("Verdict", self.verdict),
        )
        return "\n".join(
            f"{title}:\n"
            + "\n".join(
                textwrap.fill(line, width, initial_indent="  ", subsequent_indent="    ")
                for line in lines
            )
            for title, lines in parts
            if lines
        )


@dataclass
class _Try:
    """One transaction of the client: MAIL FROM to the end of its data, RSET or hang-up."""

    session: int
    first: int  # engine command number of its MAIL FROM
    last: int  # and of its last command
    at: float
    message: int | None = None  # 1-based number in the batch, from its first RCPT TO
    accepted: bool = False


def tell(
    schedule: Sequence[str],
    messages: Sequence[OutgoingMessage],
    case: dict[str, Any],
    ledger: Ledger,
) -> Story:
    """The story of a run: the `schedule` in words (from `describe_schedule`), the faults that
    fired and what the client did about them, then the verdict."""
    number_of = {m.recipients[0].lower(): n for n, m in enumerate(messages, 1) if m.recipients}
    sessions = ledger.sessions
    tries = [t for s in sessions for t in _tries(s, number_of)]
    tries.sort(key=lambda t: (t.at, t.session, t.first))
    verdicts = case["messages"]
    broken = {n for n, v in enumerate(verdicts, 1) if v["class"] in BROKEN}

    lines, unremarkable = [], 0
    for fault in ledger.faults:
        found = _try_of(fault, tries)
        number = found.message if found else None
        if found is not None and number is None and fault.stage == "MAIL":
            number = _refused_at_mail(found, tries, len(messages))
        if fault.source == "limit" and number not in broken:
            unremarkable += 1  # the cap or a throttle, on a message that ended well
            continue
        what = _effect(fault, _session(sessions, fault.session))
        then = _reaction(number, found, fault, tries, verdicts) if number else ""
        lines.append(f"{_where(fault, number)}: {what}{then}")
    if unremarkable:
        s = "" if unremarkable == 1 else "s"
        lines.append(f"({unremarkable} more refusal{s} by the limits, on messages that ended well)")
    if case.get("error"):
        lines.append(case["error"])
    return Story(tuple(schedule), tuple(lines), tuple(_verdict(verdicts)))


def _tries(session: SessionRecord, number_of: dict[str, int]) -> list[_Try]:
    """The transactions of a session, with the engine's command numbers (as faults carry)."""
    found: list[_Try] = []
    current: _Try | None = None
    awaiting_250 = False  # the last client line was the end of data of `current`
    for line in session.transcript:
        if isinstance(line, ServerLine):
            if awaiting_250 and current is not None and line.code and 200 <= line.code < 300:
                current.accepted = True
            awaiting_250 = False
            continue
        if not isinstance(line, ClientLine):  # a proxy's lines to its upstream
            continue
        awaiting_250 = line.verb == EOM
        if line.number is None:
            continue  # e.g. STARTTLS: the engine does not count it
        if line.verb == "MAIL":
            current = _Try(session.number, line.number, line.number, line.at)
            found.append(current)
        elif current is not None and line.verb in ("RCPT", "DATA", "RSET", EOM):
            current.last = line.number
            if line.verb == "RCPT" and current.message is None:
                current.message = number_of.get((line.address or "").lower())
            if line.verb == "RSET":
                current = None
        else:
            current = None
    return found


def _session(sessions: Sequence[SessionRecord], number: int) -> SessionRecord | None:
    return next((s for s in sessions if s.number == number), None)


def _try_of(fault: FaultRecord, tries: Sequence[_Try]) -> _Try | None:
    return next(
        (t for t in tries if t.session == fault.session and t.first <= fault.command <= t.last),
        None,
    )


def _refused_at_mail(found: _Try, tries: Sequence[_Try], count: int) -> int | None:
    """The message a transaction refused at MAIL FROM was for, as the client went through
    the batch in order: the message it tried last, if that one failed and the client came back
    to it (or stopped); else the next message of the batch."""
    index = tries.index(found)
    before = next((t for t in reversed(tries[:index]) if t.message is not None), None)
    after = next((t for t in tries[index + 1 :] if t.message is not None), None)
    if (
        before is not None
        and not before.accepted
        and (after is None or after.message == before.message)
    ):
        return before.message
    following = (before.message or 0) + 1 if before is not None else 1
    return following if following <= count else None


def _where(fault: FaultRecord, number: int | None) -> str:
    if fault.stage == "IDLE":
        return f"session {fault.session}, idle"
    stage = STAGE_WORDS.get(fault.stage, fault.stage)  # a StrEnum key matches its string
    if fault.stage == "CONNECT":
        return f"session {fault.session}, connecting"
    if number is None:
        return f"session {fault.session}, {stage}"
    preposition = "for" if fault.stage == "MAIL" else "after" if fault.stage == "RSET" else "of"
    return f"session {fault.session}, {stage} {preposition} message {number}"


def _effect(fault: FaultRecord, session: SessionRecord | None) -> str:
    if fault.action == "drop_after_accept":
        return "the server kept the message and dropped the connection before its 250"
    if fault.action == "drop":
        return "the server dropped the connection without a reply"
    hung_up = (
        session is not None
        and session.closed_by == "server"
        and session.close_reason == f"{fault.source}:{fault.name}"
    )
    return f'the server said "{fault.reply}"' + (" and hung up" if hung_up else "")


def _reaction(
    number: int,
    found: _Try | None,
    fault: FaultRecord,
    tries: Sequence[_Try],
    verdicts: Sequence[dict[str, Any]],
) -> str:
    """What the client did next about message `number`."""
    after = tries[tries.index(found) + 1 :] if found else [t for t in tries if t.at > fault.at]
    again = next((t for t in after if t.message == number), None)
    if again is not None:
        where = "the same session" if again.session == fault.session else f"session {again.session}"
        return f"; the client resent it in {where}" + (" (accepted)" if again.accepted else "")
    claim = verdicts[number - 1]["claim"]
    if claim == "failed":
        return "; the client reported it failed" + ("" if after else " and tried nothing after")
    if claim == "sent":
        return "; the client counted it sent"
    if claim == "uncertain":
        return "; the client said it cannot know whether the server kept it"
    return "; the client never reported on it"


def _verdict(verdicts: Sequence[dict[str, Any]]) -> list[str]:
    """One line per broken message, runs of the same verdict merged: "messages 3-10: ..."."""
    said: list[tuple[int, int, str]] = []
    for number, verdict in enumerate(verdicts, 1):
        if verdict["class"] not in BROKEN:
            continue
        text = _judged(verdict)
        if said and said[-1][1] == number - 1 and said[-1][2] == text:
            said[-1] = (said[-1][0], number, text)
        else:
            said.append((number, number, text))
    return [
        f"message {a}: {text}" if a == b else f"messages {a}-{b}: {text}" for a, b, text in said
    ]


def _judged(verdict: dict[str, Any]) -> str:
    """The class first, then why: a line wrapped at its width still starts with the verdict
    (the reason last, so a long reply quoted in it cannot cut the verdict in two)."""
    cls = verdict["class"]
    if cls == "duplicated":
        where = ", ".join(map(str, verdict["sessions"]))
        return f"duplicated: {verdict['copies']} copies on the server (sessions {where})"
    if cls == "misreported":
        return (
            f"misreported: the server has it (session {verdict['sessions'][0]}) but the client "
            "reported it failed"
        )
    if cls == "uncertain":
        kept = "the server has it" if verdict["copies"] else "the server has no copy"
        return f"uncertain: the client said it cannot know; {kept}"
    if cls == "silently_lost":
        return "silently lost: the client counted it sent, the server has no copy"
    if cls == "given_up":
        said = f'"{verdict["reply"]}"' if verdict["reply"] else "no reply"
        return f"given up: nothing refused it for good, yet the client reported it failed ({said})"
    return "never sent: the client never tried it"
