"""The servers a benchmark compares, each in its own process on 127.0.0.1.

- `fake_ses`: our FakeSES, `ses` profile, the limits that would stop a load switched off, two
  fault rules armed that never fire, ledger on.
- `aiosmtpd`: bare aiosmtpd with its `Sink` handler (the library we build on).
- `maildev`: the npm package, installed by `npm ci` in bench/peers/.
- `smtp_sink`: Postfix's `smtp-sink` (Debian's `postfix` package), a C test server that
  answers every command and throws the mail away: what a fast SMTP server costs here.
- `instant`: an asyncio sink that answers every command at once without parsing it: the
  ceiling of the load generator on this machine.

`with serving("fake_ses") as peer:` gives `peer.port` and `peer.pid`; on exit the process is
stopped and, for fake_ses, `peer.ledger` holds the counts its ledger recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

PEERS_DIR = Path(__file__).resolve().parent / "peers"
MAILDEV = PEERS_DIR / "node_modules" / "maildev" / "bin" / "maildev"
START_TIMEOUT_S = 30.0
NAMES = ("fake_ses", "aiosmtpd", "maildev", "smtp_sink", "instant")
SMTP_SINK_PATHS = ("/usr/sbin/smtp-sink", "/usr/lib/postfix/sbin/smtp-sink")


def smtp_sink() -> str | None:
    """Where Postfix's smtp-sink is, or None."""
    found = shutil.which("smtp-sink")
    return found or next((p for p in SMTP_SINK_PATHS if os.access(p, os.X_OK)), None)


def smtp_sink_missing() -> str | None:
    """Why smtp-sink cannot run here, or None."""
    if smtp_sink() is None:
        return "smtp-sink is not installed (Debian: apt-get install postfix; .ci/run does)"
    return None


def maildev_missing() -> str | None:
    """Why maildev cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not MAILDEV.exists():
        return f"maildev is not installed: run `npm ci` in {PEERS_DIR}"
    return None


@dataclass
class Peer:
    name: str
    port: int
    pid: int
    ledger: dict[str, Any] = field(default_factory=dict)


# --- the servers, each run as the target of a process ---------------------------------------


def fake_ses_options(**limits: Any) -> dict[str, Any]:
    """The fake server as the throughput benchmark runs it (limits may be overridden)."""
    from harness import Rule

    never = [
        # Armed but never firing: the engine checks both on every RCPT / end of data.
        Rule.from_dict({"stage": "RCPT", "probability": 0.0, "action": "reply", "code": 451}),
        Rule.from_dict(
            {"stage": "EOM", "sender": "*@never.invalid", "action": "reply", "code": 554}
        ),
    ]
    options: dict[str, Any] = {
        "profile": "ses",
        "session_limit": None,
        "rate_per_s": None,
        "daily_quota": None,
        "max_connections": None,
        "faults": never,
    }
    options.update(limits)
    return options


async def _fake_ses(pipe: Connection, options: dict[str, Any]) -> None:
    from harness import FakeSES, Ledger

    budget = options.pop("memory_budget_bytes", None)
    if budget is not None:
        options["ledger"] = Ledger(memory_budget_bytes=budget)
    async with FakeSES(**options) as ses:
        pipe.send(ses.port)
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
        ledger = ses.ledger
        messages = ledger.messages
        pipe.send(
            {
                "sessions": len(ledger.sessions),
                "messages": len(messages),
                "acknowledged": sum(m.acknowledged for m in messages),
                "unique_ses_ids": len({m.ses_id for m in messages}),
                "unique_message_ids": len({m.message_id for m in messages}),
                "bodies_held": sum(m.data is not None for m in messages),
                "transcript_lines": sum(len(s.transcript) for s in ledger.sessions),
                "faults": len(ledger.faults),
            }
        )


async def _aiosmtpd(pipe: Connection, options: dict[str, Any]) -> None:
    from aiosmtpd.handlers import Sink
    from aiosmtpd.smtp import SMTP

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Sink(), hostname="localhost"), "127.0.0.1", 0, backlog=4096
    )
    pipe.send(server.sockets[0].getsockname()[1])
    await loop.run_in_executor(None, pipe.recv)
    server.close()
    pipe.send({})


class _Instant(asyncio.Protocol):
    """Replies to every line at once; after DATA, swallows the body up to the final dot."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.buffer = b""
        self.in_data = False
        transport.write(b"220 instant ESMTP\r\n")  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        replies = []
        while True:
            if self.in_data:
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    break
                self.buffer = self.buffer[end + 5 :]
                self.in_data = False
                replies.append(b"250 Ok\r\n")
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                break
            verb = self.buffer[:4].upper()
            self.buffer = self.buffer[end:]  # keep the CRLF: DATA's end marker needs it
            if verb == b"DATA":
                self.in_data = True
                replies.append(b"354 go\r\n")
            else:
                self.buffer = self.buffer[2:]
                replies.append(b"221 bye\r\n" if verb == b"QUIT" else b"250 ok\r\n")
        if replies:
            self.transport.write(b"".join(replies))  # type: ignore[attr-defined]
            if replies[-1].startswith(b"221"):
                self.transport.close()


