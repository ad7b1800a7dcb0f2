"""Floods and long runs: the connection cap under 1,000 simultaneous connections, many concurrent
senders, and memory that stays bounded (message bodies and per-session transcripts)."""

from __future__ import annotations

import asyncio
import re
import resource
import socket
import time

import aiosmtplib

from harness import FakeSES, Ledger
from tests.helpers import message
from tests.test_fuzz_server import TIMEOUT_S, open_sessions, read_to_eof, server_tasks

TOO_MANY = b"421 Too many concurrent SMTP connections\r\n"
ACK = re.compile(r"Ok (\S+)")


def at_least_fds(count: int) -> None:
    """Raise the soft descriptor limit for this process if it is below `count`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(count, hard), hard))


def assert_healthy(ses: FakeSES) -> None:
    """Nothing open or running on the server, and a fresh client still gets a message through."""
    ses.ledger.wait_for(lambda ledger: not open_sessions(ses), TIMEOUT_S)
    assert server_tasks(ses) == []
    before = len(ses.ledger.messages)
    with ses.endpoint.connect(timeout_s=TIMEOUT_S) as client:
        client.sendmail("a@example.com", ["b@example.com"], message(10**6))
    assert ses.ledger.messages[before:][0].message_id == f"<msg-{10**6}@test.example>"


# --- the connection cap --------------------------------------------------------------------


async def _greeting(host: str, port: int) -> tuple[bytes, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(host, port)
    line = await asyncio.wait_for(reader.readline(), TIMEOUT_S)
    if line.startswith(b"421"):
        # The refusal must also close: EOF follows.
        assert await asyncio.wait_for(reader.read(), TIMEOUT_S) == b""
    return line, writer


def test_1000_connections_at_once_get_the_cap_and_421_for_the_rest():
    at_least_fds(4096)  # 1,000 client and 1,000 server sockets in this one process
    with FakeSES(profile="ses", max_connections=50, rate_per_s=None) as ses:

        async def flood() -> list[bytes]:
            results = await asyncio.gather(*(_greeting(ses.host, ses.port) for _ in range(1000)))
            lines = [line for line, _ in results]
            kept = [writer for line, writer in results if line.startswith(b"220")]
            # The 50 admitted sessions work while the others are refused; then they quit.
            for writer in kept:
                writer.write(b"QUIT\r\n")
            for writer in kept:
                writer.close()
                await writer.wait_closed()
            for line, writer in results:
                if not line.startswith(b"220"):
                    writer.close()
            return lines

        lines = asyncio.run(flood())
        assert sum(line.startswith(b"220 ") for line in lines) == 50
        assert lines.count(TOO_MANY) == 950
        refusals = [f for f in ses.ledger.faults if f.name == "max_connections"]
        assert len(refusals) == 950
        assert {s.close_reason for s in ses.ledger.sessions if s.accepted == 0} >= {
            "limit:max_connections"
        }
        assert_healthy(ses)


def test_200_concurrent_senders_lose_no_acknowledged_message():
    at_least_fds(4096)
    with FakeSES(profile="ses", max_connections=50, rate_per_s=None) as ses:
        acked: list[str] = []
        refused = 0

        async def sender(worker: int, until: float) -> None:
            nonlocal refused
            n = 0
            while time.monotonic() < until:
                client = aiosmtplib.SMTP(
                    hostname=ses.host, port=ses.port, start_tls=False, timeout=TIMEOUT_S
                )
                try:
                    await client.connect()
                except aiosmtplib.SMTPConnectResponseError as error:
                    assert error.code == 421
                    refused += 1
                    await asyncio.sleep(0)  # let an admitted sender finish before trying again
                    continue
                for _ in range(3):
                    n += 1
                    _, reply = await client.sendmail(
                        "a@example.com", ["b@example.com"], message(worker * 10**6 + n)
                    )
                    acked.append(ACK.match(reply).group(1))
                await client.quit()

        async def flood() -> None:
            until = time.monotonic() + 2.0
            await asyncio.gather(*(sender(w, until) for w in range(200)))

        asyncio.run(flood())
        messages = ses.ledger.messages
        assert acked and refused
        assert sorted(acked) == sorted(m.ses_id for m in messages)
        assert all(m.acknowledged for m in messages)
        assert len([f for f in ses.ledger.faults if f.name == "max_connections"]) == refused
        assert_healthy(ses)


# --- bounded memory --------------------------------------------------------------------------


def test_message_bodies_held_stop_at_the_memory_budget_while_records_stay_exact():
    ledger = Ledger(memory_budget_bytes=10_000)
    with FakeSES(profile="ses", rate_per_s=None, session_limit=None, ledger=ledger) as ses:
        body = b"Subject: big\r\n\r\n" + b"x" * 998 + b"\r\n"
        with ses.endpoint.connect() as client:
            for _ in range(30):
                client.sendmail("a@example.com", ["b@example.com"], body)
        messages = ses.ledger.messages
        held = [m for m in messages if m.data is not None]
        assert len(messages) == 30
        assert sum(len(m.data) for m in held) <= 10_000
        assert [m.data for m in held] == [body] * 9  # the first nine fit, in order
        assert {m.size for m in messages} == {len(body)}
        ses.reset()  # clearing the ledger gives the budget back
        with ses.endpoint.connect() as client:
            client.sendmail("a@example.com", ["b@example.com"], body)
        assert ses.ledger.messages[0].data == body


def test_a_client_sending_noop_forever_keeps_a_bounded_transcript():
    with FakeSES(profile="ses", idle_timeout_s=None) as ses:
        limit = ses.ledger.transcript_limit_lines
        noops = 5 * limit
        with socket.create_connection(ses.address, timeout=TIMEOUT_S) as raw:
            raw.sendall(b"EHLO me\r\n" + b"NOOP\r\n" * noops + b"QUIT\r\n")
            replies = read_to_eof(raw).splitlines()
        assert replies.count(b"250 Ok") == noops + 1  # + the EHLO's last line
        session = ses.ledger.sessions[0]
        texts = [line.text for line in session.transcript]
        lines_seen = len(replies) + 1 + noops + 1  # every reply line, EHLO, the NOOPs, QUIT
        assert len(texts) == limit
        assert session.transcript_dropped == lines_seen - limit
        assert texts[0].startswith("220 ")
        assert texts[1] == "EHLO me"
        assert texts[-2:] == ["QUIT", "221 Bye"]
        assert texts[-4:-2] == ["NOOP", "250 Ok"]
