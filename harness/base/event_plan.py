"""Which events SES publishes about an accepted message, when, and their objects (``bounce``,
``delivery``...): from its recipients (the mailbox simulator's scenarios, `core.simulator`) and
the fates its record holds (a rule's outcome, the account's suppression list:
`core.outcomes`). A pure function of the record, so the events follow from the ledger.

The objects' fields are AWS's (SES DG, "Contents of event data that Amazon SES publishes to
Amazon SNS": documented); the delays are inferred (AWS promises no time; a delivery is usually
reported within seconds, `processingTimeMillis` in AWS's examples is 500 to a few thousand).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from harness.base.records import MessageRecord
from harness.core import simulator
from harness.core.outcomes import DELAY_TYPES, Bounce, Complain, DeliveryDelay, RejectVirus
from harness.core.simulator import Scenario

#: Seconds from acceptance to each event, on the server's clock (inferred).
DELIVERY_AFTER_S = 2.0
BOUNCE_AFTER_S = 2.0
COMPLAINT_AFTER_S = 5.0  # after the delivery it follows
#: Reject's only reason: SES found a virus (DG-EVENTS "Reject object": documented).
REJECT_REASON = "Bad content"
#: The userAgent of a complaint about an ordinary address: AWS's example's (DG-EVENTS
#: "Complaint record": documented as an example).
COMPLAINT_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/60.0.3112.90 Safari/537.36"
)
#: Who reports a bounce from the account's list (inferred: as the global list's, in
#: `simulator`) and a delay (DG-EVENTS: "the IP address of the MTA"; ours is loopback).
LIST_REPORTING_MTA = "dns; amazonses.com"
DELAY_REPORTING_MTA = "127.0.0.1"


@dataclass(frozen=True)
class Planned:
    """An event decided at acceptance, before it has a number: kind, recipients, delay."""

    kind: str
    recipients: tuple[str, ...]
    after_s: float
    detail: dict[str, Any]


def iso(at: float) -> str:
    """SES's timestamp form: ``2026-01-01T00:00:02.000Z``."""
    whole = int(at)
    millis = round((at - whole) * 1000)
    if millis == 1000:
        whole, millis = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


def plan(record: MessageRecord, accepted_at: float) -> list[Planned]:
    """The events SES publishes about `record`, in order, each with its delay.

    Every message has a Send. A virus (a ``reject_virus`` fate) ends it there: a Reject, and
    nothing for any recipient. Else each recipient gets what its simulator scenario says
    (success@, ooto@: a Delivery; complaint@ a Delivery and later a Complaint; bounce@ a
    Permanent/General Bounce; suppressionlist@ a Permanent/Suppressed Bounce at once), or for
    an ordinary address the first fate naming it, or a Delivery. Recipients with the same
    outcome share one event.
    """
    events = [Planned("Send", record.rcpt_tos, 0.0, {})]
    reject = next((f.action for f in record.fates if isinstance(f.action, RejectVirus)), None)
    if reject is not None:
        detail = {"reason": REJECT_REASON}
        return [*events, Planned("Reject", record.rcpt_tos, reject.after_s, detail)]
    outcome: dict[str, object] = {}
    for fate in reversed(record.fates):  # the first fate naming a recipient decides
        outcome.update(dict.fromkeys(fate.recipients, fate.action))
    groups: dict[object, list[str]] = {}
    for rcpt in record.rcpt_tos:
        key = simulator.scenario(rcpt) or outcome.get(rcpt)
        groups.setdefault(key, []).append(rcpt)
    delivered = [r for key, rcpts in groups.items() if _delivered(key) for r in rcpts]
    feedback = _Feedback(record.ses_id)
    if delivered:
        events.append(_delivery(delivered, accepted_at, DELIVERY_AFTER_S))
    for key, rcpts in groups.items():
        if key is Scenario.BOUNCE:
            texts = (simulator.BOUNCE_STATUS.value, simulator.BOUNCE_DIAGNOSTIC.value)
            reporting = simulator.BOUNCE_REPORTING_MTA.value
            bounce = Bounce(status=texts[0], diagnostic=texts[1], after_s=BOUNCE_AFTER_S)
            events.append(_bounce(bounce, rcpts, accepted_at, feedback.next(), reporting))
        elif key is Scenario.SUPPRESSIONLIST:
            bounce = Bounce(
                bounce_subtype=simulator.SUPPRESSED_SUBTYPE.value,
                status=simulator.BOUNCE_STATUS.value,
                diagnostic=simulator.SUPPRESSED_DIAGNOSTIC.value,
                after_s=0.0,
            )
            reporting = simulator.SUPPRESSED_REPORTING_MTA.value
            events.append(_bounce(bounce, rcpts, accepted_at, feedback.next(), reporting))
        elif isinstance(key, Bounce):
            events.append(_bounce(key, rcpts, accepted_at, feedback.next()))
    for key, rcpts in groups.items():
        if key is Scenario.COMPLAINT:
            after = DELIVERY_AFTER_S + COMPLAINT_AFTER_S
            feedback_type = simulator.COMPLAINT_FEEDBACK_TYPE.value
            complaint = Complain(feedback_type, after)
            user_agent = simulator.COMPLAINT_USER_AGENT.value
            events.append(_complaint(complaint, rcpts, accepted_at, feedback.next(), user_agent))
        elif isinstance(key, Complain):
            agent = COMPLAINT_USER_AGENT
            events.append(_complaint(key, rcpts, accepted_at, feedback.next(), agent))
    for key, rcpts in groups.items():
        if isinstance(key, DeliveryDelay):
            events.extend(_delayed(key, rcpts, accepted_at, feedback))
    return sorted(events, key=lambda e: e.after_s)


