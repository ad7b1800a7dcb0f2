"""The command-strategy contract for the Python clients here: read the batch, write claims.

No SMTP in this module: each client beside it talks to the server with its own library, the
way an application would. See harness/runner/command.py for the contract.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Server:
    """Where to send, from SMTP_* variables."""

    host: str
    port: int
    tls: str  # "none", "starttls" or "implicit"
    user: str | None
    password: str | None
    ca_file: str | None


@dataclass(frozen=True)
class Message:
    id: str  # the Message-ID header, how the harness finds the server's copies
    sender: str
    recipients: list[str]
    file: str

    @property
    def data(self) -> bytes:
        with open(self.file, "rb") as handle:
            return handle.read()


def server() -> Server:
    env = os.environ
    return Server(
        host=env["SMTP_HOST"],
        port=int(env["SMTP_PORT"]),
        tls=env.get("SMTP_TLS", "none"),
        user=env.get("SMTP_USER") or None,
        password=env.get("SMTP_PASSWORD") or None,
        ca_file=env.get("SMTP_CA_FILE") or None,
    )


def batch() -> Iterator[Message]:
    with open(os.environ["HARNESS_MANIFEST"], encoding="utf-8") as handle:
        entries = json.load(handle)
    for entry in entries:
        yield Message(entry["id"], entry["sender"], entry["recipients"], entry["file"])


class Claims:
    """Appends one JSON claim a line to HARNESS_CLAIMS, flushed at once (a crash loses none)."""

    def __init__(self) -> None:
        self._file = open(os.environ["HARNESS_CLAIMS"], "a", encoding="utf-8")  # noqa: SIM115

    def sent(self, message: Message) -> None:
        self._write(message, "sent", None, None)

    def failed(self, message: Message, error: BaseException) -> None:
        """Failed, with the reply inside the library's exception when there is one."""
        code = getattr(error, "smtp_code", None) or getattr(error, "code", None)
        text = getattr(error, "smtp_error", None) or getattr(error, "message", None)
        recipients = getattr(error, "recipients", None)  # every recipient refused
        if code is None and isinstance(recipients, dict) and recipients:  # smtplib
            code, text = next(iter(recipients.values()))
        elif code is None and isinstance(recipients, list) and recipients:  # aiosmtplib
            code, text = (
                getattr(recipients[0], "code", None),
                getattr(recipients[0], "message", None),
            )
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        if not isinstance(code, int) or not text:
            code, text = None, f"{type(error).__name__}: {error}"
        self._write(message, "failed", code, text)

    def _write(self, message: Message, status: str, code: int | None, text: str | None) -> None:
        line = {"id": message.id, "status": status, "code": code, "text": text}
        self._file.write(json.dumps(line) + "\n")
        self._file.flush()
