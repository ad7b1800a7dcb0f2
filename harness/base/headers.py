"""A message's header fields, read cheaply on the server's hot path."""

from __future__ import annotations

import re
import sys
import zlib
from collections.abc import Iterable, Iterator, Sequence
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


# Text that starts most header blocks' fields, as a preset dictionary for deflate: a block of
# usual fields packs to about 45 % of its text (RFC 5322 / 2045 names and values, nothing
# from one workload). Changing it is safe: packed fields live in one process's memory only.
_USUAL = (
    b"Received: from \nReturn-Path: <>\nReply-To: \nCc: \nX-Mailer: \nUser-Agent: \n"
    b"X-SES-CONFIGURATION-SET: \nX-SES-TENANT: \nList-Unsubscribe: <mailto:>\n"
    b"Content-Transfer-Encoding: quoted-printable\nContent-Transfer-Encoding: 7bit\n"
    b'Content-Type: multipart/alternative; boundary="\nContent-Type: multipart/mixed; '
    b'boundary="\nContent-Type: text/html; charset=utf-8\nContent-Type: text/plain; '
    b"charset=utf-8\nContent-Transfer-Encoding: 8bit\nMIME-Version: 1.0\n"
    b"Date: Mon, Tue, Wed, Thu, Fri, Sat, Sun, Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec "
    b"2026 +0000\nMessage-ID: <@example.com>\nSubject: \nTo: \nFrom: "
)

# Raw deflate with a 2 KiB window and little state: packing costs about 12 us a block where
# deflate's defaults (32 KiB, memLevel 8) cost over 100, for the same size on header blocks.
_WBITS = -11


class HeaderFields(Sequence[tuple[str, str]]):
    """A message's header fields, ``(name, value)`` pairs in order, held deflated.

    What the ledger keeps of each message's header block: SES events write every field
    (``mail.headers``), and a ledger of 100,000 messages held them as tuples of pairs at about
    640 bytes a message; deflated with a dictionary of usual fields they take about 200. Reads
    inflate them (a microsecond or two): it reads and compares as the tuple of pairs it holds.
    Fields that cannot be packed (a name with ``:``, a line break) are kept as the tuple.
    """

    __slots__ = ("_packed",)

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        pairs = tuple(fields)
        if any(":" in k or "\n" in k or "\n" in v for k, v in pairs):
            self._packed: bytes | tuple[tuple[str, str], ...] = pairs
            return
        text = "\n".join(f"{k}:{v}" for k, v in pairs).encode("utf-8", "surrogatepass")
        packer = zlib.compressobj(6, zlib.DEFLATED, _WBITS, 2, zlib.Z_DEFAULT_STRATEGY, _USUAL)
        self._packed = packer.compress(text) + packer.flush() if pairs else b""

    def _pairs(self) -> tuple[tuple[str, str], ...]:
        packed = self._packed
        if isinstance(packed, tuple):
            return packed
        if not packed:
            return ()
        unpacker = zlib.decompressobj(_WBITS, _USUAL)
        text = (unpacker.decompress(packed) + unpacker.flush()).decode("utf-8", "surrogatepass")
        return tuple((k, v) for k, _, v in (line.partition(":") for line in text.split("\n")))

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._pairs())

    def __len__(self) -> int:
        return len(self._pairs())

    def __getitem__(self, index):  # type: ignore[no-untyped-def]  # int or slice, as a tuple
        return self._pairs()[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, HeaderFields):
            return self._pairs() == other._pairs()
        if isinstance(other, tuple | list):
            return self._pairs() == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._pairs())

    def __repr__(self) -> str:
        return repr(self._pairs())

    def __reduce__(self) -> tuple[type[HeaderFields], tuple[tuple[tuple[str, str], ...]]]:
        return (HeaderFields, (self._pairs(),))

    def get(self, name: str) -> str | None:
        """The value of the first field called `name` (any case), as sent; None without one."""
        name = name.lower()
        return next((v for k, v in self._pairs() if k.lower() == name), None)
