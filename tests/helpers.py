"""Small builders shared by the server tests."""

from __future__ import annotations

import select
import smtplib
import socket


def message(n: int, sender: str = "app@example.com", to: str = "user@example.com") -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: message {n}\r\n"
        f"Message-ID: <msg-{n}@test.example>\r\n\r\nBody of message {n}.\r\n"
    ).encode()


def send(client: smtplib.SMTP, n: int, recipients: list[str] | None = None) -> dict:
    recipients = recipients or ["user@example.com"]
    return client.sendmail("app@example.com", recipients, message(n, to=recipients[0]))


class Replies:
    """SMTP reply lines from a raw socket, one complete reply at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def next(self) -> bytes:
        """The next reply's last line; b"" once the server has closed."""
        while True:
            while b"\r\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\r\n", 1)
                if line[3:4] != b"-":
                    return line
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return b""
            if not chunk:
                return b""
            self.buffer += chunk

    def command(self, line: bytes) -> bytes:
        self.sock.sendall(line + b"\r\n")
        return self.next()

    def nothing_yet(self) -> bool:
        """True when the server has sent nothing (not even a close) that is not read yet."""
        readable, _, _ = select.select([self.sock], [], [], 0)  # a byte, or the end of stream
        return not self.buffer and not readable
