"""A message's header fields, read cheaply on the server's hot path."""

from __future__ import annotations

import re
import sys
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32

# A header block the fast path reads alone: ASCII lines, each a field ("name:", the name as the
# email package's feed parser accepts it) or a folded continuation of one; no "From " line.
_FIELD = rb"[\x21-\x39\x3b-\x7e]+:[^\r\n]*"
_SIMPLE_HEAD = re.compile(
    rb"(?!From )" + _FIELD + rb"(?:\r\n(?:" + _FIELD + rb"|[ \t][^\r\n]*))*(?:\r\n)?"
)


def parse_headers(data: bytes) -> tuple[tuple[str, str], ...]:
    """The header fields of a raw message, values unfolded but not decoded (cheap: hot path)."""
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    if head.isascii() and _SIMPLE_HEAD.fullmatch(head):
        # What the email package gives for such a block, at a tenth of the cost.
        # A field's lines are joined once at the end: adding each continuation to a string
        # copies it again (the square of the lines, for a field folded over thousands).
        fields: list[tuple[str, list[str]]] = []
        for line in head.decode("ascii").split("\r\n"):
            if line[:1] in (" ", "\t"):
                fields[-1][1].append(line)
            elif line:
                name, _, value = line.partition(":")
                # One copy of each usual name: a ledger of 100,000 messages holds each one's
                # Message-ID field, and "Message-ID" 100,000 times was 5.6 MiB.
                fields.append((sys.intern(name) if len(name) <= 64 else name, [value]))
        return tuple((name, " ".join("".join(lines).split())) for name, lines in fields)
    message = BytesHeaderParser(policy=compat32).parsebytes(head + b"\r\n\r\n")
    return tuple((k, " ".join(str(v).split())) for k, v in message.items())


# The space between two encoded words, which RFC 2047 says is not part of the text.
_BETWEEN_WORDS = re.compile(r"(?<=\?=)[ \t]+(?==\?)")
#: Encoded words decoded in one go: the email package's decoder takes time in the square of a
#: line's words (a 400,000-character subject took 1.7 s), so a long run is decoded in pieces.
_WORDS_AT_ONCE = 64


def decoded(value: str | None) -> str | None:
    """A header value with RFC 2047 encoded words decoded (=?utf-8?...?=), in time linear in
    its length."""
    if value is None or "=?" not in value:  # no encoded word: nothing to decode
        return value
    try:
        pieces = _BETWEEN_WORDS.split(value)
        if len(pieces) <= _WORDS_AT_ONCE:
            return str(make_header(decode_header(value)))
        # Cut only between two encoded words, where the space is dropped anyway.
        groups = range(0, len(pieces), _WORDS_AT_ONCE)
        return "".join(
            str(make_header(decode_header(" ".join(pieces[at : at + _WORDS_AT_ONCE]))))
            for at in groups
        )
    except (ValueError, LookupError):  # a malformed encoded word: keep the raw text
        return value


def first(headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    """The value of the first header called `name` (any case), stripped; None without one."""
    return next((value.strip() for key, value in headers if key.lower() == name.lower()), None)
