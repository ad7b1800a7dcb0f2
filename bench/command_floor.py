"""What one SMTP command costs in the matrix's layout, against the cheapest servers possible.

    python bench/command_floor.py [--messages 20000] [--per-session 50] [--repeats 3]

A case of the scenario matrix is one process: the server's loop in a thread, the strategy's
smtplib in another, both on one core. This runs the same smtplib loop (EHLO, then MAIL, RCPT,
DATA of a 6 KB message, per message, QUIT) against three servers in that layout, alternating
them in each repeat, and prints the CPU microseconds a command (both threads) and what that
allows at one worker per core:

- `instant`: an asyncio protocol that answers every line at once (bench/peers.py's), reading
  64 KiB at a time: the floor of smtplib plus asyncio plus the kernel, with no server at all;
- `aiosmtpd`: aiosmtpd's SMTP with the harness's fast paths (message data read in blocks,
  addresses parsed once, 64 KiB reads, its methods listed once): aiosmtpd at its best;
- `fake_ses`: FakeSES on a virtual clock, ses profile, no limits: engine, ledger, transcript.

Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import smtplib
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aiosmtpd.smtp import SMTP, syntax
from peers import _Instant

from harness import FakeSES, VirtualClock
from harness.server.addresses import parsed_address
from harness.server.data import read_message
from harness.server.protocol import READ_SIZE

BODY = b"Subject: floor\r\n\r\n" + (b"y" * 76 + b"\r\n") * 80  # 6.3 KB, like the workloads'


class _InstantReads(_Instant):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.max_size = READ_SIZE  # type: ignore[attr-defined]
        super().connection_made(transport)


class _Accept:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 Ok"


class _LeanSMTP(SMTP):
    """aiosmtpd with what SesSMTP does to be fast, and nothing else of it."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.max_size = READ_SIZE  # type: ignore[attr-defined]
        super().connection_made(transport)

    def __dir__(self) -> list[str]:
        return _METHODS

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        return parsed_address(arg) if arg else ("", "")

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        data, error = await read_message(
            self._reader, line_limit=self.line_length_limit, size_limit=self.data_size_limit
        )
        self.envelope.content = self.envelope.original_content = data
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push(error or status)


_METHODS = [name for name in dir(SMTP) if name.startswith(("smtp_", "auth_"))]


@contextmanager
def _loop_server(factory: Callable[[], asyncio.BaseProtocol]) -> Iterator[int]:
    """A server on its own loop in a thread of this process; yields its port."""
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(factory, "127.0.0.1", 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()


@contextmanager
def _fake_ses() -> Iterator[int]:
    limits = {"session_limit": None, "rate_per_s": None, "daily_quota": None}
    with FakeSES(profile="ses", clock=VirtualClock(), api=False, **limits) as ses:
        yield ses.port


SERVERS: dict[str, Callable[[], Any]] = {
    "instant": lambda: _loop_server(_InstantReads),
    "aiosmtpd": lambda: _loop_server(lambda: _LeanSMTP(_Accept(), hostname="lean")),
    "fake_ses": _fake_ses,
}


def measure(name: str, messages: int, per_session: int) -> float:
    """CPU microseconds of this process (server and client) per SMTP command."""
    with SERVERS[name]() as port:
        commands, sent = 0, 0
        started = time.process_time()
        while sent < messages:
            with smtplib.SMTP("127.0.0.1", port, local_hostname="[127.0.0.1]") as client:
                client.ehlo()
                for _ in range(min(per_session, messages - sent)):
                    client.sendmail("app@example.com", ["user@example.com"], BODY)
                    sent += 1
                    commands += 4  # MAIL, RCPT, DATA, the data's end
                commands += 2  # EHLO, and QUIT at the block's end
        return (time.process_time() - started) / commands * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--per-session", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):  # before any thread starts: both on one core
        allowed = os.sched_getaffinity(0)
        cores = len(allowed)
        os.sched_setaffinity(0, {min(allowed)})
    else:
        cores = os.cpu_count() or 1
    runs: dict[str, list[float]] = {name: [] for name in SERVERS}
    for _ in range(args.repeats):
        for name in SERVERS:
            runs[name].append(measure(name, args.messages, args.per_session))
    floor = statistics.median(runs["instant"])
    print(
        f"{args.messages:,} messages, {args.per_session} a session, smtplib in one thread and "
        f"the server in another on one core, median of {args.repeats}:"
    )
    for name, figures in runs.items():
        us = statistics.median(figures)
        print(
            f"  {name:9s} {us:6.0f} us of CPU a command ({us / floor:4.2f}x instant); "
            f"one worker on each of {cores} cores: at most {cores / us * 1e6:,.0f} commands "
            f"a second"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
