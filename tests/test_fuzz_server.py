"""Robustness of the live server: bad input, vanishing clients, broken TLS, nothing acked lost.

Each test runs one server and many hypothesis examples against it, with `reset()` between
examples. After every example the server must be healthy: no session open in the ledger, no task
left on its loop, no thread or descriptor leaked, a fresh smtplib client can send, and every
message the fuzz client saw a `250 Ok <id>` for is in the ledger exactly once, acknowledged.
"""

from __future__ import annotations

import asyncio
import socket

from harness import FakeSES
from tests.helpers import message

TIMEOUT_S = 10.0  # every receive and every wait is bounded by this


def server_tasks(ses: FakeSES) -> list[str]:
    """Names of the tasks still running on the server's loop, after letting finished ones end."""

    async def settle() -> list[str]:
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if others:
            await asyncio.wait(others, timeout=TIMEOUT_S)
        return [t.get_coro().__qualname__ for t in others if not t.done()]

    assert ses._loop is not None  # the test reaches into the runner's loop to count its tasks
    return asyncio.run_coroutine_threadsafe(settle(), ses._loop).result(TIMEOUT_S * 2)


def open_sessions(ses: FakeSES) -> list[int]:
    return [s.number for s in ses.ledger.sessions if s.open]


def read_to_eof(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (or resets) the connection."""
    sock.settimeout(TIMEOUT_S)
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


def test_a_reset_right_after_a_server_hang_up_leaks_no_connection():
    """The 421 hang-up closes the ledger record before the socket is gone; a reset() in that gap
    used to make connection_lost fail on the forgotten session and leave its task running."""
    with FakeSES(profile="ses", session_limit=1, rate_per_s=None) as ses:
        for n in range(20):
            with socket.create_connection(ses.address, timeout=TIMEOUT_S) as raw:
                raw.sendall(
                    b"EHLO me\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"
                    + message(n)
                    + b".\r\nMAIL FROM:<a@example.com>\r\n"
                )
                ses.ledger.wait_for(
                    lambda ledger: any(s.accepted and not s.open for s in ledger.sessions),
                    TIMEOUT_S,
                )
                ses.reset()
                assert b"421 Connection closed by server." in read_to_eof(raw)
        assert server_tasks(ses) == []
        assert open_sessions(ses) == []
        with ses.endpoint.connect() as client:
            client.sendmail("a@example.com", ["b@example.com"], message(99))
        assert [m.message_id for m in ses.ledger.messages] == ["<msg-99@test.example>"]
