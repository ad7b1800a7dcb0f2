"""Robustness of the live server: bad input, vanishing clients, broken TLS, nothing acked lost.

Each test runs one server and many hypothesis examples against it, with `reset()` between
examples. After every example the server must be healthy: no session open in the ledger, no task
left on its loop, no thread or descriptor leaked, a fresh smtplib client can send, and every
message the fuzz client saw a `250 Ok <id>` for is in the ledger exactly once, acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from harness import FakeSES
from tests.helpers import message

TIMEOUT_S = 10.0  # every receive and every wait is bounded by this
FUZZ = settings(
    max_examples=100,
    deadline=None,
    database=None,  # no files shared between xdist workers
    suppress_health_check=[HealthCheck.too_slow],
)
ACKED = re.compile(rb"^250 Ok (\S+)\r$", re.MULTILINE)
# aiosmtpd turns an exception inside a handler into "500 Error: (KeyError) ..." on the wire.
LEAKED_ERROR = re.compile(rb"Traceback|Error: \(\w+\)|Cannot describe error")
SYNC = b"XSYNC"  # an unknown verb aiosmtpd echoes back: all that was sent before is answered


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


# --- health after every example ----------------------------------------------------------


def descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll a condition nothing notifies about (the kernel closing a descriptor), bounded."""
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, f"not within {TIMEOUT_S}s: {what}"
        time.sleep(0.01)


@dataclass(frozen=True)
class Baseline:
    threads: int
    fds: int

    @classmethod
    def now(cls) -> Baseline:
        return cls(threading.active_count(), descriptors())


def assert_healthy(ses: FakeSES, baseline: Baseline, acked: set[bytes] = frozenset()) -> None:
    """Nothing open, running or leaked; acked messages recorded once; a fresh client can send."""
    ses.ledger.wait_for(lambda ledger: not open_sessions(ses), TIMEOUT_S)
    assert server_tasks(ses) == []
    assert threading.active_count() == baseline.threads
    wait_until(lambda: descriptors() <= baseline.fds, "the server's sockets are closed")
    recorded = [m.ses_id.encode() for m in ses.ledger.messages if m.acknowledged]
    for ses_id in acked:
        assert recorded.count(ses_id) == 1, ses_id
    before = len(ses.ledger.messages)
    with ses.endpoint.connect(timeout_s=TIMEOUT_S) as client:
        client.sendmail("a@example.com", ["b@example.com"], message(10**6))
    fresh = [(m.message_id, m.acknowledged) for m in ses.ledger.messages[before:]]
    assert fresh == [(f"<msg-{10**6}@test.example>", True)]
    ses.ledger.wait_for(lambda ledger: not open_sessions(ses), TIMEOUT_S)


def receive_available(sock: socket.socket) -> bytes:
    """What has already arrived, without waiting."""
    sock.setblocking(False)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except (BlockingIOError, ConnectionResetError):
        pass
    return received


def read_until_sync(sock: socket.socket) -> bytes:
    """Read until the server has answered the SYNC verb, or closed the connection."""
    sock.settimeout(TIMEOUT_S)
    received = b""
    while SYNC not in received:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        received += chunk
    return received


