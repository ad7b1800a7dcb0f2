"""The scorer: the client's claims against the server's ledger, per logical message. Pure.

Each message gets one class from the number of copies the server accepted and what the client
claims. A copy is the message's by its Message-ID or, where the user's mailer stamped its own,
by its envelope (see :mod:`harness.runner.identity`); `stray_copies` counts copies that match
no message, and the scorecard's `matching` says how the copies were matched.

| copies | claim                                   | class               |
|--------|-----------------------------------------|---------------------|
| 2+     | any                                     | `duplicated`        |
| 1      | sent                                    | `delivered_once`    |
| 1      | failed or not attempted                 | `misreported`       |
| 0 or 1 | uncertain                               | `uncertain`         |
| 0      | sent                                    | `silently_lost`     |
| 0      | failed, after the server refused it 5xx | `rejected_reported` |
| 0      | failed after transient faults only      | `given_up`          |
| 0      | not attempted (or not claimed at all)   | `abandoned`         |

``delivered_once_score = (delivered_once + rejected_reported) / messages``.

`uncertain` is the client saying it cannot know (the connection died after the final "."):
honest, so not `misreported` when a copy exists nor `silently_lost` when none does; and not
delivered once either, as the application still has to find out.

"Refused with a 5xx" is read from the ledger, not taken from the client: a transaction of the
message (tied to it by sender and first recipient) ended in a 5xx at RCPT, DATA or end of data.
So a 503 a client earns by breaking the protocol (smtplib leaves a transaction open when DATA is
refused) is not a verdict on the message, and a refusal at MAIL FROM, which names no message,
is not attributed: both leave the message `given_up`. Through the SES API, a message refused for
good (``MessageRejected``, a bad parameter: not a throttle) is named by its fault record, and a
client that reports it failed is `rejected_reported` too.

The ledger also gives the cost of getting there: `sessions` opened, `commands` sent, `retries`
(MAIL FROM commands beyond one per attempted message; a message is attempted when the client
claims sent or failed, or the server saw it at RCPT or later), `retried_5xx` (transactions for a
message after one of its transactions was refused with a 5xx; a transaction is tied to its
message by sender and first recipient, so refusals at MAIL FROM are not attributed),
`commands_after_421` (commands the client sent on a connection after the server said 421),
`throttle_violations` (sends refused by the rate or the daily quota), and time:
`virtual_elapsed_s` from the first call of the strategy to its last claim, and
``efficiency = fastest_possible_s / virtual_elapsed_s`` (at most 1), where
`fastest_possible_s` is the least time in which the limits and the modelled latency let a
perfect client achieve what this run achieved (the exact bounds are in
:func:`fastest_possible_s`). A strategy that sleeps more than it must, or resends, scores low.
"""

from __future__ import annotations

import enum
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from harness.base import sesevents
from harness.base.records import (
    FaultRecord,
    MessageRecord,
    SessionRecord,
)
from harness.core.limits import DAY_S, Limits
from harness.core.simulator import SIMULATOR_DOMAIN
from harness.runner.identity import Matching, match_copies
from harness.runner.strategy import Claim, ClaimStatus, OutgoingMessage
from harness.runner.transactions import read_wire

#: Every metric of a case score, in report order; expectations may name any of them.
METRICS = (
    "messages",
    "delivered_once",
    "misreported",
    "uncertain",
    "silently_lost",
    "rejected_reported",
    "given_up",
    "abandoned",
    "duplicated",
    "delivered_once_score",
    "sessions",
    "commands",
    "retries",
    "retried_5xx",
    "commands_after_421",
    "throttle_violations",
    "virtual_elapsed_s",
    "fastest_possible_s",
    "efficiency",
    "stray_copies",
    "sent_to_bounced",
)
_T = TypeVar("_T")
THROTTLES = ("rate_per_s", "daily_quota")


class MessageClass(enum.StrEnum):
    DELIVERED_ONCE = "delivered_once"
    MISREPORTED = "misreported"
    UNCERTAIN = "uncertain"
    SILENTLY_LOST = "silently_lost"
    REJECTED_REPORTED = "rejected_reported"
    GIVEN_UP = "given_up"
    ABANDONED = "abandoned"
    DUPLICATED = "duplicated"


@dataclass(frozen=True, slots=True)  # one per message of a case
class MessageScore:
    """The verdict on one message, with what it rests on."""

    id: str
    cls: MessageClass
    copies: int
    claim: ClaimStatus
    reply: str | None
    ses_ids: tuple[str, ...]
    sessions: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "class": self.cls.value,
            "copies": self.copies,
            "claim": self.claim.value,
            "reply": self.reply,
            "ses_ids": list(self.ses_ids),
            "sessions": list(self.sessions),
        }


