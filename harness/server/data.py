"""Message data after DATA, read the way aiosmtpd reads it, in blocks of whole lines.

aiosmtpd's `SMTP.smtp_DATA` reads message data one line at a time with
`StreamReader.readuntil`. A typical message of the built-in workloads (6 KB, an attachment
in base64) is about 100 lines, and that loop was half of the server's time per command in the
scenario matrix. :func:`read_message` takes every complete line that has already arrived in one
step and checks them with bytes operations; a line that has not fully arrived, or one longer
than the line limit, goes through `readuntil` one line at a time with aiosmtpd's own rules. What
the client sees (replies, limits, the data handed on) is the same; `tests/test_data_reader.py`
checks that against aiosmtpd's loop.
"""

from __future__ import annotations

import asyncio

TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"  # aiosmtpd's wordings
TOO_MUCH = "552 Error: Too much mail data"
_CRLF = b"\r\n"
_DOT_LINE = b".\r\n"
_END = b"\r\n.\r\n"


async def read_message(
    reader: asyncio.StreamReader, *, line_limit: int, size_limit: int | None
) -> tuple[bytes, str | None]:
    """Read up to and including the lone dot; return the data (dots unstuffed) and an error.

    `line_limit` counts a line with its CRLF; `size_limit` the data as sent (dots included).
    Past a limit the data is discarded (``b""``) but still read to the end before the error
    reply, as RFC 5321 4.2.5 implies and aiosmtpd does; the first error found is the one
    reported. The connection closing mid-data cancels the caller, as with aiosmtpd.
    """
    kept: list[bytes] = []
    size = 0
    error: str | None = None
    # The parts of a line longer than the reader's own limit. Once the message is refused
    # nothing more is kept, so a line with no CRLF costs the reader's buffer, not its length.
    head: list[bytes] = []
    in_line = False  # inside such a line: the next bytes continue it
    while True:
        if not in_line:
            length, ended = _whole_lines(reader._buffer, None if error else line_limit)  # type: ignore[attr-defined]
            if length or ended:
                taken = await reader.readexactly(length + (len(_DOT_LINE) if ended else 0))
                size += length
                if error is None and size_limit and size > size_limit:
                    error = TOO_MUCH
                    kept.clear()
                if error is None and length:
                    kept.append(taken[:length] if ended else taken)
                if ended:
                    break
                continue
        try:
            line = await reader.readuntil(_CRLF)
        except asyncio.LimitOverrunError as overrun:
            error = error or TOO_LONG
            kept.clear()
            head.clear()
            line = await reader.read(overrun.consumed)
        if not in_line and line == _DOT_LINE:
            break
        size += len(line)
        if error is None and size_limit and size > size_limit:
            error = TOO_MUCH
            kept.clear()
            head.clear()
        in_line = not line.endswith(_CRLF)
        if error is not None:
            continue
        head.append(line)
        if not in_line:
            whole = b"".join(head)
            head.clear()
            if len(whole) > line_limit:
                error = TOO_LONG
                kept.clear()
            else:
                kept.append(whole)
    if error is not None:
        return b"", error
    data = b"".join(kept)
    # Transparency (RFC 5321 4.5.2): a line that starts with a dot loses that dot.
    if data.startswith(b"."):
        data = data[1:]
    return data.replace(b"\r\n.", b"\r\n"), None


def _whole_lines(buffer: bytearray, line_limit: int | None) -> tuple[int, bool]:
    """How many bytes at the start of `buffer` are whole lines to take now, each within
    `line_limit` (None: any length), and whether the lone dot follows them."""
    if buffer.startswith(_DOT_LINE):
        return 0, True
    end = buffer.find(_END)
    ended = end >= 0
    length = end + len(_CRLF) if ended else buffer.rfind(_CRLF) + len(_CRLF)
    if length <= 1:  # no line break at all yet
        return 0, False
    if line_limit is None or length <= line_limit:
        return length, ended
    lines = buffer[:length].split(_CRLF)
    lines.pop()  # after the last CRLF: nothing
    if max(map(len, lines)) + len(_CRLF) <= line_limit:
        return length, ended
    # Take the lines before the first that is too long; readuntil reads that one.
    taken = 0
    for line in lines:
        if len(line) + len(_CRLF) > line_limit:
            return taken, False
        taken += len(line) + len(_CRLF)
    raise AssertionError("unreachable: one line is too long")
