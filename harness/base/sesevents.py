"""The events SES publishes about a message it accepted, as data: which, when, and their JSON.

A message's events are planned when it is accepted (:func:`plan`), from its recipients (the
mailbox simulator's scenarios, `harness.core.simulator`; an ordinary address is delivered) and
timed on the server's clock. Each event has two JSON forms, both AWS's:

- the *event publishing* form (a configuration set's destination): ``eventType``, ``mail`` with
  ``tags``, and ``send`` / ``delivery`` / ``bounce`` / ``complaint``. Every kind.
  (AWS SES DG, "Contents of event data that Amazon SES publishes to Amazon SNS": documented.)
- the *notification* form (an identity's feedback notifications): ``notificationType``, ``mail``
  without tags, and ``delivery`` / ``bounce`` / ``complaint``. Bounce, Complaint and Delivery
  only. (AWS SES DG, "Amazon SNS notification contents for Amazon SES": documented; it also says
  the field is named ``eventType`` in the publishing form.)

The delays below are inferred: AWS promises no time, and a delivery is usually reported within
seconds (`processingTimeMillis` in AWS's examples is 500 to a few thousand).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from email.utils import getaddresses
from typing import Any

from harness.base.records import MessageRecord
from harness.core import simulator
from harness.core.errors import PlanError
from harness.core.simulator import Scenario

#: Seconds from acceptance to each event, on the server's clock (inferred).
DELIVERY_AFTER_S = 2.0
BOUNCE_AFTER_S = 2.0
COMPLAINT_AFTER_S = 5.0  # after the delivery it follows
#: The account the fake's ARNs name (AWS's documentation examples use it too).
ACCOUNT_ID = "123456789012"
#: The event kinds in the order SES reports them for one message; the publishing form's names.
KINDS = ("Send", "Reject", "Delivery", "DeliveryDelay", "Bounce", "Complaint")
#: Kinds an identity's feedback notifications carry (the notification form).
NOTIFICATION_KINDS = ("Bounce", "Complaint", "Delivery")
_DETAIL_KEY = {kind: kind[0].lower() + kind[1:] for kind in KINDS}


@dataclass(frozen=True)
class SesEvent:
    """One event about one accepted message.

    `ses_id` is the messageId the ``250`` or the API gave; `at` is when SES publishes it, on the
    server's clock; `body` is the publishing form (:meth:`notification` gives the other).
    """

    sequence: int
    kind: str
    ses_id: str
    recipients: tuple[str, ...]
    at: float
    configuration_set: str | None
    body: dict[str, Any] = field(repr=False)

    def notification(self) -> dict[str, Any] | None:
        """The notification form, or None for a kind notifications do not carry."""
        if self.kind not in NOTIFICATION_KINDS:
            return None
        mail = {k: v for k, v in self.body["mail"].items() if k != "tags"}
        key = _DETAIL_KEY[self.kind]
        return {"notificationType": self.kind, "mail": mail, key: self.body[key]}

    def to_dict(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "kind": self.kind,
            "message_id": self.ses_id,
            "recipients": list(self.recipients),
            "at": self.at,
            "timestamp": iso(self.at),
            "configuration_set": self.configuration_set,
            "event": self.body,
        }


@dataclass(frozen=True)
class FeedFaults:
    """How the events reach a scenario's client late and more than once, as SNS delivers to a
    webhook that was down: each event `delay_s` after SES published it (SNS retrying), and a
    seeded `duplicates` share of them twice (SNS delivers at least once)."""

    delay_s: float = 0.0
    duplicates: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not (0.0 <= self.delay_s <= 86_400.0 and 0.0 <= self.duplicates <= 1.0):
            raise ValueError("delay_s must be 0..86400 and duplicates 0..1")

    @classmethod
    def from_toml(cls, value: object) -> FeedFaults | None:
        """A scenario's ``events``: true, false, or ``{ delay_s = 300, duplicates = 0.3 }``."""
        if isinstance(value, bool):
            return cls() if value else None
        allowed = "true, false, or a table of delay_s (0..86400) and duplicates (0..1)"
        if not isinstance(value, dict) or set(value) - {"delay_s", "duplicates"}:
            raise PlanError("events", f"{value!r} is not usable", allowed=allowed)
        numbers = [value.get("delay_s", 0.0), value.get("duplicates", 0.0)]
        if not all(isinstance(n, int | float) and not isinstance(n, bool) for n in numbers):
            raise PlanError("events", "delay_s and duplicates are numbers", allowed=allowed)
        try:
            return cls(float(numbers[0]), float(numbers[1]))
        except ValueError:
            raise PlanError("events", f"{value!r} is out of range", allowed=allowed) from None

    def copies(self, event: SesEvent) -> int:
        """1, or 2 for the seeded share of events delivered twice."""
        if not self.duplicates:
            return 1
        digest = hashlib.sha256(f"{self.seed}:{event.ses_id}:{event.kind}".encode()).digest()
        return 2 if int.from_bytes(digest[:8], "big") / 2**64 < self.duplicates else 1


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


