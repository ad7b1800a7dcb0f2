"""The block reader of message data gives what aiosmtpd's own DATA loop gives, byte for byte.

The oracle is aiosmtpd's real `SMTP.smtp_DATA`, run on the same bytes arriving in the same
chunks; both must return the same data (or the same error reply) and leave the same bytes
unread for the next command.
"""

from __future__ import annotations

import asyncio
import itertools
import smtplib

from aiosmtpd.smtp import SMTP, Envelope, Session
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import FakeSES, Plan
from harness.server.data import TOO_LONG, TOO_MUCH, read_message

LINE_LIMIT = SMTP.line_length_limit  # 1001, with the CRLF

text_lines = st.one_of(
    st.binary(max_size=80).map(lambda b: b.replace(b"\r\n", b"")),
    st.sampled_from([b".", b"..", b".x", b"", b"\r", b"\n", b"x\r", b"\nx"]),
    # Around the limit: aiosmtpd treats 999 / 1000 / 1001 / more differently inside.
    st.integers(995, 1010).map(lambda n: b"y" * n),
    st.integers(1500, 3000).map(lambda n: b"z" * (n - 1) + b"."),
)
streams = st.lists(text_lines, max_size=40).map(
    lambda lines: b"".join(line + b"\r\n" for line in lines) + b".\r\nNOOP\r\n"
)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


async def feed(reader: asyncio.StreamReader, chunks: list[bytes]) -> None:
    for chunk in chunks:
        reader.feed_data(chunk)
        await asyncio.sleep(0)  # let the reader run between arrivals


class _Capture:
    def __init__(self) -> None:
        self.content: bytes | None = None

    async def handle_DATA(self, server, session, envelope) -> str:
        self.content = envelope.original_content
        return "250 OK"


async def with_aiosmtpd(chunks: list[bytes], size_limit: int | None) -> tuple:
    """aiosmtpd 1.4's own DATA on a StreamReader like the one it makes for a connection."""
    handler = _Capture()
    protocol = SMTP(handler, data_size_limit=size_limit)
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    protocol._reader = reader
    protocol.transport = object()  # only tested against None while reading
    protocol.session = Session(asyncio.get_running_loop())
    protocol.session.host_name = "client.example"
    protocol.envelope = Envelope()
    protocol.envelope.rcpt_tos = ["to@example.com"]
    replies: list[str] = []

    async def push(status):
        replies.append(status)

    protocol.push = push
    feeding = asyncio.ensure_future(feed(reader, chunks))
    await SMTP.smtp_DATA(protocol, "")
    await feeding
    assert replies[0].startswith("354")
    data = handler.content if replies[1] == "250 OK" else b""
    return data, (None if replies[1] == "250 OK" else replies[1]), bytes(reader._buffer)


async def with_block_reader(chunks: list[bytes], size_limit: int | None) -> tuple:
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    feeding = asyncio.ensure_future(feed(reader, chunks))
    data, error = await read_message(reader, line_limit=LINE_LIMIT, size_limit=size_limit)
    await feeding
    return data, error, bytes(reader._buffer)


@settings(max_examples=400, deadline=None)
@given(
    stream=streams,
    cuts=st.lists(st.integers(0, 10_000), max_size=12),
    size_limit=st.one_of(st.none(), st.integers(1, 6000)),
)
def test_same_data_errors_and_leftover_as_aiosmtpd(stream, cuts, size_limit):
    chunks = chunked(stream, cuts)
    expected = asyncio.run(with_aiosmtpd(chunks, size_limit))
    assert asyncio.run(with_block_reader(chunks, size_limit)) == expected


def test_errors_are_aiosmtpds_wordings():
    long_line = [b"x" * 1200 + b"\r\n.\r\n"]
    big = [b"a" * 50 + b"\r\n.\r\n"]
    assert asyncio.run(with_block_reader(long_line, None))[1] == TOO_LONG
    assert asyncio.run(with_aiosmtpd(long_line, None))[1] == TOO_LONG
    assert asyncio.run(with_block_reader(big, 10))[1] == TOO_MUCH
    assert asyncio.run(with_aiosmtpd(big, 10))[1] == TOO_MUCH


def test_dot_stuffed_lines_arrive_unstuffed_over_the_wire():
    body = b"Subject: dots\r\n\r\n.leading dot\r\n..two\r\n.\r\nnot the end\r\n"
    with FakeSES(plan=Plan(profile="plain")) as ses, smtplib.SMTP(ses.host, ses.port) as client:
        client.sendmail("a@example.com", ["b@example.com"], body)  # smtplib stuffs the dots
        client.sendmail("a@example.com", ["b@example.com"], b"Subject: empty\r\n\r\n")
        client.noop()
    first, second = ses.messages
    assert first.data == body
    assert second.data == b"Subject: empty\r\n\r\n"
