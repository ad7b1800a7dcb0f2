"""What an API request asks for, whichever version it came in: messages to send, or a question."""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import getaddresses

from harness.base.ledger import parse_headers
from harness.server.sesapi.mime import content_key


@dataclass(frozen=True)
class Send:
    """One message an API request asks SES to send."""

    sender: str
    recipients: tuple[str, ...]
    data: bytes  # the MIME message as the ledger records it
    key: str  # the logical message: its Message-ID, else a hash of the request's content


class BadRequest(Exception):
    """The request is not one SES accepts; `kind` names the error in api_errors."""

    def __init__(self, message: str, kind: str = "bad_request") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def raw_send(data: bytes, sender: str | None, recipients: tuple[str, ...] | None) -> Send:
    """A raw message: sender and recipients from the request, else from its headers."""
    if b"\n\n" not in data.replace(b"\r\n", b"\n"):
        raise BadRequest("The message must contain a header and a body separated by a blank line.")
    headers = parse_headers(data)

    def field(*names: str) -> list[str]:
        values = [v for k, v in headers if k.lower() in names]
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
    return Send(sender, recipients, data, key)


def recipients_of(to: list[str], cc: list[str], bcc: list[str]) -> tuple[str, ...]:
    everyone = tuple(address for address in (*to, *cc, *bcc) if address)
    if not everyone:
        raise BadRequest("Missing final destination: no recipients were given.")
    return everyone
