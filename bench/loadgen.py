"""An SMTP load generator in worker processes, a client that waits or one that pipelines.

Each connection reads the greeting and says EHLO. Then, in the default `waiting` mode, it
writes MAIL, RCPT and DATA each after the reply to the one before, and the message and its
final "." after DATA's 354, as RFC 2920 requires of every client (the body may not go before
the 354) and as most mailers send. In `pipelined` mode it writes MAIL, RCPT, DATA, the body
and the "." in one write and counts the four replies: one transaction in flight per
connection, but the body sent before the 354, which RFC 2920 forbids and which flatters a
server that answers a batch of commands in one write. Connections are spread
over `processes` worker processes, each an asyncio loop of bare `Protocol`s (no streams, no
parsing beyond finding reply lines), so the generator costs far less per message than any SMTP
server: `python bench/throughput.py` measures it against an instant sink to show that.

Two ways to run: for `seconds` (throughput: messages acknowledged inside the window) or until
`messages` are sent (memory: every connection takes its share). `per_session` makes a
connection QUIT and reconnect after that many messages, as a batch mailer does at SES's cap.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

CONNECT_TIMEOUT_S = 30.0
#: A run that takes longer than this is broken (a server that stopped answering): give up.
RUN_TIMEOUT_S = 600.0


@dataclass
class Load:
    """What to send. `messages` (a total) or `seconds` (a window) ends the run."""

    port: int
    sessions: int = 1
    processes: int = 1
    body_bytes: int = 1024
    seconds: float | None = None
    messages: int | None = None
    per_session: int | None = None  # QUIT and reconnect after this many (None: never)
    pipelined: bool = False  # the whole transaction in one write (the body before the 354)


@dataclass
class Result:
    acked: int  # 250 at end of data
    refused: int  # any other reply at end of data
    sessions: int  # connections opened
    elapsed_s: float

    @property
    def per_s(self) -> float:
        return self.acked / self.elapsed_s if self.elapsed_s else 0.0


#: The replies a waiting client expects before its next write: MAIL's, RCPT's, DATA's 354.
WAITING_FOR = (b"250", b"250", b"354")


def transaction_parts(n: int, tag: str, body_bytes: int) -> tuple[bytes, bytes, bytes, bytes]:
    """MAIL, RCPT, DATA, and a message of about `body_bytes` with a unique Message-ID and its
    final '.': what a waiting client writes one at a time."""
    head = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: bench\r\n"
    head += b"Message-ID: <%d.%s@bench>\r\n\r\n" % (n, tag.encode())
    line = b"x" * 78 + b"\r\n"
    body = line * max(1, (body_bytes - len(head)) // len(line))
    return (
        b"MAIL FROM:<a@example.com>\r\n",
        b"RCPT TO:<b@example.com>\r\n",
        b"DATA\r\n",
        head + body + b".\r\n",
    )


class _Client(asyncio.Protocol):
    """One connection: counts final reply lines and writes the next transaction when due."""

    def __init__(self, worker: _Worker) -> None:
        self.worker = worker
        self.buffer = b""
        self.expect = 1  # the greeting
        self.phase = "greeting"
        self.in_session = 0
        self.eom_reply = b""
        self.parts: list[bytes] = []  # what a waiting client writes after each next reply
        self.done = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n")
            if end < 0:
                return
            line, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
            if line[3:4] == b"-":  # a continuation line of a multi-line reply
                continue
            self.expect -= 1
            if self.expect == 0:
                self.eom_reply = line
                if self.parts:
                    self._step(line)
                else:
                    self._next()

    def _step(self, reply: bytes) -> None:
        """A waiting client: the next part of the transaction, after the reply it waits for."""
        wanted = WAITING_FOR[3 - len(self.parts)]
        if not reply.startswith(wanted):
            self.phase = f"a transaction (wanted {wanted.decode()}, got {reply[:80]!r})"
            self.transport.close()
            return
        self.expect = 1
        self.transport.write(self.parts.pop(0))

    def _next(self) -> None:
        worker = self.worker
        if self.phase == "quit":
            self.transport.close()
            return
        if self.phase == "greeting":
            self.phase, self.expect = "ehlo", 1
            self.transport.write(b"EHLO bench.example\r\n")
            return
        if self.phase == "sending":
            if time.monotonic() <= worker.deadline:  # a reply after the window is not counted
                if self.eom_reply.startswith(b"250"):
                    worker.acked += 1
                else:
                    worker.refused += 1
            self.in_session += 1
        self.phase = "sending"
        per_session = worker.load.per_session
        if not worker.more() or (per_session is not None and self.in_session >= per_session):
            self.phase, self.expect = "quit", 1
            self.transport.write(b"QUIT\r\n")
            return
        parts = worker.next_transaction()
        if worker.load.pipelined:
            self.expect = 4  # MAIL, RCPT, DATA (354) and end of data
            self.transport.write(b"".join(parts))
        else:
            self.expect = 1
            self.transport.write(parts[0])
            self.parts = list(parts[1:])

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(self.phase)


class _Worker:
    """One process's share of the connections."""

    def __init__(self, load: Load, index: int, sessions: int, quota: int | None) -> None:
        self.load = load
        self.index = index
        self.sessions = sessions
        self.quota = quota  # messages this worker sends (None: until the deadline)
        self.sent = 0
        self.acked = self.refused = 0
        self.opened = 0
        self.deadline = float("inf")

    def more(self) -> bool:
        if self.quota is not None:
            return self.sent < self.quota
        return time.monotonic() < self.deadline

    def next_transaction(self) -> tuple[bytes, bytes, bytes, bytes]:
        self.sent += 1
        return transaction_parts(self.sent, f"{self.index}", self.load.body_bytes)

    async def connection(self) -> None:
        loop = asyncio.get_running_loop()
        while self.more():
            _, client = await asyncio.wait_for(
                loop.create_connection(lambda: _Client(self), "127.0.0.1", self.load.port),
                CONNECT_TIMEOUT_S,
            )
            self.opened += 1
            await client.done
            if client.phase != "quit":
                raise ConnectionError(f"the connection ended during {client.phase}")

    async def run(self, start_at: float) -> tuple[int, int, int, float]:
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        began = time.monotonic()
        if self.load.seconds is not None:
            self.deadline = began + self.load.seconds
        await asyncio.gather(*(self.connection() for _ in range(self.sessions)))
        ended = time.monotonic()
        if self.load.seconds is not None:
            ended = min(ended, self.deadline)
        return self.acked, self.refused, self.opened, ended - began


