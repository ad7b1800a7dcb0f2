"""The strategy interface: how the harness hands a batch to client code and reads back its claims.

A strategy is any callable ``strategy(messages, endpoint, clock)`` that sends the batch to the
server at `endpoint` and yields (or returns) one :class:`Claim` per message: what the client
*believes* happened. The scorer compares the claims with the server's ledger, so a strategy must
report honestly, not optimistically:

- ``sent``: the server answered the end of data with a 2xx.
- ``failed``: the client gave up on it; `reply_code` and `reply_text` are the reply that made it
  give up (None when the connection was lost without one).
- ``not_attempted``: the client never started a transaction for it. Messages a strategy does
  not claim at all count as not attempted, so a strategy that stops early can simply return.
- ``uncertain``: the client cannot know whether the server stored it, and is not trying again:
  the connection died after the final "." and before the reply (SMTP cannot ask). The honest
  answer, scored as its own class, neither misreported nor lost: the application reconciles it
  (SES event notifications know).

Rules of the game:

- Connect with ``endpoint.connect()`` (an :class:`smtplib.SMTP`, already through STARTTLS and
  AUTH when the endpoint needs them) or any client you like, at ``endpoint.host``/``.port``.
- Every wait goes through ``clock.sleep(seconds)`` and every "what time is it" through
  ``clock.now()``. Scenario runs use a virtual clock: a 20-minute backoff costs no wall time, and
  the server's idle timer, send rate and daily quota see the same time as the client.
- Reading ``messages[i]`` may wait on the clock until message *i* has arrived (scenarios where
  mail comes in bursts), like taking the next job from a queue. ``len(messages)`` never waits.

A complete strategy, usable as ``ses-harness run --strategy mymail:send_batch``::

    # mymail.py
    import smtplib

    from harness import Claim, ClaimStatus


    def send_batch(messages, endpoint, clock):
        client = None
        for message in messages:
            try:
                if client is None:
                    client = endpoint.connect()
                client.sendmail(message.sender, list(message.recipients), message.data)
            except smtplib.SMTPResponseException as error:
                yield Claim(message.id, ClaimStatus.FAILED, error.smtp_code,
                            error.smtp_error.decode("utf-8", "replace"))
                client = None  # start afresh: the session may be gone
            except (smtplib.SMTPException, OSError) as error:
                yield Claim(message.id, ClaimStatus.FAILED, None, str(error))
                client = None
            else:
                yield Claim(message.id, ClaimStatus.SENT)
        if client is not None:
            client.quit()

How a strategy is found by name (built-in, ``module:attr``, ``cmd:``, entry point) is in
:mod:`harness.runner.resolve`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from harness.base.clock import Clock
from harness.base.endpoint import Endpoint


@dataclass(frozen=True)
class OutgoingMessage:
    """One logical message of a batch."""

    id: str  # the Message-ID header value incl. <>; how the scorer finds its copies
    sender: str  # envelope MAIL FROM
    recipients: tuple[str, ...]  # envelope RCPT TO, in order
    data: bytes  # the whole message, headers and body, CRLF line ends


class ClaimStatus(enum.StrEnum):
    SENT = "sent"
    FAILED = "failed"
    NOT_ATTEMPTED = "not_attempted"
    UNCERTAIN = "uncertain"  # the client cannot tell whether the server kept it


@dataclass(frozen=True)
class Claim:
    """What the client believes happened to one message."""

    message_id: str
    status: ClaimStatus
    reply_code: int | None = None  # the reply that decided a failure (None: no reply)
    reply_text: str | None = None

    @property
    def reply(self) -> str | None:
        """The deciding reply as one line, e.g. ``"421 Connection closed by server. ..."``."""
        if self.reply_code is None:
            return self.reply_text
        return f"{self.reply_code} {self.reply_text or ''}".rstrip()


Strategy = Callable[[Sequence[OutgoingMessage], Endpoint, Clock], Iterable[Claim]]
