"""What Amazon SNS posts to an HTTP(S) subscriber, as data: the subscription and its messages.

An HTTP subscriber gets a ``SubscriptionConfirmation`` first (with the ``SubscribeURL`` that
confirms it), then one ``Notification`` a published message, its ``Message`` the SES event's
JSON. Each is a POST of JSON with ``Content-Type: text/plain; charset=UTF-8`` and the
``x-amz-sns-message-type``, ``x-amz-sns-message-id``, ``x-amz-sns-topic-arn`` (and, for a
notification, ``x-amz-sns-subscription-arn``) headers. (AWS SNS DG, "Parse Amazon SNS message
formats", HTTP/HTTPS headers and JSON formats: documented.) A subscription with raw message
delivery gets the bare ``Message`` instead (same page; documented).

Deviation, on purpose: SNS sends notifications only once the subscription is confirmed; the
fake sends them anyway (django-ses, say, confirms only SubscribeURLs on amazonaws.com) and
records whether the application confirmed (`Subscription.confirmed`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from harness.base.sesevents import ACCOUNT_ID, iso
from harness.server.events.signing import signing_key

#: The topic `events_url` subscribes to (FakeSES(events_url=...), serve --events-url).
DEFAULT_TOPIC = "ses-harness-events"
SIGNATURE_VERSIONS = ("1", "2")
_NAMESPACE = uuid.UUID("5d1b0a4e-57c3-4b0e-9a6e-6b9d2f3c1a00")


@dataclass
class Subscription:
    """One HTTP(S) subscriber of one topic.

    `signature_version` "1" (SHA1, SNS's default) or "2" (SHA256), or None to send unsigned;
    `form` "event" (the publishing form, every kind) or "notification" (an identity's feedback
    notifications: Bounce, Complaint, Delivery); `raw` sends the bare SES JSON.
    """

    url: str
    topic_arn: str
    signature_version: str | None = "1"
    form: str = "event"
    raw: bool = False
    confirmed: bool = False
    token: str = field(default_factory=lambda: uuid.uuid4().hex * 2)

    def __post_init__(self) -> None:
        if self.signature_version is not None and self.signature_version not in SIGNATURE_VERSIONS:
            raise ValueError(
                f"signature_version must be one of {', '.join(SIGNATURE_VERSIONS)} or None, "
                f"got {self.signature_version!r}"
            )
        if self.form not in ("event", "notification"):
            raise ValueError(f"form must be 'event' or 'notification', got {self.form!r}")
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"an SNS HTTP subscriber's URL starts with http(s)://: {self.url!r}")

    @property
    def arn(self) -> str:
        return f"{self.topic_arn}:{uuid.uuid5(_NAMESPACE, self.url + self.topic_arn)}"


def topic_arn(region: str, name: str = DEFAULT_TOPIC) -> str:
    return f"arn:aws:sns:{region}:{ACCOUNT_ID}:{name}"


def message_id(*parts: object) -> str:
    """A deterministic SNS MessageId: a retry of one message carries the same id."""
    return str(uuid.uuid5(_NAMESPACE, "\x00".join(map(str, parts))))


def confirmation(sub: Subscription, at: float, sns_url: str) -> dict[str, Any]:
    """The SubscriptionConfirmation `sub` gets first."""
    subscribe_url = (
        f"{sns_url}/?Action=ConfirmSubscription&TopicArn={sub.topic_arn}&Token={sub.token}"
    )
    body = {
        "Type": "SubscriptionConfirmation",
        "MessageId": message_id("confirm", sub.arn),
        "Token": sub.token,
        "TopicArn": sub.topic_arn,
        "Message": (
            f"You have chosen to subscribe to the topic {sub.topic_arn}.\n"
            "To confirm the subscription, visit the SubscribeURL included in this message."
        ),
        "SubscribeURL": subscribe_url,
        "Timestamp": iso(at),
    }
    return _signed(body, sub, sns_url)


def notification(
    sub: Subscription, message: dict[str, Any], sns_id: str, at: float, sns_url: str
) -> dict[str, Any]:
    """The Notification carrying `message` (an SES event's JSON) to `sub`."""
    body = {
        "Type": "Notification",
        "MessageId": sns_id,
        "TopicArn": sub.topic_arn,
        "Message": json.dumps(message, separators=(",", ":")),
        "Timestamp": iso(at),
        "UnsubscribeURL": f"{sns_url}/?Action=Unsubscribe&SubscriptionArn={sub.arn}",
    }
    return _signed(body, sub, sns_url)


def headers(sub: Subscription, body: dict[str, Any]) -> dict[str, str]:
    out = {
        "Content-Type": "text/plain; charset=UTF-8",
        "User-Agent": "Amazon Simple Notification Service Agent",
        "x-amz-sns-message-type": body["Type"],
        "x-amz-sns-message-id": body["MessageId"],
        "x-amz-sns-topic-arn": sub.topic_arn,
    }
    if body["Type"] == "Notification":
        out["x-amz-sns-subscription-arn"] = sub.arn
    if sub.raw and body["Type"] == "Notification":
        out["x-amz-sns-rawdelivery"] = "true"
    return out


def payload(sub: Subscription, body: dict[str, Any]) -> bytes:
    """The POST's bytes: the SNS JSON, or the bare message for raw delivery."""
    if sub.raw and body["Type"] == "Notification":
        return str(body["Message"]).encode()
    return json.dumps(body, indent=2).encode()


def _signed(body: dict[str, Any], sub: Subscription, sns_url: str) -> dict[str, Any]:
    if sub.signature_version is None:
        return body
    body["SignatureVersion"] = sub.signature_version
    body["Signature"] = signing_key().sign(body, sub.signature_version)
    body["SigningCertURL"] = f"{sns_url}/{CERTIFICATE_PATH}"
    return body


#: Where the signing certificate is served, named as SNS names its own.
CERTIFICATE_PATH = "SimpleNotificationService-ses-harness.pem"