@dataclass(frozen=True)
class Scorecard:
    score: dict[str, int | float]  # every name in METRICS
    messages: tuple[MessageScore, ...]
    matching: Matching[MessageRecord]  # how each server copy was tied to its message


def classify(copies: int, claim: Claim | None, refused: bool = False) -> MessageClass:
    """The class of one message from its accepted copies, the client's claim, and whether the
    server refused it with a 5xx."""
    status = claim.status if claim else ClaimStatus.NOT_ATTEMPTED
    if copies >= 2:
        return MessageClass.DUPLICATED
    if status is ClaimStatus.UNCERTAIN:
        return MessageClass.UNCERTAIN
    if copies == 1:
        return (
            MessageClass.DELIVERED_ONCE if status is ClaimStatus.SENT else MessageClass.MISREPORTED
        )
    if status is ClaimStatus.SENT:
        return MessageClass.SILENTLY_LOST
    if status is ClaimStatus.FAILED:
        return MessageClass.REJECTED_REPORTED if refused else MessageClass.GIVEN_UP
    return MessageClass.ABANDONED


def score_case(
    messages: Sequence[OutgoingMessage],
    claims: Iterable[Claim],
    *,
    sessions: Sequence[SessionRecord],
    accepted: Sequence[MessageRecord],
    faults: Sequence[FaultRecord],
    limits: Limits,
    latency_s: float,
    elapsed_s: float,
    arrivals_s: Sequence[float] | None = None,
) -> Scorecard:
    """Score one run of a strategy. `accepted` are the ledger's messages; a later claim for the
    same message replaces an earlier one; claims for unknown ids are ignored."""
    # Each message's recipients by its id, not the message: a streamed batch's messages are
    # objects made as they are read (tests/test_scoring_memory.py holds scoring's memory).
    by_id = {m.id: m.recipients for m in messages}
    claimed = {c.message_id: c for c in claims if c.message_id in by_id}
    matching = match_copies(messages, accepted)
    copies = matching.copies

    wire = read_wire(sessions, messages, faults)
    seen = wire.seen
    attempted = len(seen) + sum(
        1 for i, c in claimed.items() if c.status is not ClaimStatus.NOT_ATTEMPTED and i not in seen
    )
    seen.clear()  # 100,000 ids in a large case: not held while the verdicts are made

    verdicts = []
    shared: dict[tuple[int, ...], tuple[int, ...]] = {}  # a session's messages share its tuple
    for message in messages:
        claim = claimed.get(message.id)
        records = copies.get(message.id, [])
        verdicts.append(
            MessageScore(
                id=message.id,
                cls=classify(len(records), claim, message.id in wire.refused),
                copies=len(records),
                claim=claim.status if claim else ClaimStatus.NOT_ATTEMPTED,
                reply=claim.reply if claim else None,
                ses_ids=tuple(r.ses_id for r in records),
                sessions=_one(shared, tuple(r.session for r in records)),
            )
        )
    classes = Counter(v.cls for v in verdicts)
    total = len(messages)

    # A message's arrival by its place in the batch (the verdicts are in its order), and each
    # send's tuple once: 100,000 messages of one shape make one (r, a, taken), not 100,000.
    arrivals = list(arrivals_s) if arrivals_s is not None else [0.0] * total
    if len(arrivals) != total:
        raise ValueError(f"{len(arrivals)} arrival times for {total} messages")
    if len(by_id) < total:  # a Message-ID twice: each copy takes the later one's arrival
        last = dict(zip((m.id for m in messages), arrivals, strict=True))
        arrivals = [last[v.id] for v in verdicts]
    sends: dict[tuple[int, float, int], tuple[int, float, int]] = {}
    fastest = fastest_possible_s(
        [
            _one(
                sends,
                (
                    len(by_id[v.id]),
                    arrivals[n],
                    len(copies[v.id][0].rcpt_tos) if copies.get(v.id) else 0,
                ),
            )
            for n, v in enumerate(verdicts)
            if v.copies or v.cls is MessageClass.REJECTED_REPORTED
        ],
        limits=limits,
        latency_s=latency_s,
    )
    score: dict[str, int | float] = {"messages": total}
    score.update({cls.value: classes.get(cls, 0) for cls in MessageClass})
    score["delivered_once_score"] = (
        (classes[MessageClass.DELIVERED_ONCE] + classes[MessageClass.REJECTED_REPORTED]) / total
        if total
        else 1.0
    )
    score.update(
        sessions=len(sessions),
        commands=wire.commands,
        retries=max(0, wire.transactions - attempted),
        retried_5xx=wire.retried_5xx,
        commands_after_421=sum(s.commands_after_421 for s in sessions),
        throttle_violations=sum(1 for f in faults if f.source == "limit" and f.name in THROTTLES),
        virtual_elapsed_s=round(elapsed_s, 6),
        fastest_possible_s=round(fastest, 6),
        efficiency=round(efficiency(fastest, elapsed_s), 6),
    )
    score["stray_copies"] = len(matching.strays)
    score["sent_to_bounced"] = sent_to_bounced(accepted)
    return Scorecard({name: score[name] for name in METRICS}, tuple(verdicts), matching)


