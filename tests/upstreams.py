"""Real SMTP servers nobody here wrote, started on loopback ports for the proxy's tests:
maildev (npm, bench/peers) and Postfix's smtp-sink (Debian's postfix package)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAILDEV = Path(__file__).resolve().parent.parent / "bench/peers/node_modules/maildev/bin/maildev"
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
# A bound on starting, never reached when the server works.
START_TIMEOUT_S = 30.0


def maildev_missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not MAILDEV.exists():
        return "maildev is not installed: run `npm ci` in bench/peers"
    return None


def smtp_sink_missing() -> str | None:
    if not os.path.exists(SMTP_SINK):
        return "Postfix's smtp-sink is not installed (apt-get install postfix)"
    return None


@dataclass
class MailDev:
    port: int
    web_port: int

    def emails(self, at_least: int = 0) -> list[dict[str, Any]]:
        """What maildev holds; waits (within a bound) until it lists `at_least` messages: it
        stores a message once parsed, after its 250."""
        url = f"http://127.0.0.1:{self.web_port}/email"
        until = time.monotonic() + START_TIMEOUT_S
        while True:
            with urllib.request.urlopen(url, timeout=START_TIMEOUT_S) as response:
                emails = json.loads(response.read())
            if len(emails) >= at_least or time.monotonic() > until:
                return emails
            time.sleep(0.05)


@dataclass
class SmtpSink:
    port: int
    folder: Path

    def messages(self) -> list[bytes]:
        """Every message the sink received, as it dumped them (one file each)."""
        return [path.read_bytes() for path in sorted(self.folder.iterdir())]


@contextlib.contextmanager
def maildev() -> Iterator[MailDev]:
    smtp_port, web_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as folder:
        command = ["node", str(MAILDEV), "--ip", "127.0.0.1", "--smtp", str(smtp_port)]
        command += ["--web", str(web_port), "--web-ip", "127.0.0.1"]
        command += ["--mail-directory", folder, "--silent"]
        with _running(command, smtp_port) as _:
            yield MailDev(smtp_port, web_port)


@contextlib.contextmanager
def smtp_sink(*options: str) -> Iterator[SmtpSink]:
    """smtp-sink with `options` (its man page: -f/-r/-q/-Q COMMANDS answer with errors), each
    message dumped to a file of its own."""
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o777)  # smtp-sink drops root for nobody before it writes
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        command = [SMTP_SINK, *user, "-d", f"{folder}/%H%M%S.", *options, f"127.0.0.1:{port}"]
        with _running([*command, "100"], port):
            yield SmtpSink(port, Path(folder))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def _running(command: list[str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for_port(port, process)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    until = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < until:
        if process.poll() is not None:
            error = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}: {error}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1.0):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{process.args[0]} did not listen on {port} in {START_TIMEOUT_S}s")
