"""Small builders shared by the server tests."""

from __future__ import annotations

import smtplib


def message(n: int, sender: str = "app@example.com", to: str = "user@example.com") -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: message {n}\r\n"
        f"Message-ID: <msg-{n}@test.example>\r\n\r\nBody of message {n}.\r\n"
    ).encode()


def send(client: smtplib.SMTP, n: int, recipients: list[str] | None = None) -> dict:
    recipients = recipients or ["user@example.com"]
    return client.sendmail("app@example.com", recipients, message(n, to=recipients[0]))