def sent_to_bounced(accepted: Sequence[MessageRecord]) -> int:
    """Messages the server took for an address that had already hard-bounced or complained:
    SES had published the Bounce (Permanent) or Complaint event before the message came
    (`harness.base.sesevents`, on the server's clock): the mailbox simulator's, a rule's seeded
    bounce or complaint, or a send to an address on the account's suppression list. An
    application that reads its events stops mailing such addresses; SES pauses accounts whose
    bounce or complaint rates stay high."""
    bad_since: dict[str, float] = {}
    for record in accepted:
        if not record.fates and not any(
            r.lower().endswith(SIMULATOR_DOMAIN) for r in record.rcpt_tos
        ):
            continue  # delivered: only the simulator and fates (rules, the list) bounce
        for event in sesevents.plan(record, record.at):
            permanent = event.detail.get("bounceType", "Permanent") == "Permanent"
            if event.kind in ("Bounce", "Complaint") and permanent:
                at = record.at + event.after_s
                for rcpt in event.recipients:
                    bad_since[rcpt] = min(bad_since.get(rcpt, at), at)
    if not bad_since:
        return 0
    return sum(
        1
        for record in accepted
        if any(bad_since.get(rcpt, math.inf) <= record.at for rcpt in record.rcpt_tos)
    )


def fastest_possible_s(
    sends: Sequence[tuple[int, float, int]], *, limits: Limits, latency_s: float
) -> float:
    """The least virtual time in which a perfect client could achieve what this run achieved.

    `sends` lists, per message that counts (delivered at least once, or rightly rejected):
    (recipients r, arrival time a in seconds from the start, recipients the server accepted it
    for: 0 when it did not). With n such messages, R the accepted recipients in all, and L the
    latency per command, it is the largest of these lower bounds:

    - round trips: each message costs MAIL, r RCPT, DATA and end of data, 3 + r commands, and
      each session at least an EHLO; sessions hold at most `session_limit` messages:
      ``L * (sum(3 + r) + ceil(n / session_limit))``;
    - arrivals: for each arrival time t, the messages arriving at t or later still need their
      round trips: ``max over t of t + L * sum(3 + r for those)``;
    - send rate: a bucket of `burst` tokens refilling at `rate_per_s`, where a send needs one
      token and takes one per accepted recipient, so the last send (of at most r_max
      recipients) starts once ``R - r_max + 1 - burst`` tokens have refilled:
      ``(R - r_max + 1 - burst) / rate_per_s``;
    - daily quota Q: recipients beyond each multiple of Q wait for the rolling window:
      ``86400 * floor((R - 1) / Q)``;
    - tarpit T messages a minute (Microsoft 365's delay): the last of the n messages accepted
      waits for its minute: ``60 * floor((n - 1) / T)``.

    It leaves out the faults: a greylisting server or a flaky network makes any client slower,
    and efficiency says how much time a strategy spent beyond what the limits impose.
    """
    if not sends:
        return 0.0
    per_session = limits.session_limit or len(sends)
    commands = sum(3 + r for r, _, _ in sends)
    bounds = [latency_s * (commands + math.ceil(len(sends) / per_session))]
    for start in sorted({a for _, a, _ in sends}):
        bounds.append(start + latency_s * sum(3 + r for r, a, _ in sends if a >= start))
    sent = [taken for _, _, taken in sends if taken]
    total = sum(sent)
    if sent and limits.rate_per_s:
        burst = limits.burst if limits.burst is not None else limits.rate_per_s
        bounds.append(max(0.0, total - max(sent) + 1 - burst) / limits.rate_per_s)
    if sent and limits.daily_quota:
        bounds.append(DAY_S * ((total - 1) // limits.daily_quota))
    if sent and limits.tarpit_per_minute:
        bounds.append(60.0 * ((len(sent) - 1) // limits.tarpit_per_minute))
    return max(bounds)


def efficiency(fastest_s: float, elapsed_s: float) -> float:
    """``fastest_possible_s / virtual_elapsed_s``, at most 1; 1 when nothing took any time."""
    if elapsed_s <= 0:
        return 1.0
    return min(1.0, fastest_s / elapsed_s)


def _one(shared: dict[_T, _T], value: _T) -> _T:  # the equal one kept already, else `value`
    return shared.setdefault(value, value)
