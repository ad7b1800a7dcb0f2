"""A received message taken apart for reading: its text and HTML bodies, its attachments.

Parts are numbered in the order `email` walks them (0 is the whole message), so a number read
from `GET /api/messages/{n}` names the same part in `GET /api/messages/{n}/parts/{k}`. Parsing
happens when someone looks, never on the SMTP path.

The `email` package's modern parser is slow on hostile structure: about 0.4 ms a MIME parameter
and 0.6 ms a part (a Content-Type of 8,000 parameters took 3.4 s, 5,000 parts 2.9 s, deeply
nested comments raised RecursionError). So `too_complex` measures the structure on the raw bytes
first, at C speed, and a message over any bound is not taken apart: the view says why, and the
raw message stays one click away.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
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

#: How much of a message that is not taken apart a `text:` search reads.
SEARCHED_BYTES = 256 * 1024
#: Bounds on what the parser is handed, for the whole message (all its parts together). A real
#: message has a few parts and a few parameters each; a message within all of these is taken
#: apart in well under 0.2 s on a slow machine.
MAX_PARTS = 100
MAX_PARAMETERS = 100  # `;` in Content-* fields
MAX_COMMENTS = 32  # `(` in Content-* fields: each is a level of recursion in the parser
MAX_MIME_FIELD_BYTES = 16 * 1024  # the Content-* fields, folded lines included
MAX_BOUNDARIES = 16  # multiparts: nesting costs the walk a level of recursion each
MAX_DASH_LINES = 2000  # lines starting with "--": delimiters of boundaries not found above
#: The rest of a Content-* header field from its name on, with its folded lines (matched in the
#: lower-cased message at each place a line starts with "content-", found by `bytes.find`: a
#: regular expression anchored at every line start costs 0.5 s over a 40 MB body).
_MIME_FIELD = re.compile(rb"content-[a-z0-9-]*[ \t]*:.*(?:\r?\n[ \t].*)*")
_BOUNDARY = re.compile(
    rb"boundary\*?[ \t]*=[ \t]*(?:\"([^\"\r\n]{1,200})\"|([^;\s\"]{1,200}))", re.IGNORECASE
)


@dataclass(frozen=True)
class Part:
    index: int
    content_type: str
    charset: str | None
    filename: str | None
    disposition: str | None
    content_id: str | None
    size: int  # decoded bytes


def too_complex(data: bytes) -> str | None:
    """Why `data` is not to be taken apart (its structure is over a bound), or None.

    >>> too_complex(b"Content-Type: text/plain" + b"; a=b" * 500 + b"\\r\\n\\r\\nhi")
    'its Content-* fields hold 500 parameters (this view takes at most 100)'
    """
    size = parameters = comments = 0
    boundaries: set[bytes] = set()
    lowered = b"\n" + data.lower()  # boundaries are counted in it too, as they were found
    for value in _mime_fields(lowered):
        size += len(value)
        parameters += value.count(b";")
        comments += value.count(b"(")
        for quoted, bare in _BOUNDARY.findall(value):
            boundaries.add(quoted or bare)
        if size > MAX_MIME_FIELD_BYTES:
            return f"its Content-* fields take more than {MAX_MIME_FIELD_BYTES:,} bytes"
    for count, most, what in (
        (parameters, MAX_PARAMETERS, "Content-* fields hold {:,} parameters"),
        (comments, MAX_COMMENTS, "Content-* fields hold {:,} comments"),
        (len(boundaries), MAX_BOUNDARIES, "message has {:,} multiparts"),
    ):
        if count > most:
            return f"its {what.format(count)} (this view takes at most {most:,})"
    parts = sum(
        lowered.count(b"\n--" + boundary) - lowered.count(b"\n--" + boundary + b"--")  # no close
        for boundary in boundaries
    )
    if parts > MAX_PARTS:
        return f"it has about {parts:,} parts (this view takes at most {MAX_PARTS:,})"
    dashes = lowered.count(b"\n--")
    if dashes > MAX_DASH_LINES:
        most = MAX_DASH_LINES
        return f"it has {dashes:,} lines starting with '--' (this view takes at most {most:,})"
    return None


def _mime_fields(lowered: bytes) -> Iterator[bytes]:
    """Every Content-* header field in a message (lower-cased, after a "\\n"), in the parts'
    headers or not."""
    at = lowered.find(b"\ncontent-")
    while at >= 0:
        field = _MIME_FIELD.match(lowered, at + 1)
        if field is not None:
            yield field.group()
        at = lowered.find(b"\ncontent-", at + 1)


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


class TooComplex(ValueError):
    """A message over one of the bounds (see `too_complex`); the text says which."""


def describe(data: bytes) -> dict[str, Any]:
    """What the message view shows: the text and HTML bodies and every leaf part; for a message
    that is `too_complex`, why it was not taken apart (`not_taken_apart`), and no parts."""
    reason = too_complex(data)
    if reason is not None:
        return {
            "text": f"(This message was not taken apart: {reason}. The Raw tab has it whole.)",
            "text_part": None,
            "html": None,
            "html_part": None,
            "parts": [],
            "defects": [],
            "not_taken_apart": reason,
        }
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
        "not_taken_apart": None,
    }


def part(data: bytes, number: int) -> tuple[Part, bytes] | None:
    """Leaf part `number` and its decoded content, or None if there is no such leaf; raises
    TooComplex for a message that is `too_complex`."""
    reason = too_complex(data)
    if reason is not None:
        raise TooComplex(reason)
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
    if too_complex(data) is not None:  # searched as it came, the start of it
        return _SPACE.sub(" ", data[:SEARCHED_BYTES].decode("utf-8", "replace")).strip()
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
