"""A small batch mailer: the application code the example tests exercise.

It keeps one SMTP connection for many messages (fast), opens a new one before SES's per-session
cap or when SES closes the session (421), and retries a temporary refusal (4xx) after a pause.
It never resends a message after a permanent refusal (5xx).
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import EmailMessage

SESSION_BUDGET = 300  # SES closes a session after ~350 messages; stay well below
ATTEMPTS = 5


@dataclass
class Outcome:
    message_id: str
    sent: bool
    reply: str = ""


def make_message(n: int, to: str = "user@example.com") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "newsletter@example.com"
    message["To"] = to
    message["Subject"] = f"Newsletter #{n}"
    message["Message-ID"] = f"<newsletter-{n}@example.com>"
    message.set_content(f"Hello, this is newsletter #{n}.")
    return message


class BatchMailer:
    """Send messages through one endpoint; `connect()` returns a logged-in smtplib client."""

    def __init__(
        self,
        connect: Callable[[], smtplib.SMTP],
        sleep: Callable[[float], None] = time.sleep,
        backoff_s: float = 5.0,
    ) -> None:
        self._connect = connect
        self._sleep = sleep
        self._backoff_s = backoff_s
        self._client: smtplib.SMTP | None = None
        self._sent_in_session = 0

    def send_all(self, messages: Iterable[EmailMessage]) -> list[Outcome]:
        try:
            return [self._send(message) for message in messages]
        finally:
            self._hang_up()

    def _send(self, message: EmailMessage) -> Outcome:
        message_id = str(message["Message-ID"])
        reply = ""
        for attempt in range(ATTEMPTS):
            if self._client is None or self._sent_in_session >= SESSION_BUDGET:
                self._hang_up()
                self._client, self._sent_in_session = self._connect(), 0
            try:
                self._client.send_message(message)
                self._sent_in_session += 1
                return Outcome(message_id, sent=True)
            except smtplib.SMTPResponseException as error:
                reply = f"{error.smtp_code} {error.smtp_error.decode(errors='replace')}"
                if error.smtp_code >= 500:
                    return Outcome(message_id, sent=False, reply=reply)
                if error.smtp_code == 421:  # SES closed the session: reconnect, no pause
                    self._hang_up()
                    continue
                self._client.rset()
            except smtplib.SMTPRecipientsRefused as error:
                code, text = next(iter(error.recipients.values()))
                reply = f"{code} {text.decode(errors='replace')}"
                if code >= 500:
                    return Outcome(message_id, sent=False, reply=reply)
                self._client.rset()
            self._sleep(self._backoff_s * 2**attempt)
        return Outcome(message_id, sent=False, reply=reply)

    def _hang_up(self) -> None:
        if self._client is not None:
            try:
                self._client.quit()
            except smtplib.SMTPServerDisconnected:
                self._client.close()
            self._client = None
