"""The events SES publishes about a message it accepted, as data: which, when, and their JSON.

A message's events follow from its record (`harness.base.event_plan.plan`): its recipients (the
mailbox simulator's scenarios, `harness.core.simulator`) and its fates (a rule's bounce, the
account's suppression list: `harness.core.outcomes`), timed on the server's clock. Each event
has two JSON forms, both AWS's:

- the *event publishing* form (a configuration set's destination): ``eventType``, ``mail`` with
  ``tags``, and ``send`` / ``reject`` / ``delivery`` / ``deliveryDelay`` / ``bounce`` /
  ``complaint``. Every kind.
  (AWS SES DG, "Contents of event data that Amazon SES publishes to Amazon SNS": documented.)
- the *notification* form (an identity's feedback notifications): ``notificationType``, ``mail``
  without tags, and ``delivery`` / ``bounce`` / ``complaint``. Bounce, Complaint and Delivery
  only. (AWS SES DG, "Amazon SNS notification contents for Amazon SES": documented; it also says
  the field is named ``eventType`` in the publishing form.) Not Reject or DeliveryDelay.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from email.utils import getaddresses
from typing import Any

from harness.base.event_plan import Planned, iso
from harness.base.event_plan import plan as plan  # planned there, read from here as before
from harness.base.records import MessageRecord
from harness.core.errors import PlanError

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


def configuration_set_of(record: MessageRecord) -> str | None:
    """The configuration set a message names: the API's ConfigurationSetName, else its
    ``X-SES-CONFIGURATION-SET`` header (SMTP; AWS SES DG, "Specifying a configuration set
    when you send email": documented)."""
    return record.configuration_set or record.header("X-SES-CONFIGURATION-SET")


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
