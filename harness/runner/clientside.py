"""The client's side of a command strategy: read the batch and the server, write claims.

A client run by ``--strategy 'cmd:...'`` (see :mod:`harness.runner.command`) imports this, or
calls ``ses-harness claim`` from another language. No SMTP here: the client talks to the server
with its own library, the way the application does::

    from harness.client import Claims, batch, server

    smtp = server()  # host, port, tls, user, password, ca_file from SMTP_*
    claims = Claims()
    for message in batch():  # in order, from HARNESS_MANIFEST
        try:
            my_app.send(message.sender, message.recipients, message.data)
        except Exception as error:
            claims.failed(message, error)  # the reply code and text if the error carries one
        else:
            claims.sent(message)

Imports nothing else of the harness, so it costs a client process almost nothing to load.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass

STATUSES = ("sent", "failed", "not_attempted", "uncertain")


@dataclass(frozen=True)
class Server:
    """Where to send, from the SMTP_* variables."""

    host: str
    port: int
    tls: str  # "none", "starttls" or "implicit"
    user: str | None
    password: str | None
    ca_file: str | None


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    file: str  # its bytes, decoded

    @property
    def data(self) -> bytes:
        with open(self.file, "rb") as handle:
            return handle.read()


@dataclass(frozen=True)
class Message:
    id: str  # the Message-ID header, how the harness finds the server's copies
    sender: str
    recipients: list[str]
    file: str  # the whole message, CRLF line ends: send it as it is
    # Its parts, for a client that builds the message as an application does:
    from_header: str = ""
    to_header: str = ""
    subject: str = ""
    text: str = ""
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()

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
        yield Message(
            entry["id"],
            entry["sender"],
            entry["recipients"],
            entry["file"],
            from_header=entry.get("from", ""),
            to_header=entry.get("to", ""),
            subject=entry.get("subject", ""),
            text=entry.get("text", ""),
            html=entry.get("html"),
            attachments=tuple(
                Attachment(a["filename"], a["content_type"], a["file"])
                for a in entry.get("attachments", ())
            ),
        )


def claim_line(message_id: str, status: str, code: int | None, text: str | None) -> str:
    """One claim as the harness reads it: a JSON object on one line, newline included."""
    if status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    if code is not None and not 200 <= code <= 599:
        raise ValueError(f"code {code} is not an SMTP reply code (200-599)")
    return json.dumps({"id": message_id, "status": status, "code": code, "text": text}) + "\n"


class Claims:
    """Appends one claim a line to HARNESS_CLAIMS, flushed at once (a crash loses none)."""

    def __init__(self, path: str | None = None) -> None:
        self._file = open(path or os.environ["HARNESS_CLAIMS"], "a", encoding="utf-8")  # noqa: SIM115

    def sent(self, message: Message | str) -> None:
        self.write(message, "sent")

    def not_attempted(self, message: Message | str) -> None:
        self.write(message, "not_attempted")

    def uncertain(self, message: Message | str, error: BaseException | None = None) -> None:
        """The client cannot know whether the server kept it (the connection died after the
        final "." and before the reply) and will not resend: scored `uncertain`."""
        text = f"{type(error).__name__}: {error}" if error is not None else None
        self.write(message, "uncertain", None, text)

    def failed(self, message: Message | str, error: BaseException | None = None) -> None:
        """Failed, with the reply inside the library's exception when there is one."""
        code, text = reply_of(error) if error is not None else (None, None)
        self.write(message, "failed", code, text)

    def write(
        self,
        message: Message | str,
        status: str,
        code: int | None = None,
        text: str | None = None,
    ) -> None:
        message_id = message.id if isinstance(message, Message) else message
        self._file.write(claim_line(message_id, status, code, text))
        self._file.flush()


def reply_of(error: BaseException) -> tuple[int | None, str]:
    """The SMTP reply an exception of smtplib, aiosmtplib or Django carries, else its text."""
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
    if not isinstance(code, int) or isinstance(code, bool) or not text:
        return None, f"{type(error).__name__}: {error}"
    return code, str(text)