def configuration_set_of(record: MessageRecord) -> str | None:
    """The configuration set a message names: the API's ConfigurationSetName, else its
    ``X-SES-CONFIGURATION-SET`` header (SMTP; AWS SES DG, "Specifying a configuration set
    when you send email": documented)."""
    return record.configuration_set or record.header("X-SES-CONFIGURATION-SET")


def plan(record: MessageRecord, accepted_at: float) -> list[Planned]:
    """The events SES publishes about `record`, in order, each with its delay.

    Every message has a Send. Each recipient then gets what its simulator scenario says:
    success@, ooto@ and ordinary addresses a Delivery (ooto@'s automatic reply goes to the
    sender as mail, not as an event); complaint@ a Delivery and later a Complaint; bounce@ a
    Permanent/General Bounce; suppressionlist@ a Permanent/Suppressed Bounce. Recipients with
    the same outcome share one event.
    """
    delivered: list[str] = []
    bounced: list[str] = []
    suppressed: list[str] = []
    complained: list[str] = []
    for rcpt in record.rcpt_tos:
        scenario = simulator.scenario(rcpt)
        if scenario is Scenario.BOUNCE:
            bounced.append(rcpt)
        elif scenario is Scenario.SUPPRESSIONLIST:
            suppressed.append(rcpt)
        else:
            delivered.append(rcpt)
            if scenario is Scenario.COMPLAINT:
                complained.append(rcpt)
    feedback = _feedback_id(record.ses_id)
    events = [Planned("Send", record.rcpt_tos, 0.0, {})]
    if delivered:
        at = accepted_at + DELIVERY_AFTER_S
        events.append(
            Planned(
                "Delivery",
                tuple(delivered),
                DELIVERY_AFTER_S,
                _delivery(delivered, at, DELIVERY_AFTER_S),
            )
        )
    if bounced:
        at = accepted_at + BOUNCE_AFTER_S
        events.append(
            Planned(
                "Bounce",
                tuple(bounced),
                BOUNCE_AFTER_S,
                _bounce(bounced, at, feedback, suppressed=False),
            )
        )
    if suppressed:
        events.append(
            Planned(
                "Bounce",
                tuple(suppressed),
                0.0,
                _bounce(suppressed, accepted_at, feedback, suppressed=True),
            )
        )
    if complained:
        after = DELIVERY_AFTER_S + COMPLAINT_AFTER_S
        events.append(
            Planned(
                "Complaint",
                tuple(complained),
                after,
                _complaint(complained, accepted_at + after, feedback, record),
            )
        )
    return sorted(events, key=lambda e: e.after_s)


def body(
    planned: Planned, record: MessageRecord, configuration_set: str | None, region: str
) -> dict[str, Any]:
    """The publishing form of `planned` about `record`."""
    return {
        "eventType": planned.kind,
        "mail": mail(record, configuration_set, region),
        _DETAIL_KEY[planned.kind]: planned.detail,
    }


