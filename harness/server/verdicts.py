"""Readable verdicts over the ledger: who was lost, who was duplicated, which faults were near.

Pure functions over ledger records and plans, for a test's view of a server (the `fake_ses`
fixture, `async with FakeSES(...)`). Every failure text ends with a one-line reproducer.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from harness.base.ledger import FaultRecord, MessageRecord
from harness.core.plan import Plan, Rule

#: How many ids or faults a failure message lists before it says "... and N more".
SHOWN = 10
#: Of a long list of faults, the first few of each kind are shown (within SHOWN in all).
SHOWN_PER_KIND = 3

# What the client got from a fault that sent no reply, in words (a reply is quoted as it is).
_WITHOUT_REPLY = {
    "drop": "dropped the connection, no reply",
    "drop_after_accept": "kept the message, then dropped the connection before its 250",
    "delay": "delayed the reply",
    "stall": "stalled, no reply",
    "bounce": "accepted it; SES then publishes a Bounce",
    "complain": "accepted it; SES then publishes a Delivery and a Complaint",
    "reject_virus": "accepted it; SES then publishes a Reject (a virus)",
    "delivery_delay": "accepted it; SES then publishes a DeliveryDelay",
}


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
    args = [f"profile={plan.profile_name!r}", f"seed={plan.seed!r}"]
    if plan.faults:
        args.append(f"faults={[rule_spec(rule) for rule in plan.faults]!r}")
    args += [f"{key}={value!r}" for key, value in plan.limits.items()]
    return f"@pytest.mark.fake_ses({', '.join(args)})"


def fault_outcome(action: str | None, reply: str | None) -> str:
    """What the client got from a fault: its reply, or in words what the server did instead.

    >>> fault_outcome("drop", None)
    'dropped the connection, no reply'
    """
    if reply is not None:
        return reply
    return _WITHOUT_REPLY.get(action or "", "no reply")


def describe_fault(fault: FaultRecord) -> str:
    """One line: where, what kind, and what the client heard."""
    return (
        f"session {fault.session} command {fault.command} {fault.stage}: "
        f"{fault.source} {fault.name!r} -> {fault_outcome(fault.action, fault.reply)}"
    )


def fault_kinds(kinds: Sequence[str]) -> str:
    """How many of each kind, most first: ``"940 limit 'rate_per_s', 6 rule 'greylist'"``."""
    counts = Counter(kinds)
    return ", ".join(f"{n} {kind}" for kind, n in counts.most_common())


def summarised(lines: Sequence[str], kinds: Sequence[str], indent: str = "    ") -> list[str]:
    """A long list of faults cut to size: the first few of each kind (so one rare fault is not
    hidden behind hundreds of throttles), in order, then "... and N more" with what they are.
    `kinds[i]` is the kind of `lines[i]`, e.g. ``"limit 'rate_per_s'"``."""
    if len(lines) <= SHOWN:
        return [f"{indent}{line}" for line in lines]
    seen: Counter[str] = Counter()
    picked = []
    for index, kind in enumerate(kinds):
        if seen[kind] < SHOWN_PER_KIND:
            seen[kind] += 1
            picked.append(index)
    picked = picked[:SHOWN]
    rest = [kinds[i] for i in range(len(lines)) if i not in set(picked)]
    return [f"{indent}{lines[i]}" for i in picked] + [
        f"{indent}... and {len(rest)} more: {fault_kinds(rest)}"
    ]


def _kind(fault: FaultRecord) -> str:
    return f"{fault.source} {fault.name!r}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _sessions_words(numbers: Sequence[int]) -> str:
    """``session 1``, ``sessions 1, 3``: a number in brackets read as a count before."""
    return f"session{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))}"


def carried_note(sessions: Iterable[int]) -> str | None:
    """The line that says which sessions began before this test (None: none did)."""
    numbers = sorted(set(sessions))
    if not numbers:
        return None
    listed = ", ".join(map(str, numbers))
    return (
        f"session{'s' if len(numbers) > 1 else ''} {listed} began in an earlier test and "
        "carried over (a reused connection): counted from this test's start"
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
    """How each expected Message-ID (or recipient) fared on the server."""

    expected: tuple[str, ...]
    lost: tuple[str, ...]  # no copy on the server
    duplicated: Mapping[str, tuple[MessageRecord, ...]]  # 2+ copies
    last_session: Mapping[str, int] = dataclasses.field(default_factory=dict)  # by normal key
    noun: str = "messages"  # what `expected` lists: "messages" or "recipients"

    @property
    def ok(self) -> bool:
        return not self.lost and not self.duplicated


def _verdict(
    expected: tuple[str, ...],
    keys_of: Callable[[MessageRecord], Iterable[str]],
    normal: Callable[[str], str],
    messages: Sequence[MessageRecord],
    noun: str,
) -> DeliveryVerdict:
    copies: dict[str, list[MessageRecord]] = {}
    for message in messages:
        for key in keys_of(message):
            copies.setdefault(normal(key), []).append(message)
    lost = tuple(i for i in expected if not copies.get(normal(i)))
    duplicated = {
        i: tuple(copies[normal(i)]) for i in expected if len(copies.get(normal(i), ())) > 1
    }
    last_session = {key: records[-1].session for key, records in copies.items()}
    return DeliveryVerdict(expected, lost, duplicated, last_session, noun)


def delivery_verdict(ids: Iterable[str], messages: Sequence[MessageRecord]) -> DeliveryVerdict:
    """Compare expected Message-IDs (with or without <>) with the messages the server recorded."""
    return _verdict(
        tuple(ids),
        lambda m: () if m.message_id is None else (m.message_id,),
        _normal,
        messages,
        "messages",
    )


def recipient_verdict(
    recipients: Iterable[str], messages: Sequence[MessageRecord]
) -> DeliveryVerdict:
    """Compare expected envelope recipients (RCPT TO, any case) with the messages recorded:
    each must be in exactly one message. For senders that hide Message-IDs (Django's
    `send_mass_mail`), and the same whether a message went to one recipient or several."""
    return _verdict(
        tuple(recipients), lambda m: m.rcpt_tos, lambda r: r.strip().lower(), messages, "recipients"
    )


def _sessions_near(verdict: DeliveryVerdict) -> set[int]:
    """Sessions where the trouble happened: those holding a duplicate's copies, and for a lost
    one the session of the last one before it (in the expected order) that arrived."""
    near = {m.session for records in verdict.duplicated.values() for m in records}
    normal = _normal if verdict.noun == "messages" else lambda r: r.strip().lower()
    lost = {normal(i) for i in verdict.lost}
    previous: int | None = None
    for expected in verdict.expected:
        key = normal(expected)
        if key in lost:
            near.add(previous if previous is not None else 1)
        elif key in verdict.last_session:
            previous = verdict.last_session[key]
    return near


def _own_ids_hint(verdict: DeliveryVerdict, messages: Sequence[MessageRecord]) -> str | None:
    """For ids lost while other messages arrived: the mailer may stamp its own Message-IDs."""
    if verdict.noun != "messages" or not verdict.lost:
        return None
    expected = {_normal(i) for i in verdict.expected}
    others = sum(
        1 for m in messages if m.message_id is None or _normal(m.message_id) not in expected
    )
    if not others:
        return None
    counted = f"{others} recorded message{'s carry' if others > 1 else ' carries'}"
    return (
        f"  {counted} none of the expected Message-IDs: if your mailer stamps its own "
        "(Django, Flask-Mail, nodemailer and PHPMailer do), assert by envelope recipient: "
        "fake_ses.assert_delivered_once_to(recipients)"
    )


def delivery_report(
    verdict: DeliveryVerdict,
    messages: Sequence[MessageRecord],
    faults: Sequence[FaultRecord],
    reproducer: str,
    carried: Iterable[int] = (),
) -> str:
    """The failure text of `assert_delivered_once` (and `assert_delivered_once_to`).

    `carried`: the sessions that began before this test, named when they are involved.
    """
    bad = len(verdict.lost) + len(verdict.duplicated)
    lines = [
        f"{bad} of {len(verdict.expected)} {verdict.noun} were not delivered exactly once "
        f"(server recorded {len(messages)} messages)"
    ]
    if verdict.lost:
        lines.append(f"  not delivered ({len(verdict.lost)}, no copy on the server):")
        lines += _listed(list(verdict.lost))
    hint = _own_ids_hint(verdict, messages)
    if hint:
        lines.append(hint)
    if verdict.duplicated:
        lines.append(f"  duplicated ({len(verdict.duplicated)}):")
        lines += _listed(
            [
                f"{key} x{len(records)} (sessions {', '.join(str(r.session) for r in records)})"
                for key, records in verdict.duplicated.items()
            ]
        )
    near = _sessions_near(verdict)
    nearby = [f for f in faults if f.session in near]
    if nearby:
        lines.append(f"  {_count(len(nearby), 'fault')} in {_sessions_words(sorted(near))}:")
        lines += summarised([describe_fault(f) for f in nearby], [_kind(f) for f in nearby])
    elif faults:
        lines.append(f"  {_count(len(faults), 'fault')} fired:")
        lines += summarised([describe_fault(f) for f in faults], [_kind(f) for f in faults])
    else:
        lines.append("  no fault fired")
    note = carried_note(set(carried) & (near | {m.session for m in messages}))
    if note:
        lines.append(f"  {note}")
    lines.append(f"  reproduce: {reproducer}")
    return "\n".join(lines)


def fired_by_name(faults: list[FaultRecord]) -> list[str]:
    """One line per limit or rule that fired: how often, and where first."""
    by_name: dict[tuple[str, str, int | None], list[FaultRecord]] = {}
    for fault in faults:  # two rules may share a label: each is its own line
        by_name.setdefault((fault.source, fault.name, fault.rule_index), []).append(fault)
    lines = []
    for (source, name, _), records in by_name.items():
        first = records[0]
        heard = first.reply if first.reply is not None else f"({first.action}, no reply)"
        lines.append(
            f"{source} {name!r} fired {len(records)}x, first in session {first.session} "
            f"command {first.command} {first.stage} -> {heard}"
        )
    return lines
