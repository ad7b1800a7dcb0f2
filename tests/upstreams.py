"""Real SMTP servers nobody here wrote, started on loopback ports for the proxy's tests:
maildev (npm, bench/peers), Postfix's smtp-sink and Postfix itself (Debian's postfix package;
a private instance with its own configuration, queue and log, discarding what it accepts)."""

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
POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
POSTFIX_MASTER_CF = Path("/etc/postfix/master.cf")
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


def postfix_missing() -> str | None:
    if not os.path.exists(POSTFIX) or not POSTFIX_MASTER_CF.exists():
        return "Postfix is not installed (apt-get install postfix)"
    if os.geteuid() != 0:
        return "a private Postfix instance needs root to start"
    return None


@dataclass
class Postfix:
    port: int
    maillog: Path

    def message_ids(self, at_least: int = 0) -> list[str]:
        """The Message-ID of every message Postfix accepted (its cleanup log lines); waits
        (within a bound) until there are `at_least`: the log is written after the 250."""
        until = time.monotonic() + START_TIMEOUT_S
        while True:
            text = self.maillog.read_text() if self.maillog.exists() else ""
            found = [
                line.rpartition("message-id=")[2].strip()
                for line in text.splitlines()
                if "postfix/cleanup" in line and "message-id=" in line
            ]
            if len(found) >= at_least or time.monotonic() > until:
                return found
            time.sleep(0.05)


@contextlib.contextmanager
def postfix(**settings: str) -> Iterator[Postfix]:
    """A private Postfix on a loopback port: `settings` go to its main.cf (e.g.
    smtpd_recipient_limit="3"); what it accepts is discarded, and logged."""
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        os.chmod(root, 0o755)
        etc, spool, data = root / "etc", root / "spool", root / "data"
        for path in (etc, spool, data):
            path.mkdir()
        shutil.chown(data, "postfix")
        master = POSTFIX_MASTER_CF.read_text().splitlines()
        master = [
            f"127.0.0.1:{port} inet n - n - - smtpd"
            if line.split()[:2] == ["smtp", "inet"]
            else line
            for line in master
        ]
        (etc / "master.cf").write_text("\n".join(master) + "\n")
        main = {
            "compatibility_level": "3.6",
            "queue_directory": str(spool),
            "data_directory": str(data),
            "maillog_file": str(root / "maillog"),
            "maillog_file_prefixes": str(root),
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "myhostname": "postfix.test",
            "mydestination": "",
            "mynetworks": "127.0.0.0/8",
            "default_transport": "discard",
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
            "smtpd_client_event_limit_exceptions": "",  # loopback's limits apply too
            "alias_maps": "",
            "alias_database": "",
            **settings,
        }
        (etc / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))
        command = [POSTFIX, "-c", str(etc)]
        started = subprocess.run([*command, "start"], capture_output=True, text=True)
        try:
            if started.returncode != 0:
                log = (root / "maillog").read_text() if (root / "maillog").exists() else ""
                raise RuntimeError(f"postfix did not start: {started.stderr}{log[-2000:]}")
            until = time.monotonic() + START_TIMEOUT_S
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                    break
                if time.monotonic() > until:
                    raise TimeoutError(f"postfix did not listen on {port} in {START_TIMEOUT_S}s")
                time.sleep(0.05)
            yield Postfix(port, root / "maillog")
        finally:
            subprocess.run([*command, "stop"], capture_output=True, timeout=START_TIMEOUT_S)


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