async def _instant(pipe: Connection, options: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Instant, "127.0.0.1", 0, backlog=4096)
    pipe.send(server.sockets[0].getsockname()[1])
    await loop.run_in_executor(None, pipe.recv)
    server.close()
    pipe.send({})


_TARGETS = {"fake_ses": _fake_ses, "aiosmtpd": _aiosmtpd, "instant": _instant}


def _serve(
    name: str, pipe: Connection, options: dict[str, Any], use_uvloop: bool, profile: str | None
) -> None:
    main = _TARGETS[name](pipe, options)
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    if use_uvloop:
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)


# --- starting and stopping ------------------------------------------------------------------


@contextlib.contextmanager
def serving(
    name: str, *, use_uvloop: bool = False, profile: str | None = None, **options: Any
) -> Iterator[Peer]:
    """Run peer `name` in its own process for the duration of the block.

    `profile`: a file to write the server process's cProfile stats to (Python peers only).
    """
    if name == "maildev":
        with _maildev() as peer:
            yield peer
        return
    if name == "smtp_sink":
        with _smtp_sink() as peer:
            yield peer
        return
    if name == "fake_ses":
        options = fake_ses_options(**options)
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=_serve, args=(name, theirs, options, use_uvloop, profile))
    process.start()
    try:
        if not ours.poll(START_TIMEOUT_S):
            raise TimeoutError(f"{name} did not start within {START_TIMEOUT_S}s")
        assert process.pid is not None
        peer = Peer(name, ours.recv(), process.pid)
        yield peer
        ours.send("stop")
        peer.ledger = ours.recv()
    finally:
        process.join(START_TIMEOUT_S)
        if process.is_alive():
            process.kill()
            process.join()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def _maildev() -> Iterator[Peer]:
    missing = maildev_missing()
    if missing:
        raise RuntimeError(missing)
    smtp_port, web_port = _free_port(), _free_port()
    with tempfile.TemporaryDirectory() as folder:
        command = [
            "node",
            str(MAILDEV),
            "--ip",
            "127.0.0.1",
            "--smtp",
            str(smtp_port),
            "--web",
            str(web_port),
            "--web-ip",
            "127.0.0.1",
            "--mail-directory",
            folder,
            "--silent",
        ]
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy()
        )
        try:
            _wait_for_port(smtp_port, process)
            yield Peer("maildev", smtp_port, process.pid)
        finally:
            process.terminate()
            try:
                process.wait(START_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def _smtp_sink() -> Iterator[Peer]:
    program = smtp_sink()
    if program is None:
        raise RuntimeError(smtp_sink_missing())
    port = _free_port()
    # 127.0.0.1 only; as root it must be told whose privileges to take after binding.
    command = [program, *(["-u", "nobody"] if os.geteuid() == 0 else []), f"127.0.0.1:{port}"]
    command.append("1024")  # the listen backlog
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for_port(port, process)
        yield Peer("smtp_sink", port, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    until = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < until:
        if process.poll() is not None:
            error = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(
                f"{process.args[0]} exited with {process.returncode}: {error[-500:]}"
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1.0):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{process.args[0]} did not listen on {port} within {START_TIMEOUT_S}s")


def cpu_s(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int, field_name: str = "VmRSS") -> int:
    """A process's resident memory (or its high-water mark, `VmHWM`) in KiB, from /proc."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise LookupError(field_name)