def send_quietly(sock: socket.socket, data: bytes) -> None:
    """Send; the server may have hung up already (bogus commands, 421), which is fine."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(data)


def end(sock: socket.socket, how: str) -> bytes:
    """Finish the client side: QUIT, half-close, vanish, or reset; return what else arrived."""
    if how == "quit":
        send_quietly(sock, b"\r\n.\r\nQUIT\r\n")
        return read_to_eof(sock)
    if how == "half-close":
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # already reset by the server
            return b""
        return read_to_eof(sock)
    if how == "reset":  # RST instead of FIN
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return receive_available(sock)


ENDINGS = st.sampled_from(["quit", "half-close", "vanish", "reset"])


# --- what a fuzz client sends ------------------------------------------------------------

VERBS = [
    b"EHLO fuzz", b"HELO fuzz", b"EHLO", b"MAIL FROM:<a@example.com>", b"MAIL FROM:",
    b"MAIL FROM:<a@example.com> SIZE=99999999999", b"MAIL FROM:<a@example.com> BODY=BOGUS",
    b"MAIL FROM:<>", b"MAIL TO:<a@example.com>", b"RCPT TO:<b@example.com>", b"RCPT TO:<>",
    b"RCPT TO:b@example.com", b"RCPT", b"DATA", b"DATA now", b"RSET", b"NOOP", b"NOOP x",
    b"VRFY a", b"EXPN a", b"HELP", b"HELP MAIL", b"QUIT now", b"STARTTLS", b"AUTH", b"AUTH PLAIN",
    b"AUTH PLAIN AGZvbwBiYXI=", b"AUTH PLAIN !!!", b"AUTH LOGIN", b"AUTH LOGIN Zm9v",
    b"AUTH CRAM-MD5", b"BDAT 10 LAST", b"*", b"", b" ", b".",
]  # fmt: skip
EOLS = st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r", b""])

command = st.one_of(
    st.sampled_from(VERBS),
    st.builds(bytes.__add__, st.sampled_from(VERBS), st.binary(max_size=40)),
    st.binary(max_size=200),  # binary garbage
    st.builds(  # over-long command lines, past aiosmtpd's 512 and its 1001-byte stream limit
        lambda verb, filler, n: verb + b" " + filler * n,
        st.sampled_from([b"NOOP", b"MAIL FROM:", b"XLONG"]),
        st.sampled_from([b"A", b"\x00", b"\xff", b"<>"]),
        st.integers(500, 70_000),
    ),
)
body_line = st.one_of(
    st.sampled_from([b"Subject: fuzz", b"", b".", b"..", b".hidden", b"\x00\xff", b"X: y"]),
    st.binary(max_size=80).filter(lambda b: b"\n" not in b and b"\r" not in b),
    st.builds(lambda n: b"L" * n, st.integers(990, 5000)),  # past the 1001-byte line limit
)


@st.composite
def transaction(draw: st.DrawFn) -> bytes:
    """A whole mail transaction with a fuzzed body and a unique Message-ID."""
    n = draw(st.integers(0, 10**9))
    lines = draw(st.lists(body_line, max_size=8))
    body = b"\r\n".join([b"Message-ID: <fuzz-%d@test.example>" % n, b"", *lines]) + b"\r\n"
    return b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n" + body + b".\r\n"


step = st.one_of(transaction(), st.builds(bytes.__add__, command, EOLS))

# Something left unfinished when the client goes: a message mid-DATA, half a command line.
unfinished = st.one_of(
    st.just(b""),
    st.builds(
        lambda lines: (
            b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"
            + b"\r\n".join(lines)
        ),
        st.lists(body_line, max_size=5),
    ),
    st.builds(lambda c: c[: max(1, len(c) // 2)], command),
)


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    """`data` split at the given offsets: the same bytes, sent in several pieces."""
    edges = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def test_random_and_malformed_sessions_never_hurt_the_server_or_lose_an_acked_message():
    with FakeSES(profile="ses", rate_per_s=None, max_message_bytes=20_000) as ses:
        baseline = Baseline.now()

        @FUZZ
        @given(
            hello=st.sampled_from([b"EHLO fuzz\r\n", b"EHLO fuzz\r\n", b"HELO fuzz\r\n", b""]),
            steps=st.lists(step, max_size=10),
            cuts=st.lists(st.integers(0, 10**6), max_size=4),
            tail=unfinished,
            how=ENDINGS,
        )
        def session(
            hello: bytes, steps: list[bytes], cuts: list[int], tail: bytes, how: str
        ) -> None:
            ses.reset()
            received = b""
            with socket.create_connection(ses.address, timeout=TIMEOUT_S) as sock:
                # Pipelined: several commands per send, cut anywhere, answers read only at SYNC.
                for piece in chunks(hello + b"".join(steps), cuts):
                    send_quietly(sock, piece)
                send_quietly(sock, b"\r\n.\r\n" + SYNC + b"\r\n")
                received += read_until_sync(sock)
                send_quietly(sock, tail)
                received += end(sock, how)
            assert not LEAKED_ERROR.search(received), received[-300:]
            acked = set(ACKED.findall(received))
            event(f"messages acknowledged: {min(len(acked), 3)}{'+' if len(acked) > 2 else ''}")
            assert_healthy(ses, baseline, acked)

        session()


# --- TLS handshakes that stop halfway ----------------------------------------------------


def _client_hello() -> bytes:
    """The first flight of a real TLS client, to cut short."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="email-smtp.amazonaws.com")
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


CLIENT_HELLO = _client_hello()
handshake_start = st.one_of(
    st.builds(lambda n: CLIENT_HELLO[:n], st.integers(0, len(CLIENT_HELLO) - 1)),
    st.binary(min_size=1, max_size=300),  # raw garbage where a ClientHello should be
    st.just(b"EHLO fuzz\r\n"),  # plain text on the TLS port
    st.just(CLIENT_HELLO[:5] + b"\xff" * 300),  # a record header promising more than comes
)
TLS_ENDINGS = st.sampled_from(["half-close", "vanish", "reset"])


def test_implicit_tls_handshakes_that_stop_halfway_leave_nothing_behind():
    with FakeSES(profile="ses", tls="implicit", rate_per_s=None) as ses:
        baseline = Baseline.now()

        @settings(FUZZ, max_examples=50)
        @given(start=handshake_start, how=TLS_ENDINGS)
        def handshake(start: bytes, how: str) -> None:
            ses.reset()
            with socket.create_connection(ses.address, timeout=TIMEOUT_S) as sock:
                send_quietly(sock, start)
                received = end(sock, how)
            assert b"220" not in received  # nothing in clear text, not even the greeting
            assert_healthy(ses, baseline)

        handshake()


def test_starttls_handshakes_that_stop_halfway_close_the_session():
    with FakeSES(profile="ses", tls="starttls", rate_per_s=None) as ses:
        baseline = Baseline.now()

        @settings(FUZZ, max_examples=50)
        @given(start=handshake_start, how=TLS_ENDINGS)
        def handshake(start: bytes, how: str) -> None:
            ses.reset()
            with socket.create_connection(ses.address, timeout=TIMEOUT_S) as sock:
                sock.sendall(b"EHLO fuzz\r\nSTARTTLS\r\n")
                sock.settimeout(TIMEOUT_S)
                received = b""
                while b"220 Ready to start TLS\r\n" not in received:
                    chunk = sock.recv(4096)
                    assert chunk, received
                    received += chunk
                send_quietly(sock, start)
                received += end(sock, how)
            assert not LEAKED_ERROR.search(received), received
            [session] = ses.ledger.sessions
            assert not session.tls
            assert_healthy(ses, baseline)

        handshake()
