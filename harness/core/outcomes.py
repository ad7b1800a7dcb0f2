"""What becomes of a message after SES accepted it, as plan actions: it bounces, it is complained
about, SES finds a virus in it, or its delivery is delayed.

Each is an action of a fault rule at stage EOM or API (``harness.core.plan``): the message is
accepted as usual (the ``250`` or the MessageId), and the outcome is recorded on its record as
a :class:`Fate`, from which its events follow (``harness.base.outcome_events``)::

    { stage = "EOM", probability = 0.05, action = "bounce" }
    { stage = "API", recipient = "*@aol.example", action = "complain", feedback_type = "abuse" }

Values and their evidence (AWS SES Developer Guide, "Contents of event data that Amazon SES
publishes to Amazon SNS", DG-EVENTS below; tags as in `profiles`):

- bounce types and subtypes: DG-EVENTS "Bounce types" table. Documented.
- complaint feedback types: DG-EVENTS "Complaint types" (IANA's MARF list). Documented.
- ``complaintSubType`` is null or ``OnAccountSuppressionList``: DG-EVENTS "Complaint subtypes".
  Documented.
- Reject's only reason, ``Bad content`` (a virus): DG-EVENTS "Reject object". Documented.
- DeliveryDelay's ``delayType`` values: DG-EVENTS "DeliveryDelay object" (the current page's
  list). Documented. Its example: ``TransientCommunicationFailure``, status ``4.4.1``,
  ``smtp; 421 4.4.1 Unable to connect to remote host``. Documented.
- the DSN status and diagnostic of each other bounce subtype and delay type: inferred (a
  typical receiver's words for it); a rule may give its own (`status`, `diagnostic`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from harness.core.errors import PlanError

#: Allowed subtypes of each bounce type (DG-EVENTS "Bounce types": documented).
BOUNCE_SUBTYPES: dict[str, tuple[str, ...]] = {
    "Undetermined": ("Undetermined",),
    "Permanent": ("General", "NoEmail", "Suppressed", "OnAccountSuppressionList"),
    "Transient": (
        "General",
        "MailboxFull",
        "MessageTooLarge",
        "ContentRejected",
        "AttachmentRejected",
    ),
}
#: Each subtype's DSN status and diagnostic code when a rule gives none. Permanent/General is
#: AWS's own example (DG-EVENTS "Bounce record": documented); the rest inferred.
BOUNCE_TEXTS: dict[tuple[str, str], tuple[str, str]] = {
    ("Undetermined", "Undetermined"): ("5.0.0", "smtp; 550 5.0.0 Undetermined error"),
    ("Permanent", "General"): ("5.1.1", "smtp; 550 5.1.1 user unknown"),
    ("Permanent", "NoEmail"): ("5.1.1", "smtp; 550 5.1.1 The email account does not exist"),
    ("Transient", "General"): ("4.4.7", "smtp; 451 4.4.7 Delivery time expired"),
    ("Transient", "MailboxFull"): ("5.2.2", "smtp; 552 5.2.2 Mailbox full"),
    ("Transient", "MessageTooLarge"): ("5.3.4", "smtp; 552 5.3.4 Message size exceeds limit"),
    ("Transient", "ContentRejected"): ("5.7.1", "smtp; 550 5.7.1 Message content rejected"),
    ("Transient", "AttachmentRejected"): ("5.7.1", "smtp; 550 5.7.1 Attachment rejected"),
}
#: A send to an address on the account's suppression list: the diagnostic SES gives, from AWS
#: Knowledge Center, "Do bounces from the Amazon SES suppression list affect my daily sending
#: quota?" ("an error message similar to the following"): documented. Status inferred (5.1.1, as
#: the global list's, user-reported in `simulator`).
ACCOUNT_SUPPRESSED_DIAGNOSTIC = (
    "Amazon SES did not send the message to this address because it is on the suppression "
    "list for your account. For more information about removing addresses from the "
    "suppression list, see the Amazon SES Developer Guide at "
    "https://docs.aws.amazon.com/ses/latest/DeveloperGuide/sending-email-suppression-list.html"
)
ON_ACCOUNT_LIST = "OnAccountSuppressionList"
#: Complaint feedback types (DG-EVENTS "Complaint types": documented).
FEEDBACK_TYPES = ("abuse", "auth-failure", "fraud", "not-spam", "other", "virus")
#: DeliveryDelay's delayType values (DG-EVENTS "DeliveryDelay object": documented), each with
#: the status and diagnostic of its delayed recipients (TransientCommunicationFailure's from
#: AWS's example: documented; the rest inferred).
DELAY_TYPES: dict[str, tuple[str, str]] = {
    "InternalFailure": ("4.0.0", "Amazon SES internal failure"),
    "General": ("4.0.0", "smtp; 451 4.0.0 Temporary failure, try again later"),
    "MailboxFull": ("4.2.2", "smtp; 452 4.2.2 Mailbox full"),
    "SpamDetected": ("4.7.1", "smtp; 421 4.7.1 Unsolicited mail detected, deferred"),
    "RecipientServerError": ("4.3.0", "smtp; 451 4.3.0 Temporary server error"),
    "IPFailure": ("4.7.0", "smtp; 421 4.7.0 IP not in whitelist, deferred"),
    "TransientCommunicationFailure": ("4.4.1", "smtp; 421 4.4.1 Unable to connect to remote host"),
    "BYOIPHostNameLookupUnavailable": ("4.4.3", "BYOIP host name lookup unavailable"),
    "Undetermined": ("4.0.0", "Undetermined delay"),
    "SendingDeferral": ("4.7.0", "Amazon SES deferred sending"),
}
_STATUS = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")


def _one_line(name: str, value: str | None) -> None:
    if value is not None and ("\r" in value or "\n" in value or len(value) > 1000):
        raise PlanError(name, "must be one line of at most 1,000 characters")


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise PlanError(name, f"{value!r} is not allowed", allowed=list(allowed))


@dataclass(frozen=True)
class Bounce:
    """Accept, then publish a Bounce `after_s` later (server clock): `bounce_type` and
    `bounce_subtype` as SES names them, the DSN `status` and `diagnostic` (defaults per
    subtype). A Permanent bounce puts the address on the account's suppression list when the
    account says so."""

    kind: ClassVar[str] = "bounce"
    bounce_type: str = "Permanent"
    bounce_subtype: str = "General"
    status: str | None = None  # e.g. "5.1.1"
    diagnostic: str | None = None  # e.g. "smtp; 550 5.1.1 user unknown"
    after_s: float = 2.0

    def __post_init__(self) -> None:
        _choice("bounce_type", self.bounce_type, tuple(BOUNCE_SUBTYPES))
        _choice("bounce_subtype", self.bounce_subtype, BOUNCE_SUBTYPES[self.bounce_type])
        if self.status is not None and not _STATUS.fullmatch(self.status):
            raise PlanError("status", f"{self.status!r} is not a DSN status", allowed="e.g. 5.1.1")
        _one_line("diagnostic", self.diagnostic)

    @property
    def hard(self) -> bool:
        """A hard bounce, one that puts the address on the account's list (not one that comes
        from a list already)."""
        return self.bounce_type == "Permanent" and self.bounce_subtype not in (
            "Suppressed",
            ON_ACCOUNT_LIST,
        )

    def texts(self) -> tuple[str, str]:
        """(status, diagnostic code) of each bounced recipient."""
        if self.bounce_subtype == ON_ACCOUNT_LIST:
            default = ("5.1.1", ACCOUNT_SUPPRESSED_DIAGNOSTIC)
        else:
            default = BOUNCE_TEXTS.get((self.bounce_type, self.bounce_subtype), ("5.0.0", ""))
        return self.status or default[0], self.diagnostic or default[1]


@dataclass(frozen=True)
class Complain:
    """Accept, deliver, then publish a Complaint `after_s` later (server clock) with
    `feedback_type`. The address joins the account's suppression list when the account says so.
    `complaint_subtype` ``OnAccountSuppressionList`` is what a send to an address already on
    the list for a complaint gets: a Complaint at once and no Delivery."""

    kind: ClassVar[str] = "complain"
    feedback_type: str = "abuse"
    after_s: float = 7.0
    complaint_subtype: str | None = None

    def __post_init__(self) -> None:
        _choice("feedback_type", self.feedback_type, FEEDBACK_TYPES)
        if self.complaint_subtype is not None:
            _choice("complaint_subtype", self.complaint_subtype, (ON_ACCOUNT_LIST,))


@dataclass(frozen=True)
class RejectVirus:
    """Accept, then publish a Reject (reason ``Bad content``: SES found a virus) `after_s`
    later, and nothing else for any recipient: SES stops processing the message."""

    kind: ClassVar[str] = "reject_virus"
    after_s: float = 0.0


@dataclass(frozen=True)
class DeliveryDelay:
    """Accept; 2 s later publish a DeliveryDelay (`delay_type`); after `delay_s` the final
    event: a Delivery (`then` = "delivery") or a Transient/General Bounce (`then` =
    "bounce": SES stopped trying at the delay's expirationTime)."""

    kind: ClassVar[str] = "delivery_delay"
    delay_type: str = "TransientCommunicationFailure"
    delay_s: float = 600.0
    then: str = "delivery"

    def __post_init__(self) -> None:
        _choice("delay_type", self.delay_type, tuple(DELAY_TYPES))
        _choice("then", self.then, ("delivery", "bounce"))


#: The actions that accept the message and decide its events; a rule may fire only where a
#: message is accepted (stage EOM or API).
OUTCOMES = (Bounce, Complain, RejectVirus, DeliveryDelay)
Aftermath = Bounce | Complain | RejectVirus | DeliveryDelay
_BY_KIND: dict[str, type[Aftermath]] = {cls.kind: cls for cls in OUTCOMES}


@dataclass(frozen=True)
class Fate:
    """What becomes of some recipients of an accepted message: `action` for `recipients`,
    decided by `source` ("rule:<label>", or "suppression" for the account's list)."""

    action: Aftermath
    recipients: tuple[str, ...]
    source: str

    def to_dict(self) -> dict[str, Any]:
        fields = {k: v for k, v in vars(self.action).items() if v is not None}
        out: dict[str, Any] = {"action": self.action.kind, **fields}
        return {**out, "recipients": list(self.recipients), "source": self.source}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fate:
        """The fate `to_dict` wrote (a store's ledger)."""
        fields = {k: v for k, v in data.items() if k not in ("action", "recipients", "source")}
        action = _BY_KIND[data["action"]](**fields)
        return cls(action, tuple(data["recipients"]), data["source"])

    def only(self, recipients: tuple[str, ...]) -> Fate | None:
        """This fate for those of `recipients` it names (an API request's rule, per message),
        or None when it names none of them."""
        mine = tuple(r for r in self.recipients if r in recipients)
        return Fate(self.action, mine, self.source) if mine else None