def mail(record: MessageRecord, configuration_set: str | None, region: str) -> dict[str, Any]:
    """The ``mail`` object: the message as SES took it (AWS SES DG, "Mail object")."""
    domain = record.mail_from.rpartition("@")[2] or "example.com"
    source_arn = f"arn:aws:ses:{region}:{ACCOUNT_ID}:identity/{domain}"
    caller = "ses-harness-smtp-user" if record.via == "smtp" else "ses-harness"
    tags: dict[str, list[str]] = {
        "ses:operation": [_OPERATION.get(record.via, "SendSmtpEmail")],
        "ses:source-ip": ["127.0.0.1"],
        "ses:from-domain": [domain],
        "ses:caller-identity": [caller],
    }
    if configuration_set:
        tags["ses:configuration-set"] = [configuration_set]
    return {
        "timestamp": iso(record.at),
        "source": record.mail_from,
        "sourceArn": source_arn,
        "sourceIp": "127.0.0.1",
        "callerIdentity": caller,
        "sendingAccountId": ACCOUNT_ID,
        "messageId": record.ses_id,
        "destination": list(record.rcpt_tos),
        "headersTruncated": False,
        "headers": [{"name": k, "value": v} for k, v in record.headers],
        "commonHeaders": common_headers(record),
        "tags": tags,
    }


_OPERATION = {"smtp": "SendSmtpEmail", "api-v2": "SendEmail", "api-v1": "SendRawEmail"}


def common_headers(record: MessageRecord) -> dict[str, Any]:
    common: dict[str, Any] = {}
    for key, name in (("from", "From"), ("to", "To"), ("cc", "Cc"), ("replyTo", "Reply-To")):
        value = record.header(name)
        if value:
            common[key] = [_format(n, a) for n, a in getaddresses([value])]
    if record.header("Return-Path"):
        common["returnPath"] = record.header("Return-Path")
    common["messageId"] = record.ses_id
    for key, name in (("date", "Date"), ("subject", "Subject")):
        value = record.header(name)
        if value is not None:
            common[key] = value
    return common


def _format(name: str, address: str) -> str:
    return f"{name} <{address}>" if name else address


def _delivery(recipients: list[str], at: float, after_s: float) -> dict[str, Any]:
    return {
        "timestamp": iso(at),
        "processingTimeMillis": int(after_s * 1000),
        "recipients": recipients,
        "smtpResponse": simulator.DELIVERY_SMTP_RESPONSE.value,
        "reportingMTA": simulator.DELIVERY_REPORTING_MTA.value,
        "remoteMtaIp": "127.0.0.1",
    }


def _bounce(recipients: list[str], at: float, feedback: str, *, suppressed: bool) -> dict[str, Any]:
    if suppressed:
        subtype = simulator.SUPPRESSED_SUBTYPE.value
        diagnostic = simulator.SUPPRESSED_DIAGNOSTIC.value
        reporting = simulator.SUPPRESSED_REPORTING_MTA.value
    else:
        subtype = "General"
        diagnostic = simulator.BOUNCE_DIAGNOSTIC.value
        reporting = simulator.BOUNCE_REPORTING_MTA.value
    return {
        "bounceType": "Permanent",
        "bounceSubType": subtype,
        "bouncedRecipients": [
            {
                "emailAddress": r,
                "action": "failed",
                "status": simulator.BOUNCE_STATUS.value,
                "diagnosticCode": diagnostic,
            }
            for r in recipients
        ],
        "timestamp": iso(at),
        "feedbackId": feedback,
        "reportingMTA": reporting,
    }


def _complaint(
    recipients: list[str], at: float, feedback: str, record: MessageRecord
) -> dict[str, Any]:
    return {
        "complainedRecipients": [{"emailAddress": r} for r in recipients],
        "timestamp": iso(at),
        "feedbackId": feedback,
        "userAgent": simulator.COMPLAINT_USER_AGENT.value,
        "complaintFeedbackType": simulator.COMPLAINT_FEEDBACK_TYPE.value,
        "arrivalDate": iso(record.at + DELIVERY_AFTER_S),
    }


def _feedback_id(ses_id: str) -> str:
    """A feedback id shaped as SES's (hex, dashes, ``-000000``), derived from the message's."""
    digest = hashlib.sha256(ses_id.encode()).hexdigest()
    parts = (digest[:16], digest[16:24], digest[24:28], digest[28:32], digest[32:36], digest[36:48])
    return "-".join(parts) + "-000000"
