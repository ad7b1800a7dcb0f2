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
    charset = part.get_content_charset() or "utf-8"
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
    """The text a `text:` search looks in: the plain body, or the HTML body without tags."""
    message = parse(data)
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        return ""
    text = text_of(body)
    if body.get_content_subtype() == "html":
        text = _TAG.sub(" ", text)
    return _SPACE.sub(" ", text).strip()


def _part(number: int, part: EmailMessage) -> Part:
    content_id = part.get("Content-ID")
    return Part(
        index=number,
        content_type=part.get_content_type(),
        charset=part.get_content_charset(),
        filename=part.get_filename(),
        disposition=part.get_content_disposition(),
        content_id=str(content_id).strip("<> ") if content_id else None,
        size=len(leaf_payload(part)),
    )


def _shown(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "\n[... cut here]"
