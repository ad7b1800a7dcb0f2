"""What an API request asks for, whichever version it came in: messages to send, or a question;
and the checks every field passes before any message is built.

A request is read in two steps. Validation (v1.py, v2.py, with the helpers here) looks at every
field the fake uses, its type and its content, and counts the recipients: a request that is not
one SES accepts is a :class:`BadRequest` before anything is built. The message itself is built
later, by :attr:`Send.build`, linear in the request's size, after the account's recipient cap
has been checked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import getaddresses

from harness.base.ledger import parse_headers
from harness.server.sesapi.mime import content_key

#: The most recipients one API message may name whatever the plan says: SES's own cap is 50
#: (DG-QUOTAS, the "ses" profile's max_recipients); a plan may lift that for a test, not
#: without bound, since the work per message grows with it. Past this: SES's too-many error.
MAX_RECIPIENTS = 10_000
#: An address that fits on one header line (SMTP's 998) with its field name: SES allows 320
#: characters for the address itself (64 + 1 + 255); the rest is room for a display name.
MAX_ADDRESS_CHARS = 900
_CONTROLS = frozenset(chr(c) for c in (*range(32), 127))
_BLANKS = _CONTROLS | {" "}


@dataclass(frozen=True)
class Send:
    """One message an API request asks SES to send: its envelope and identity now, its bytes
    when `build` is called (the MIME message as the ledger records it)."""

    sender: str
    recipients: tuple[str, ...]
    key: str  # the logical message: its Message-ID, else a hash of the request's content
    build: Callable[[], bytes]
    #: About how much `build` writes, to tell a small job from a large one; None when it cannot
    #: be told before (a template may repeat a value).
    work_bytes: int | None
    configuration_set: str | None = None  # ConfigurationSetName: where its events go
    tenant: str | None = None  # the SES tenant it names (v2's TenantName)


def in_configuration_set(send: Send, name: object) -> Send:
    """`send` naming the configuration set `name` (ConfigurationSetName; None: none)."""
    if name is None:
        return send
    if not isinstance(name, str) or not name:
        raise BadRequest("ConfigurationSetName must be a non-empty string.")
    return dataclasses.replace(send, configuration_set=name)


class BadRequest(Exception):
    """The request is not one SES accepts; `kind` names the error in api_errors, and `message`
    fills its ``{}`` (the whole text for ``bad_request``)."""

    def __init__(self, message: str, kind: str = "bad_request") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def address(value: object, where: str) -> str:
    """`value` if it is an address SES takes, else SES's complaint about it.

    The texts are SES's (javax.mail's, under it): "Missing final '@domain'" (boto/boto#351,
    whole v1 body; anymail#281), "Domain contains control or whitespace" (delphi-aws-ses#22),
    "Missing domain" (brave/accounts#35), "Illegal address" (medplum/medplum#5320); "Local
    address contains control or whitespace" is the domain's sibling for the local part,
    inferred. A line break anywhere is one of these, never a 500.
    """
    if not isinstance(value, str):
        raise BadRequest(f"{where} must be a string.")
    if len(value) > MAX_ADDRESS_CHARS:
        raise BadRequest(f"{where} is longer than {MAX_ADDRESS_CHARS} characters.")
    name, bracket, inside = value.rpartition("<")
    if bracket and inside.rstrip().endswith(">"):
        if _CONTROLS.intersection(name):
            raise BadRequest("Illegal address")  # medplum/medplum#5320 handles this text
        spec = inside.rstrip()[:-1]
    else:
        spec = value.strip(" ")
    local, at, domain = spec.rpartition("@")
    if not at:
        raise BadRequest("Missing final '@domain'")
    if not domain:
        raise BadRequest("Missing domain")
    if _BLANKS.intersection(domain):
        raise BadRequest("Domain contains control or whitespace")
    if _BLANKS.intersection(local) and not (local.startswith('"') and local.endswith('"')):
        raise BadRequest("Local address contains control or whitespace")
    if _CONTROLS.intersection(local):
        raise BadRequest("Local address contains control or whitespace")
    return value


def addresses(values: list[str], where: str) -> list[str]:
    return [address(value, f"{where}.{n}") for n, value in enumerate(values, 1)]


def header_text(value: object, where: str) -> str:
    """A header's text (a subject): a string without CR or LF, which would end the header and
    start another (SES's text for this is not known: inferred)."""
    if not isinstance(value, str):
        raise BadRequest(f"{where} must be a string.")
    if "\r" in value or "\n" in value:
        raise BadRequest(f"Illegal header value in {where}: CR and LF are not allowed.")
    return value


def count_recipients(*lists: list[str]) -> None:
    """Refuse more recipients than any message may have, before each is looked at."""
    if sum(len(values) for values in lists) > MAX_RECIPIENTS:
        raise BadRequest("", kind="max_recipients")


def raw_send(data: bytes, sender: str | None, recipients: tuple[str, ...] | None) -> Send:
    """A raw message: sender and recipients from the request, else from its headers."""
    if b"\n\n" not in data.replace(b"\r\n", b"\n"):
        raise BadRequest("The message must contain a header and a body separated by a blank line.")
    headers = parse_headers(data)

    def field(*names: str) -> list[str]:
        values = [v for k, v in headers if k.lower() in names]
        # Reading addresses costs tens of microseconds each: count them first.
        if sum(value.count("@") for value in values) > MAX_RECIPIENTS:
            raise BadRequest("", kind="max_recipients")
        return [address for _, address in getaddresses(values) if address]

    if not sender:
        found = field("from")
        if not found:
            raise BadRequest("Missing required header 'From'.")
        sender = found[0]
    if not recipients:
        recipients = tuple(field("to", "cc", "bcc"))
    if not recipients:
        raise BadRequest("Missing final destination: no recipients were given.")
    message_id = next((v for k, v in headers if k.lower() == "message-id"), None)
    key = message_id or content_key("raw", data.decode("latin-1"))
    return Send(sender, recipients, key, lambda: data, 0)


def recipients_of(to: list[str], cc: list[str], bcc: list[str]) -> tuple[str, ...]:
    everyone = tuple(address for address in (*to, *cc, *bcc) if address)
    if not everyone:
        raise BadRequest("Missing final destination: no recipients were given.")
    return everyone
