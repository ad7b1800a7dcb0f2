"""SES's mailbox simulator as data: which address plays which scenario, and why we believe it.

SES answers a send to ``<scenario>[+label]@simulator.amazonses.com`` as it answers any send (a
``250 Ok <id>`` over SMTP, a MessageId from the API) and shows the scenario only afterwards, in
the events it publishes. Evidence (tags as in `profiles`):

- DG-SIMULATOR: AWS SES Developer Guide, "Using the mailbox simulator" (mailbox-simulator.html):
  the five addresses, labels (``bounce+label1@``), "550 5.1.1 Unknown User" for bounce@, the
  automatic reply of ooto@ sent to the Return-Path (else MAIL FROM), the complaint of
  complaint@, the hard bounce of suppressionlist@ "as if the address were on the suppression
  list"; simulator addresses never join the suppression list. Documented.
- A 2013 report of the simulator's notifications (geek-tips.imtqy.com/articles/540709):
  bounce@ gives bounceType Permanent, bounceSubType General, status 5.1.1, diagnosticCode
  "smtp; 550 5.1.1 user unknown", reportingMTA "dsn; a8-96.smtp-out.amazonses.com". User-reported.
- A suppressed address's bounce (pastebin.com/GaJQvnXR; carbon/Amazon's SesNotification.cs, 2014,
  for a simulator address): bounceSubType Suppressed, reportingMTA "dns; amazonses.com",
  diagnosticCode "Amazon SES has suppressed sending to this address...". User-reported.
- Which list suppressionlist@ plays: the global one, "as if the recipient's address is on the
  global suppression list" (DG-SIMULATOR, current text): documented; the global list's subtype
  is Suppressed (DG, "Contents of event data...": "Bounce types"), the account-level list's
  OnAccountSuppressionList (`harness.core.suppression`). One 2026 report has suppressionlist@
  give the General subtype bounce@ gives; we keep the documented list's subtype.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from harness.core.profiles import DOC, INFER, USER, Evidence

SIMULATOR_DOMAIN = "simulator.amazonses.com"


class Scenario(enum.StrEnum):
    """What the simulator does with a message after accepting it."""

    SUCCESS = "success"
    BOUNCE = "bounce"
    OOTO = "ooto"
    COMPLAINT = "complaint"
    SUPPRESSIONLIST = "suppressionlist"


@dataclass(frozen=True)
class Fact:
    """One value of an event and why we believe it."""

    value: str
    evidence: Evidence
    source: str


#: The Bounce of bounce@: a hard bounce from the recipient's server.
BOUNCE_STATUS = Fact("5.1.1", DOC, "DG-SIMULATOR: 550 5.1.1 Unknown User")
BOUNCE_DIAGNOSTIC = Fact("smtp; 550 5.1.1 user unknown", USER, "simulator notification, 2013")
BOUNCE_REPORTING_MTA = Fact("dsn; a8-96.smtp-out.amazonses.com", USER, "same report")
#: The Bounce of suppressionlist@ (and of any address on the account's suppression list).
SUPPRESSED_SUBTYPE = Fact("Suppressed", DOC, "DG-SIMULATOR (global list) + DG bounce types")
SUPPRESSED_DIAGNOSTIC = Fact(
    "Amazon SES has suppressed sending to this address because it has a recent history of "
    "bouncing as an invalid address. For more information about how to remove an address from "
    "the suppression list, see the Amazon SES Developer Guide: "
    "https://docs.aws.amazon.com/ses/latest/DeveloperGuide/remove-from-suppressionlist.html ",
    USER,
    "pastebin.com/GaJQvnXR (first words); the rest as SES's console words it: inferred",
)
SUPPRESSED_REPORTING_MTA = Fact("dns; amazonses.com", USER, "pastebin.com/GaJQvnXR")
#: The Complaint of complaint@: an RFC 5965 feedback report (DG-SIMULATOR), so the fields a
#: report fills are present; their values are our guess at the simulator's.
COMPLAINT_FEEDBACK_TYPE = Fact("abuse", INFER, "RFC 5965's type for 'Mark as spam'")
COMPLAINT_USER_AGENT = Fact("Amazon SES Mailbox Simulator", INFER, "inferred")
#: A delivery's answer from the receiving server, and who reported it.
DELIVERY_SMTP_RESPONSE = Fact("250 2.6.0 Message received", INFER, "a typical receiver's 250")
DELIVERY_REPORTING_MTA = Fact("a8-70.smtp-out.amazonses.com", INFER, "SES's outbound host form")


def scenario(address: str) -> Scenario | None:
    """The simulator scenario `address` plays, or None for an ordinary address.

    >>> scenario("bounce+order-17@simulator.amazonses.com")
    <Scenario.BOUNCE: 'bounce'>
    >>> scenario("Success@Simulator.AmazonSES.com").value
    'success'
    >>> scenario("bounce@example.com") is None
    True
    """
    local, at, domain = address.strip().strip("<>").rpartition("@")
    if not at or domain.lower() != SIMULATOR_DOMAIN:
        return None
    name = local.split("+", 1)[0].lower()
    try:
        return Scenario(name)
    except ValueError:
        return None
