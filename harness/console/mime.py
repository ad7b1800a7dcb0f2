"""A received message taken apart for reading: its text and HTML bodies, its attachments.

Parts are numbered in the order `email` walks them (0 is the whole message), so a number read
from `GET /api/messages/{n}` names the same part in `GET /api/messages/{n}/parts/{k}`. Parsing
happens when someone looks, never on the SMTP path.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

#: Bodies longer than this are cut in the message view (the part's own URL has all of it).
SHOWN_CHARS = 1_000_000
_TAG = re.compile(r"<[^>]*>")
#: What a charset and each half of a content type may hold: an HTTP token (RFC 9110), short.
#: The part's own URL serves them in its Content-Type header, where a CR or LF would end the
#: header (aiohttp refuses to send it); a value that is not a token is not served.
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Part:
    index: int
    content_type: str
    charset: str | None
    filename: str | None
    disposition: str | None
    content_id: str | None
    size: int  # decoded bytes


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def walk(message: EmailMessage) -> list[EmailMessage]:
    return list(message.walk())  # type: ignore[arg-type]


def leaf_payload(part: EmailMessage) -> bytes:
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def text_of(part: EmailMessage) -> str:
    """A text part decoded with its charset (unknown charsets and bad bytes replaced)."""
    payload = leaf_payload(part)
    charset = _charset(part.get_content_charset()) or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except LookupError:
        return payload.decode("utf-8", "replace")


def describe(data: bytes) -> dict[str, Any]:
    """What the message view shows: the text and HTML bodies and every leaf part."""
    message = parse(data)
    parts = walk(message)
    index = {id(part): number for number, part in enumerate(parts)}
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    bodies = {id(text), id(html)}
    leaves = []
    for number, part in enumerate(parts):
        if part.is_multipart():
            continue
        leaves.append(
            {
                **_part(number, part).__dict__,
                "attachment": id(part) not in bodies,
                "url": None,  # filled in by the caller, which knows the message's number
            }
        )
    return {
        "text": _shown(text_of(text)) if text is not None else None,
        "text_part": index[id(text)] if text is not None else None,
        "html": _shown(text_of(html)) if html is not None else None,
        "html_part": index[id(html)] if html is not None else None,
        "parts": leaves,
        "defects": [type(defect).__name__ for defect in message.defects],
    }


def part(data: bytes, number: int) -> tuple[Part, bytes] | None:
    """Leaf part `number` and its decoded content, or None if there is no such leaf."""
    parts = walk(parse(data))
    if not 0 <= number < len(parts) or parts[number].is_multipart():
        return None
    found = parts[number]
    return _part(number, found), leaf_payload(found)


def searchable_text(data: bytes) -> str:
    """The text a `text:` search looks in: the plain body, or the HTML body without tags.

    Read for many messages at once (the first `text:` search over a store), so it avoids the
    `email` package's modern policy, ten times slower: a message that is not MIME is read as
    it is, and a MIME one with the compat32 parser.
    """
    head, _, rest = data.partition(b"\r\n\r\n")
    if _plain(head.lower()):
        return _SPACE.sub(" ", rest.decode("utf-8", "replace")).strip()
    message = email.message_from_bytes(data, policy=email.policy.compat32)
    body = None
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "text/plain" and not part.get_filename():
            body = part
            break
        if kind == "text/html" and body is None:
            body = part
    if body is None:
        return ""
    payload = body.get_payload(decode=True)
    payload = payload if isinstance(payload, bytes) else b""
    try:
        text = payload.decode(_charset(body.get_content_charset()) or "utf-8", "replace")
    except LookupError:
        text = payload.decode("utf-8", "replace")
    if body.get_content_type() == "text/html":
        text = _TAG.sub(" ", text)
    return _SPACE.sub(" ", text).strip()


def _plain(head: bytes) -> bool:
    """Whether a (lower-cased) header block says the body is plain text as it stands: no
    Content-Type or text/plain, and no quoted-printable or base64 transfer encoding."""
    kind = _field(head, b"content-type")
    encoding = _field(head, b"content-transfer-encoding")
    if kind is not None and not kind.startswith(b"text/plain"):
        return False
    return encoding is None or encoding in (b"7bit", b"8bit", b"binary")


def _field(head: bytes, name: bytes) -> bytes | None:
    """The start of the first `name:` field's value in a header block (enough for a type)."""
    _, found, rest = (b"\r\n" + head).partition(b"\r\n" + name + b":")
    return rest.split(b"\r\n", 1)[0].strip() if found else None


def _part(number: int, part: EmailMessage) -> Part:
    content_id = part.get("Content-ID")
    return Part(
        index=number,
        content_type=_content_type(part.get_content_type()),
        charset=_charset(part.get_content_charset()),
        filename=part.get_filename(),
        disposition=part.get_content_disposition(),
        content_id=str(content_id).strip("<> ") if content_id else None,
        size=len(leaf_payload(part)),
    )


def _content_type(kind: str) -> str:
    """`kind` if both its halves are tokens, else what a part of unknown type is."""
    main, _, sub = kind.partition("/")
    if _TOKEN.fullmatch(main) and _TOKEN.fullmatch(sub):
        return kind
    return "application/octet-stream"


def _charset(charset: str | None) -> str | None:
    """`charset` if it is a token (`utf-8`, `iso-8859-1`), else None: a charset decoded from
    RFC 2231's `charset*=utf-8''a%0D%0Ab` holds a CR LF."""
    return charset if charset is not None and _TOKEN.fullmatch(charset) else None


def _shown(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "\n[... cut here]"