def joins(record: MessageRecord) -> list[tuple[str, str, float, str]]:
    """The addresses SES puts on the account's suppression list for `record`'s events, as
    (address, reason, when, feedback id): each hard bounce (BOUNCE) and complaint (COMPLAINT),
    when it is published. Only fates can make them (the simulator's never join)."""
    if not record.fates:
        return []
    out = []
    for event in plan(record, record.at):
        detail, at = event.detail, record.at + event.after_s
        if event.kind == "Bounce" and detail["bounceType"] == "Permanent":
            if detail["bounceSubType"] not in ("Suppressed", "OnAccountSuppressionList"):
                out += [(r, "BOUNCE", at, detail["feedbackId"]) for r in event.recipients]
        elif event.kind == "Complaint" and "complaintSubType" not in detail:
            out += [(r, "COMPLAINT", at, detail["feedbackId"]) for r in event.recipients]
    return out


def _delivered(outcome: object) -> bool:
    """Whether recipients with this outcome get a Delivery (first, for a complaint)."""
    if isinstance(outcome, Complain):
        return outcome.complaint_subtype is None  # else never sent: on the account's list
    return outcome in (None, Scenario.SUCCESS, Scenario.OOTO, Scenario.COMPLAINT)


class _Feedback:
    """A message's feedback ids, one per bounce or complaint, shaped as SES's (hex, dashes,
    ``-000000``) and derived from the message's id (the first from it alone)."""

    def __init__(self, ses_id: str) -> None:
        self.ses_id = ses_id
        self.count = 0

    def next(self) -> str:
        seed = self.ses_id if not self.count else f"{self.ses_id}:{self.count}"
        self.count += 1
        digest = hashlib.sha256(seed.encode()).hexdigest()
        parts = (digest[:16], digest[16:24], digest[24:28], digest[28:32], digest[32:36])
        return "-".join((*parts, digest[36:48])) + "-000000"


def _delivery(recipients: list[str], accepted_at: float, after_s: float) -> Planned:
    detail = {
        "timestamp": iso(accepted_at + after_s),
        "processingTimeMillis": int(after_s * 1000),
        "recipients": recipients,
        "smtpResponse": simulator.DELIVERY_SMTP_RESPONSE.value,
        "reportingMTA": simulator.DELIVERY_REPORTING_MTA.value,
        "remoteMtaIp": "127.0.0.1",
    }
    return Planned("Delivery", tuple(recipients), after_s, detail)


def _bounce(
    bounce: Bounce,
    recipients: list[str],
    accepted_at: float,
    feedback: str,
    reporting: str | None = None,
) -> Planned:
    status, diagnostic = bounce.texts()
    if reporting is None:
        listed = bounce.bounce_subtype == "OnAccountSuppressionList"
        reporting = LIST_REPORTING_MTA if listed else simulator.BOUNCE_REPORTING_MTA.value
    bounced = [
        {"emailAddress": r, "action": "failed", "status": status, "diagnosticCode": diagnostic}
        for r in recipients
    ]
    detail = {
        "bounceType": bounce.bounce_type,
        "bounceSubType": bounce.bounce_subtype,
        "bouncedRecipients": bounced,
        "timestamp": iso(accepted_at + bounce.after_s),
        "feedbackId": feedback,
        "reportingMTA": reporting,
    }
    return Planned("Bounce", tuple(recipients), bounce.after_s, detail)


def _complaint(
    complaint: Complain,
    recipients: list[str],
    accepted_at: float,
    feedback: str,
    user_agent: str,
) -> Planned:
    detail: dict[str, Any] = {
        "complainedRecipients": [{"emailAddress": r} for r in recipients],
        "timestamp": iso(accepted_at + complaint.after_s),
        "feedbackId": feedback,
    }
    if complaint.complaint_subtype is not None:  # never sent, so no feedback report
        detail["complaintSubType"] = complaint.complaint_subtype
    else:
        detail["userAgent"] = user_agent
        detail["complaintFeedbackType"] = complaint.feedback_type
        detail["arrivalDate"] = iso(accepted_at + DELIVERY_AFTER_S)
    return Planned("Complaint", tuple(recipients), complaint.after_s, detail)


def _delayed(
    delay: DeliveryDelay, recipients: list[str], accepted_at: float, feedback: _Feedback
) -> list[Planned]:
    """The DeliveryDelay (when the first try would have delivered), then the final event."""
    status, diagnostic = DELAY_TYPES[delay.delay_type]
    first_s = min(DELIVERY_AFTER_S, delay.delay_s)
    detail = {
        "timestamp": iso(accepted_at + first_s),
        "delayType": delay.delay_type,
        "expirationTime": iso(accepted_at + delay.delay_s),
        "delayedRecipients": [
            {"emailAddress": r, "status": status, "diagnosticCode": diagnostic} for r in recipients
        ],
        "reportingMTA": DELAY_REPORTING_MTA,
    }
    events = [Planned("DeliveryDelay", tuple(recipients), first_s, detail)]
    if delay.then == "delivery":
        events.append(_delivery(recipients, accepted_at, delay.delay_s))
    else:
        expired = Bounce("Transient", "General", after_s=delay.delay_s)
        events.append(_bounce(expired, recipients, accepted_at, feedback.next()))
    return events
