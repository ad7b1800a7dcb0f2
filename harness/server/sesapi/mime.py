"""The message SES would build from a v2 "Simple" or "Template" content, or v1 SendEmail.

The ledger records messages as bytes with headers, whatever door they came through, so the
scorer and the page read an API message like an SMTP one.

Every step here is linear in its input: the email package's header folding costs the square of
a header's length (8,000 recipients took 3.3 s, 80,000 subject words 5 s), and this runs for
any request. Headers are written as they come when they are printable ASCII and fit a line,
folded at spaces when they are longer, and as RFC 2047 encoded words otherwise; bodies are
7bit when they can be, else quoted-printable (binascii's, in C).
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")
CRLF = "\r\n"
#: RFC 5322's recommended line length (folded lines aim at it) and its hard limit.
FOLD_AT = 78
MAX_LINE = 998
#: UTF-8 bytes per encoded word: 60 base64 characters, a 72-character word with its wrapper.
_WORD_BYTES = 45
#: Placeholders may nest this deep in TemplateData (a JSON object of at most 262,144
#: characters, sesv2 model): deeper data is refused rather than walked.
MAX_TEMPLATE_DEPTH = 32
_PRINTABLE = re.compile(r"[\t\x20-\x7e]*")


class TooLarge(Exception):
    """A rendered template would pass `limit` bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


def compose(
    *,
    sender: str,
    to: Sequence[str],
    cc: Sequence[str],
    subject: str,
    text: str | None,
    html: str | None,
    reply_to: Sequence[str] = (),
    headers: Sequence[tuple[str, str]] = (),
    date_s: float | None = None,
) -> bytes:
    """A MIME message with the given parts (Bcc is never written, as SES does not).

    The caller has checked the fields (no CR or LF in a header; header names and values as the
    sesv2 model allows); this only writes them.
    """
    lines = [_field("From", _addresses([sender]))]
    if to:
        lines.append(_field("To", _addresses(to)))
    if cc:
        lines.append(_field("Cc", _addresses(cc)))
    if reply_to:
        lines.append(_field("Reply-To", _addresses(reply_to)))
    lines.append(_field("Subject", unstructured("Subject", subject)))
    if date_s is not None:
        lines.append(_field("Date", email.utils.formatdate(date_s)))
    lines.extend(_field(name, value) for name, value in headers)
    if not any(name.lower() == "mime-version" for name, _ in headers):
        lines.append("MIME-Version: 1.0")
    if text is not None and html is not None:
        parts = [_part(text, "plain"), _part(html, "html")]
        boundary = "=_" + hashlib.blake2b(b"".join(p for p in parts), digest_size=16).hexdigest()
        lines.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
        head = _utf8(CRLF.join(lines) + CRLF + CRLF)
        between = f"{CRLF}--{boundary}{CRLF}".encode()
        return head + between[2:] + between.join(parts) + f"{CRLF}--{boundary}--{CRLF}".encode()
    part = _part(text if text is not None else html or "", "plain" if html is None else "html")
    return _utf8(CRLF.join(lines) + CRLF) + part


def _utf8(text: str) -> bytes:
    # JSON can carry lone surrogates ("\ud800"), which UTF-8 cannot: they become U+FFFD.
    return text.encode("utf-8", "replace")


def _field(name: str, value: str) -> str:
    return f"{name}: {value}"


def _addresses(values: Sequence[str]) -> str:
    """An address list, one address a line: each fits one (requests.MAX_ADDRESS_CHARS)."""
    return ("," + CRLF + " ").join(_address(value) for value in values)


def _address(value: str) -> str:
    if value.isascii():
        return value
    name, spec = email.utils.parseaddr(value)
    if not spec or not name or name.isascii():
        return value  # an address SES would refuse to deliver (SMTPUTF8); kept as given
    return f"{encoded_words(name)} <{spec}>"


def unstructured(name: str, value: str) -> str:
    """A header's text as it is when it is printable ASCII and fits (folded at spaces when
    long), else as encoded words."""
    room = FOLD_AT - len(name) - 2
    if _PRINTABLE.fullmatch(value) is None:
        return encoded_words(value)
    if len(value) <= room:
        return value
    words = value.split(" ")
    if max(len(word) for word in words) > MAX_LINE - len(name) - 3:
        return encoded_words(value)
    lines: list[str] = []
    current: list[str] = []
    used = 0
    for word in words:
        if current and used + 1 + len(word) > room:
            lines.append(" ".join(current))
            current, used, room = [], 0, FOLD_AT - 1
        used += len(word) + (1 if current else 0)
        current.append(word)
    lines.append(" ".join(current))
    return (CRLF + " ").join(lines)


def encoded_words(value: str) -> str:
    """`value` as RFC 2047 base64 encoded words of whole UTF-8 characters, one a line."""
    data = _utf8(value)
    words = []
    start = 0
    while start < len(data):
        end = min(start + _WORD_BYTES, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # not inside a character
            end -= 1
        words.append(f"=?utf-8?b?{base64.b64encode(data[start:end]).decode()}?=")
        start = end
    return (CRLF + " ").join(words) or '""'


def _part(content: str, subtype: str) -> bytes:
    """One text part with its own headers: 7bit when it can be, else quoted-printable."""
    text = content.replace("\r\n", "\n").replace("\r", "\n")
    data = _utf8(text)
    longest = max((len(line) for line in data.split(b"\n")), default=0)
    if data.isascii() and longest <= MAX_LINE:
        encoding, body = "7bit", data
    else:
        encoding, body = "quoted-printable", binascii.b2a_qp(data, istext=True)
    head = (
        f'Content-Type: text/{subtype}; charset="utf-8"{CRLF}'
        f"Content-Transfer-Encoding: {encoding}{CRLF}{CRLF}"
    ).encode()
    body = body.replace(b"\n", b"\r\n")
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return head + body


def render(template: str, data: Mapping[str, Any], limit: int) -> str:
    """SES's simple substitution: ``{{name}}`` (dotted names reach into objects), the result at
    most `limit` bytes (a template can repeat a long value without bound): TooLarge past it."""
    pieces: list[str] = []
    size = 0
    start = 0
    for found in _PLACEHOLDER.finditer(template):
        for piece in (template[start : found.start()], _value(found.group(1), data)):
            size += len(piece)
            if size > limit:
                raise TooLarge(limit)
            pieces.append(piece)
        start = found.end()
    size += len(template) - start
    if size > limit:
        raise TooLarge(limit)
    pieces.append(template[start:])
    return "".join(pieces)


def _value(name: str, data: Mapping[str, Any]) -> str:
    current: Any = data
    for part in name.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return ""
        current = current[part]
    return str(current)


def template_data(raw: str | None) -> dict[str, Any]:
    """TemplateData is a JSON object in a string, nested at most MAX_TEMPLATE_DEPTH deep;
    anything else is a ValueError."""
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except RecursionError:
        raise ValueError("TemplateData is nested too deeply") from None
    if not isinstance(parsed, dict):
        raise ValueError("TemplateData must be a JSON object")
    _check_depth(parsed)
    return parsed


def _check_depth(value: Any) -> None:
    pending = [(value, 1)]
    while pending:
        current, depth = pending.pop()
        if depth > MAX_TEMPLATE_DEPTH:
            raise ValueError(f"TemplateData is nested deeper than {MAX_TEMPLATE_DEPTH}")
        children = current.values() if isinstance(current, dict) else current
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


def content_key(*parts: object) -> str:
    """The logical identity of a message without a Message-ID: a hash of what was asked.

    An SDK's retry sends the same request again, so its attempts share the key.
    """
    return "sha256:" + hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