def _work(
    load: Load, index: int, sessions: int, quota: int | None, start_at: float, pipe: Connection
) -> None:
    try:
        pipe.send(asyncio.run(_Worker(load, index, sessions, quota).run(start_at)))
    except BaseException as error:  # reported to the parent, which raises it
        pipe.send(error)


def _shares(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def drive(load: Load) -> Result:
    """Run `load` from worker processes; all start together. Raises what a worker raised."""
    processes = max(1, min(load.processes, load.sessions))
    sessions = _shares(load.sessions, processes)
    quotas: list[int | None] = (
        list(_shares(load.messages, processes)) if load.messages is not None else [None] * processes
    )
    context = multiprocessing.get_context("spawn")
    start_at = time.monotonic() + 0.5 + 0.3 * processes  # time for the workers to import
    pipes, workers = [], []
    for index in range(processes):
        ours, theirs = context.Pipe()
        process = context.Process(
            target=_work, args=(load, index, sessions[index], quotas[index], start_at, theirs)
        )
        process.start()
        pipes.append(ours)
        workers.append(process)
    results = []
    for pipe in pipes:
        if not pipe.poll(RUN_TIMEOUT_S):
            for process in workers:
                process.kill()
            raise TimeoutError(f"the load did not finish within {RUN_TIMEOUT_S}s")
        results.append(pipe.recv())
    for process in workers:
        process.join()
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return Result(
        acked=sum(r[0] for r in results),
        refused=sum(r[1] for r in results),
        sessions=sum(r[2] for r in results),
        elapsed_s=max(r[3] for r in results),
    )
