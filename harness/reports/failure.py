"""The failure text of one case: what `ses-harness run`, a scenario item and `play` all print.

It reads one case dict of results.json, so the terminal, pytest and a user's own unit test give
the same words for the same failure: which bar the strategy missed (its own table or the
scenario's contract), the ids of the mail that went wrong, the faults around them, what a client
process printed, and the command that runs the case again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: Ids, faults or lines shown per list before "... and N more".
SHOWN = 10
#: Lines of a client's output shown; the case keeps more (results.json, `command`).
OUTPUT_LINES = 15


def case_report(case: Mapping[str, Any]) -> str:
    """Why a case failed, in a few indented lines (empty of sections that have nothing)."""
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
    messages = case.get("messages", [])
    lost = [m for m in messages if m["class"] == "silently_lost"]
    duplicated = [m for m in messages if m["class"] == "duplicated"]
    others = [
        m for m in messages if m["class"] in ("given_up", "abandoned", "misreported", "uncertain")
    ]
    if lost:
        lines.append(f"  silently lost: reported sent, no copy on the server ({len(lost)}):")
        lines += _listed([m["id"] for m in lost])
    if duplicated:
        lines.append(f"  duplicated ({len(duplicated)}):")
        lines += _listed(
            [f"{m['id']} x{m['copies']} (sessions {m.get('sessions')})" for m in duplicated]
        )
    if others:
        lines.append(f"  given up, abandoned, misreported or uncertain ({len(others)}):")
        lines += _listed(
            [f"{m['id']} {m['class']} {m.get('reply') or ''}".rstrip() for m in others]
        )
    faults = case.get("timeline", {}).get("faults", [])
    sessions = {s for m in lost + duplicated for s in (m.get("sessions") or [])}
    nearby = [f for f in faults if f.get("session") in sessions] or faults
    if nearby:
        lines.append(f"  faults ({len(nearby)} near the trouble, of {len(faults)}):")
        lines += _listed(
            [
                f"t={f['at']:.3f}s session {f['session']} {f['stage']}: {f['source']} "
                f"{f['name']!r} -> {f.get('reply')}"
                for f in nearby
            ]
        )
    command = case.get("command") or {}
    for stream in ("stderr", "stdout"):
        text = command.get(f"{stream}_tail") or ""
        if text:
            shown = text.splitlines()[-OUTPUT_LINES:]
            lines.append(f"  the client's {stream} ends:")
            lines += [f"    | {line}" for line in shown]
    lines.append(f"  reproduce: {case.get('reproducer')}")
    return "\n".join(lines)


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
