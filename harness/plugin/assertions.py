"""Readable verdicts over the ledger: who was lost, who was duplicated, which faults were near.

Pure functions over ledger records and plans, shared by the `fake_ses` fixture and the scenario
items of the pytest plugin. Every failure text ends with a one-line reproducer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from harness.core.plan import Plan, Rule
from harness.server.ledger import FaultRecord, MessageRecord

#: How many ids or faults a failure message lists before it says "... and N more".
SHOWN = 10


def rule_spec(rule: Rule) -> str:
    """The one-line form that `Rule.from_spec` (and `--fault`) reads back.

    >>> from harness import Rule
    >>> rule_spec(Rule.from_spec("stage=RCPT,first=2,action=reply,code=451,text=Later"))
    'stage=RCPT,first=2,action=reply,code=451,text=Later'
    """
    # to_dict's order is already the way people write it: name, stage, when, action, details.
    return ",".join(f"{key}={_spec_value(value)}" for key, value in rule.to_dict().items())


def _spec_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def marker_call(plan: Plan) -> str:
    """The plan as the marker that recreates it, on one line."""
    args = [f"profile={plan.profile!r}", f"seed={plan.seed!r}"]
    if plan.faults:
        args.append(f"faults={[rule_spec(rule) for rule in plan.faults]!r}")
    args += [f"{key}={value!r}" for key, value in plan.limits.items()]
    return f"@pytest.mark.fake_ses({', '.join(args)})"


def describe_fault(fault: FaultRecord) -> str:
    """One line: where, what kind, and what the client heard."""
    heard = fault.reply if fault.reply is not None else f"({fault.action}, no reply)"
    return (
        f"session {fault.session} command {fault.command} {fault.stage}: "
        f"{fault.source} {fault.name!r} -> {heard}"
    )


def _normal(message_id: str) -> str:
    return message_id.strip().strip("<>").strip()


def _listed(items: Sequence[str], indent: str = "    ") -> list[str]:
    lines = [f"{indent}{item}" for item in items[:SHOWN]]
    if len(items) > SHOWN:
        lines.append(f"{indent}... and {len(items) - SHOWN} more")
    return lines


@dataclasses.dataclass(frozen=True)
class DeliveryVerdict:
    """How each expected Message-ID fared on the server."""

    expected: tuple[str, ...]
    lost: tuple[str, ...]  # no copy on the server
    duplicated: Mapping[str, tuple[MessageRecord, ...]]  # 2+ copies

    @property
    def ok(self) -> bool:
        return not self.lost and not self.duplicated


def delivery_verdict(ids: Iterable[str], messages: Sequence[MessageRecord]) -> DeliveryVerdict:
    """Compare expected Message-IDs (with or without <>) with the messages the server recorded."""
    expected = tuple(ids)
    copies: dict[str, list[MessageRecord]] = {}
    for message in messages:
        if message.message_id is not None:
            copies.setdefault(_normal(message.message_id), []).append(message)
    lost = tuple(i for i in expected if not copies.get(_normal(i)))
    duplicated = {
        i: tuple(copies[_normal(i)]) for i in expected if len(copies.get(_normal(i), ())) > 1
    }
    return DeliveryVerdict(expected, lost, duplicated)


def _sessions_near(verdict: DeliveryVerdict, messages: Sequence[MessageRecord]) -> set[int]:
    """Sessions where the trouble happened: those holding a duplicate's copies, and for a lost
    message the session of the last message before it (in the expected order) that arrived."""
    near = {m.session for records in verdict.duplicated.values() for m in records}
    last_session: dict[str, int] = {}
    for message in messages:
        if message.message_id is not None:
            last_session[_normal(message.message_id)] = message.session
    lost = {_normal(i) for i in verdict.lost}
    previous: int | None = None
    for message_id in verdict.expected:
        key = _normal(message_id)
        if key in lost:
            near.add(previous if previous is not None else 1)
        elif key in last_session:
            previous = last_session[key]
    return near


def delivery_report(
    verdict: DeliveryVerdict,
    messages: Sequence[MessageRecord],
    faults: Sequence[FaultRecord],
    reproducer: str,
) -> str:
    """The failure text of `assert_delivered_once`."""
    bad = len(verdict.lost) + len(verdict.duplicated)
    lines = [
        f"{bad} of {len(verdict.expected)} messages were not delivered exactly once "
        f"(server recorded {len(messages)} messages)"
    ]
    if verdict.lost:
        lines.append(f"  lost ({len(verdict.lost)}, no copy on the server):")
        lines += _listed(list(verdict.lost))
    if verdict.duplicated:
        lines.append(f"  duplicated ({len(verdict.duplicated)}):")
        lines += _listed(
            [
                f"{message_id} x{len(records)} (sessions "
                f"{', '.join(str(r.session) for r in records)})"
                for message_id, records in verdict.duplicated.items()
            ]
        )
    near = _sessions_near(verdict, messages)
    nearby = [describe_fault(f) for f in faults if f.session in near]
    if nearby:
        lines.append(f"  faults in the sessions involved ({', '.join(map(str, sorted(near)))}):")
        lines += _listed(nearby)
    elif faults:
        lines.append(f"  faults fired ({len(faults)}):")
        lines += _listed([describe_fault(f) for f in faults])
    else:
        lines.append("  no fault fired")
    lines.append(f"  reproduce: {reproducer}")
    return "\n".join(lines)
