"""One SMTP session for the careful strategies: send a message and learn exactly how it ended.

``smtplib.SMTP.sendmail`` hides the one thing a careful sender must know: whether the connection
died *before* the final "." (safe to resend) or *after* it (the server may have accepted the
message; a resend may be a duplicate). :class:`Session` runs the transaction step by step and
returns an :class:`Attempt` that says where it ended.

>>> session = Session(endpoint, clock)          # doctest: +SKIP
>>> attempt = session.send(message)             # connects on first use  # doctest: +SKIP
>>> attempt.accepted, attempt.reply             # doctest: +SKIP
(True, '250 Ok 0100019...-000000')
"""

from __future__ import annotations

import re
import smtplib
from dataclasses import dataclass

from harness.base.clock import Clock
from harness.base.endpoint import Endpoint
from harness.runner.strategy import Claim, ClaimStatus, OutgoingMessage

_LEADING_DOT = re.compile(rb"(?m)^\.")


@dataclass(frozen=True)
class Attempt:
    """How one try at one message ended."""

    stage: str  # where it ended: CONNECT, MAIL, RCPT, DATA or EOM (end of data)
    code: int | None  # the reply code; None when the connection was lost without a reply
    text: str

    @property
    def accepted(self) -> bool:
        return self.stage == "EOM" and self.code is not None and 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        """A 5xx: the server will say the same again; retrying only adds load."""
        return self.code is not None and self.code >= 500

    @property
    def ambiguous(self) -> bool:
        """The connection died after the final ".": the server may have accepted the message."""
        return self.stage == "EOM" and self.code is None

    @property
    def reply(self) -> str:
        return f"{self.code} {self.text}".rstrip() if self.code is not None else self.text

    def claim(self, message: OutgoingMessage) -> Claim:
        """The honest claim for `message` if the client stops trying after this attempt:
        uncertain after an ambiguous loss, as the server may have kept it."""
        if self.accepted:
            return Claim(message.id, ClaimStatus.SENT, self.code, self.text)
        if self.ambiguous:
            return Claim(message.id, ClaimStatus.UNCERTAIN, None, self.text)
        return Claim(message.id, ClaimStatus.FAILED, self.code, self.text)


def reply_of(error: BaseException) -> tuple[int | None, str]:
    """The (code, text) inside an smtplib exception; code None when there was no reply."""
    if isinstance(error, smtplib.SMTPResponseException):
        return error.smtp_code, _text(error.smtp_error)
    if isinstance(error, smtplib.SMTPRecipientsRefused) and error.recipients:
        code, text = next(iter(error.recipients.values()))
        return code, _text(text)
    return None, str(error) or type(error).__name__


def quit_quietly(client: smtplib.SMTP) -> None:
    """QUIT if the server still listens; close the socket either way."""
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()


def failed(message: OutgoingMessage, error: BaseException) -> Claim:
    """A failed claim carrying the reply inside an smtplib exception."""
    code, text = reply_of(error)
    return Claim(message.id, ClaimStatus.FAILED, code, text)


class Session:
    """A lazily opened SMTP connection that survives nothing: after a loss it reopens on demand.

    `sent` counts the messages accepted in the current connection and `idle_s` the time since
    the server last answered, both for strategies that recycle connections before SES does.
    """

    def __init__(self, endpoint: Endpoint, clock: Clock) -> None:
        self.endpoint = endpoint
        self.clock = clock
        self.sent = 0
        self._client: smtplib.SMTP | None = None
        self._last_reply_at = clock.now()

    @property
    def is_open(self) -> bool:
        return self._client is not None

    @property
    def idle_s(self) -> float:
        return self.clock.now() - self._last_reply_at

    def send(self, message: OutgoingMessage) -> Attempt:
        """One transaction for `message`, opening a connection first if there is none."""
        if self._client is None:
            refused = self._open()
            if refused is not None:
                return refused
        assert self._client is not None
        client, stage = self._client, "MAIL"
        try:
            code, text = client.mail(message.sender)
            if code != 250:
                return self._refused(stage, code, text)
            stage = "RCPT"
            accepted, refusal = 0, (554, b"no recipients")
            for recipient in message.recipients:
                code, text = client.rcpt(recipient)
                if code in (250, 251):
                    accepted += 1
                elif code == 421:
                    return self._refused(stage, code, text)
                elif accepted == 0:
                    refusal = (code, text)
            if not accepted:  # a message refused for some recipients still goes to the rest
                return self._refused(stage, *refusal)
            stage = "DATA"
            code, text = client.docmd("DATA")
            if code != 354:
                return self._refused(stage, code, text)
            stage = "EOM"
            body = _LEADING_DOT.sub(b"..", message.data)
            client.send(body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n")
            code, text = client.getreply()
            if 200 <= code < 300:
                self.sent += 1
                self._last_reply_at = self.clock.now()
                return Attempt(stage, code, _text(text))
            return self._refused(stage, code, text)
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            self._forget()
            return Attempt(stage, None, f"connection lost: {error}")

    def close(self) -> None:
        """QUIT politely if the connection is still there; forget it either way."""
        if self._client is not None:
            quit_quietly(self._client)
        self._forget()

    # --- internals -------------------------------------------------------------------------

    def _open(self) -> Attempt | None:
        try:
            client = self.endpoint.connect()
        except smtplib.SMTPResponseException as error:  # e.g. 421 instead of the greeting
            return Attempt("CONNECT", error.smtp_code, _text(error.smtp_error))
        except (smtplib.SMTPException, OSError) as error:
            return Attempt("CONNECT", None, f"cannot connect: {error}")
        try:
            client.ehlo_or_helo_if_needed()
        except smtplib.SMTPHeloError as error:
            quit_quietly(client)
            return Attempt("CONNECT", error.smtp_code, _text(error.smtp_error))
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            client.close()
            return Attempt("CONNECT", None, f"connection lost: {error}")
        self._client, self.sent = client, 0
        self._last_reply_at = self.clock.now()
        return None

    def _refused(self, stage: str, code: int, text: bytes) -> Attempt:
        """A refusal: 421 means the server hung up; otherwise clear the transaction."""
        self._last_reply_at = self.clock.now()
        attempt = Attempt(stage, code, _text(text))
        if code == 421 or self._client is None:
            self._forget()
            return attempt
        try:
            self._client.rset()
        except (smtplib.SMTPException, OSError):
            self._forget()  # e.g. SES's idle 451 comes with a closed connection
        return attempt

    def _forget(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None
        self.sent = 0


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
