"""The sentence on each row of the conformance table, read from the run's ledger: the first
refusal the client met, what it did next on that connection, whether it opened another, and
what it reported for the mail that did not arrive."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from harness.base.ledger import Ledger
from harness.base.records import EOM, FaultRecord, SessionRecord

STAGES = {
    "CONNECT": "connect",
    "EHLO": "EHLO",
    "AUTH": "AUTH",
    "MAIL": "MAIL FROM",
    "RCPT": "RCPT TO",
    "DATA": "DATA",
    "EOM": "end of data",
    "RSET": "RSET",
    "QUIT": "QUIT",
    "IDLE": "idle",
}
REPLY_CHARS = 80  # a reply quoted in a sentence is cut here
#: Faults that hold a reply back rather than refuse (Microsoft 365's tarpit, delay and stall
#: rules): the answer comes late, or not before the client gives up.
HELD = frozenset({"delay", "stall"})


def story(case: dict[str, Any], ledger: Ledger) -> str:
    """One or two sentences on what the client did, read from the run: its first refusal, what
    came next, and what it reported for the mail that did not arrive."""
    if case["error"] is not None:
        crashed = _crash(case)
        if crashed is None:
            return f"The client failed: {_cut(case['error'], 160)}."
        return f"{story({**case, 'error': None}, ledger)} {crashed}"
    sessions = ledger.sessions
    faults = ledger.faults
    if not faults and not sessions and ledger.messages:  # through the SES API only
        sends = _count(len(ledger.messages), "API send")
        return f"No refusal in {sends}; {_reports(case)}."
    if not faults:
        told = f"No refusal in {_count(len(sessions), 'session')}"
        if len(sessions) == case["score"]["messages"] > 1:
            told += ", one per message"
        return told + f"; {_reports(case)}."
    first = faults[0]
    if first.session == 0:  # the SES API: a request per send, no connection to tell of
        return _api_story(case, faults, ledger)
    session = next(s for s in sessions if s.number == first.session)
    stored = sum(1 for m in ledger.messages if m.session == first.session and m.at <= first.at)
    # Opened after it: numbered after its session and not earlier (on a progress clock the
    # client's own work takes no time, so a reconnect can open at the very moment of the fault).
    later = sum(1 for s in sessions if s.number > first.session and s.opened_at >= first.at)
    where = f"at {STAGES.get(first.stage, first.stage)} in session {first.session}"
    where += f" after {_count(stored, 'message')}" if stored else ", its first message"
    lead = "First reply held back" if first.action in HELD else "First refusal"
    parts = [
        f"{lead}, {where}: {_what(first)}",
        _next(session, first),
        f"{_count(later, 'more session') if later else 'no more sessions'} opened after it",
    ]
    reports = _reports(case)
    return "; ".join(parts) + f". {reports[0].upper()}{reports[1:]}."


def _crash(case: dict[str, Any]) -> str | None:
    """The sentence of a command client that stopped before its batch was done, told after what
    it did until then: ended at its timeout, or exited non-zero on its own (its status and its
    stderr's last line). None for any other failure (its keeper killed, a harness error)."""
    command = case.get("command") or {}
    if command.get("timed_out"):
        return (
            f"Then the client was still running after {command['timeout_s']:g} wall seconds "
            "and was ended."
        )
    code = command.get("exit_code")
    if not isinstance(code, int) or code <= 0:
        return None  # killed by a signal, or ended with its keeper
    lines = (command.get("stderr_tail") or "").strip().splitlines()
    said = f": `{_cut(lines[-1], REPLY_CHARS)}`" if lines else ""
    return f"Then the client exited with status {code}{said}."


def run_failed(reason: str) -> str:
    """The sentence of a run whose worker died or hung."""
    return f"The run failed: {_cut(reason, 160)}."


def _api_story(case: dict[str, Any], faults: Sequence[FaultRecord], ledger: Ledger) -> str:
    """The SES API's side of a run: the first refusal, how many sends were refused or cut, and
    what the client did with the sends a cut had already stored."""
    first = faults[0]
    api_faults = [f for f in faults if f.session == 0]
    stored = [m for m in ledger.messages if m.via != "smtp" and not m.acknowledged]
    resent = sum(
        1
        for m in stored
        if sum(1 for other in ledger.messages if other.message_id == m.message_id) > 1
    )
    parts = [
        f"First refusal, at API send {first.command}: {_what(first)}",
        f"{_count(len(api_faults), 'API send')} refused or cut in all",
    ]
    if stored:
        parts.append(f"{resent} of the {_count(len(stored), 'send')} cut after storing sent again")
    reports = _reports(case)
    return "; ".join(parts) + f". {reports[0].upper()}{reports[1:]}."


def _what(fault: FaultRecord) -> str:
    if fault.action in HELD:  # a tarpit's wait, a delay or a stall: no refusal, a late answer
        return f"the server waited before answering (`{fault.name}`)"
    if fault.reply:
        return f"`{_cut(fault.reply, REPLY_CHARS)}`"
    if fault.action == "drop_after_accept":
        answer = "its HTTP response" if fault.session == 0 else "its 250"
        return f"the connection cut after the message was stored, before {answer}"
    return "the connection cut without a reply"


def _next(session: SessionRecord, fault: FaultRecord) -> str:
    """What the client sent next on the connection of the refusal, or how that connection ended."""
    sent = session.commands_sent()
    # The commands after the one the fault answered (after none, for a fault at connect).
    at = next((i + 1 for i, line in enumerate(sent) if line.number == fault.command), 0)
    later = [line.verb for line in sent[at:]]
    if later:
        verbs = ["end of data" if verb == EOM else verb for verb in later[:3]]
        more = ", ..." if len(later) > 3 else ""
        return f"the client then sent {', '.join(verbs)}{more} on that connection"
    by = session.closed_by or "nobody"
    if by == "server":
        return "the server closed that connection and the client sent nothing more on it"
    return "the client closed that connection without another command"


def _reports(case: dict[str, Any]) -> str:
    """What the client said about the messages that did not arrive exactly once."""
    missed = [m for m in case["messages"] if m["class"] != "delivered_once"]
    if not missed:
        return "every message arrived once and was reported sent"
    groups = Counter(
        (m["claim"], _cut(m["reply"], REPLY_CHARS) if m["reply"] else None) for m in missed
    )
    said = []
    for (claim, reply), number in groups.most_common(3):
        if claim == "sent":
            said.append(f"{number} reported sent")
        elif claim == "failed":
            said.append(f"{number} reported failed" + (f" (`{reply}`)" if reply else ""))
        elif claim == "uncertain":
            said.append(f"{number} said uncertain")
        else:
            said.append(f"{number} never sent")
    if len(groups) > 3:
        said.append(f"{sum(n for _, n in groups.most_common()[3:])} others")
    return "of the mail not delivered exactly once, " + ", ".join(said)


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split()).replace("`", "'")
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
