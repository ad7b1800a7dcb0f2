"""The failure text of one case: what `ses-harness run`, a scenario item and `play` all print.

It reads one case dict of results.json, so the terminal, pytest and a user's own unit test give
the same words for the same failure: which bar the strategy missed (its own table or the
scenario's contract), the ids of the mail that went wrong (named as every report names them,
see :mod:`harness.runner.vocabulary`), the faults around them, what a client process printed,
what a correct client does in the scenario, and the command that runs the case again.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from harness.reports.digest import time_dependence
from harness.runner.vocabulary import PROBLEMS, TERMS
from harness.server.verdicts import fault_outcome, summarised

#: Ids, faults or lines shown per list before "... and N more".
SHOWN = 10
#: Lines of a client's output shown; the case keeps more (results.json, `command`).
OUTPUT_LINES = 15
#: Width the scenario's best possible is wrapped at.
WIDTH = 96


def case_report(case: Mapping[str, Any], best_possible: str = "") -> str:
    """Why a case failed, in a few indented lines (empty of sections that have nothing).

    `best_possible` is the scenario's line on what a correct client does there (its
    ``best_possible``); it is shown under the failure when given.
    """
    lines = [f"scenario {case['scenario']!r} with strategy {case['strategy']!r} failed"]
    if case.get("error"):
        lines.append(f"  error: {case['error']}")
    failed = [e for e in case.get("expectations", []) if not e.get("passed")]
    if failed:
        bar = (
            "the scenario's contract (what any correct client achieves)"
            if case.get("held_to") == "contract"
            else "its own expectations"
        )
        lines.append(f"  missed {bar}:")
        lines += _listed([f"{e['expr']} (actual {_actual(e['actual'])})" for e in failed])
    matched = _matching(case.get("matching"))
    if matched:
        lines.append(matched)
    timing = time_dependence(case)
    if timing:
        lines.append(f"  {timing}")
    messages = case.get("messages", [])
    for cls in PROBLEMS:
        mine = [m for m in messages if m["class"] == cls.value]
        if mine:
            term = TERMS[cls]
            lines.append(f"  {term.words}: {term.meaning} ({len(mine)}):")
            lines += _listed([_message(m) for m in mine])
    lines += _faults(case)
    command = case.get("command") or {}
    for stream in ("stderr", "stdout"):
        text = command.get(f"{stream}_tail") or ""
        if text:
            shown = text.splitlines()[-OUTPUT_LINES:]
            lines.append(f"  the client's {stream} ends:")
            lines += [f"    | {line}" for line in shown]
    best = " ".join(best_possible.split())
    if best:
        lines.append("  what a correct client does here:")
        lines += textwrap.wrap(best, WIDTH, initial_indent="    ", subsequent_indent="    ")
    lines.append(f"  reproduce: {case.get('reproducer')}")
    return "\n".join(lines)


def _matching(matching: Mapping[str, Any] | None) -> str | None:
    """How the server's copies were tied to the messages, when not all by Message-ID."""
    if not matching or not (matching["envelope"] or matching["recipient"] or matching["strays"]):
        return None
    line = f"  copies matched: {matching['explained']}"
    strays = matching.get("stray_copies") or []
    if strays:
        first = strays[0]
        line += (
            f"; the first: session {first['session']}, {first['mail_from']} -> "
            f"{', '.join(first['rcpt_tos'])}, Message-ID {first['message_id']}"
        )
    return line


def _message(message: Mapping[str, Any]) -> str:
    if message["class"] == "duplicated":
        return f"{message['id']} x{message['copies']} (sessions {message.get('sessions')})"
    return f"{message['id']} {message.get('reply') or ''}".rstrip()


def _faults(case: Mapping[str, Any]) -> list[str]:
    """The faults in the sessions that held the silently lost and duplicated mail (else all),
    cut to the first few of each kind."""
    timeline = case.get("timeline", {})
    faults = timeline.get("faults", [])
    messages = case.get("messages", [])
    troubled = {"silently_lost", "duplicated"}
    sessions = {s for m in messages if m["class"] in troubled for s in (m.get("sessions") or [])}
    nearby = [f for f in faults if f.get("session") in sessions] or faults
    if not nearby:
        return []
    lines = [f"  faults ({len(nearby)} near the trouble, of {len(faults)}):"]
    described = [
        f"t={f['at']:.3f}s session {f['session']} {f['stage']}: {f['source']} "
        f"{f['name']!r} -> {fault_outcome(_action(f, timeline), f.get('reply'))}"
        for f in nearby
    ]
    return lines + summarised(described, [f"{f['source']} {f['name']!r}" for f in nearby])


def _action(fault: Mapping[str, Any], timeline: Mapping[str, Any]) -> str | None:
    """The fault's action: given (a newer results.json), or read from the timeline: a fault
    with no reply whose session the server closed for it dropped the connection, and kept the
    message first when that session holds a copy the server never acknowledged."""
    if fault.get("action"):
        return fault["action"]
    if fault.get("reply") is not None:
        return "reply"
    number = fault.get("session")
    closed = any(
        s["number"] == number
        and s.get("closed_by") == "server"
        and s.get("close_reason") == f"{fault['source']}:{fault['name']}"
        for s in timeline.get("sessions", [])
    )
    if not closed:
        return None
    # The drop ended the session, so a copy of it the server never acknowledged is this one.
    kept = any(
        d["session"] == number and not d["acknowledged"] for d in timeline.get("deliveries", [])
    )
    return "drop_after_accept" if kept else "drop"


def _actual(value: Any) -> str:
    if value is None:
        return "not measured"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.4g}"
    return str(int(value)) if isinstance(value, float) else str(value)


def _listed(items: Sequence[str], indent: str = "    ") -> list[str]:
    lines = [f"{indent}{item}" for item in items[:SHOWN]]
    if len(items) > SHOWN:
        lines.append(f"{indent}... and {len(items) - SHOWN} more")
    return lines
