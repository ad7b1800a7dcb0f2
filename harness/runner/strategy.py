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

A strategy that needs more of its case than a clock to sleep on (a client in another process,
say) subclasses :class:`CaseHooks` and overrides the hooks it needs; a plain callable gets their
defaults. Every strategy, a built-in, yours or a ``cmd:`` client, runs through the same
:func:`harness.runner.matrix.run_case`, which asks :func:`hooks_of` and nothing else.

How a strategy is found by name (built-in, ``module:attr``, ``cmd:``, entry point) is in
:mod:`harness.runner.resolve`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.base.clock import Clock, VirtualClock
from harness.base.endpoint import Endpoint

if TYPE_CHECKING:
    from harness.base.ledger import Ledger


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


@dataclass(frozen=True, slots=True)  # a case of 100,000 messages holds 100,000 of them
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


class CaseHooks:
    """How a case runs around a strategy; the defaults suit a callable in this process.

    The case runner (:func:`harness.runner.matrix.run_case`) calls these around the strategy,
    in this order: :meth:`for_scenario`, then :meth:`clock` and :meth:`arrivals_s` before the
    server starts; the case runs
    :attr:`pinned` or not; :meth:`watch` once the server is up, before the strategy is called;
    :meth:`start_s` once it has returned; :meth:`claims_when_silent` and :meth:`case_record`
    when the case is scored. A strategy object subclasses this and overrides what it needs:

    >>> class Slow(CaseHooks):
    ...     \"\"\"Sends nothing, on a clock with twice the scenario's round trip.\"\"\"
    ...
    ...     def clock(self, latency_s):
    ...         return VirtualClock(latency_s=2 * latency_s)
    ...
    ...     def __call__(self, messages, endpoint, clock):
    ...         return []
    >>> hooks_of(Slow()).clock(0.1).latency_s, hooks_of(print).clock(0.1).latency_s
    (0.2, 0.1)

    A client in another process (:class:`harness.runner.command.CommandStrategy`) overrides
    every one of them.
    """

    #: Run the case on the worker's own core (see :func:`harness.runner.workers.on_own_core`):
    #: a client in this process and the server thread take turns, never both busy at once.
    #: A client in another process is left to the scheduler.
    pinned: bool = True

    def for_scenario(self, command_time_scale: float | None) -> None:
        """What the scenario says for clients in other processes: the time scale it plays them
        at (its ``command_time_scale``; None: the default). Nothing for a callable here."""

    def clock(self, latency_s: float) -> Clock:
        """The case's clock, the server's and the strategy's: a virtual one that each command
        advances by the scenario's modelled round trip, `latency_s`."""
        return VirtualClock(latency_s=latency_s)

    def arrivals_s(self, planned_s: Sequence[float]) -> Sequence[float]:
        """When each message becomes available, in seconds from the start: the scenario's."""
        return planned_s

    def watch(self, ledger: Ledger) -> None:
        """Hear of the case's ledger, once its server is up and before the strategy runs."""

    def start_s(self, case_start_s: float) -> float:
        """Where the strategy's elapsed time (and the case's timeline) counts from, on the
        case's clock: by default when the case began, `case_start_s`."""
        return case_start_s

    def claims_when_silent(
        self, messages: Sequence[OutgoingMessage], ledger: Ledger
    ) -> list[Claim] | None:
        """Claims to score when the strategy claimed nothing and raised nothing, read from the
        server's side (the case then says its claims came from the server); None, the default,
        scores it as it is: every message never attempted."""
        return None

    def case_record(self, claims_from: str) -> dict[str, Any]:
        """Entries this strategy adds to its case, beside the harness's own (which they cannot
        replace; the results schema names the ones it allows). `claims_from` is ``"client"``,
        or ``"server"`` when :meth:`claims_when_silent` gave the claims. None by default."""
        return {}


_DEFAULTS = CaseHooks()


def hooks_of(strategy: Strategy) -> CaseHooks:
    """`strategy`'s hooks: its own when it subclasses :class:`CaseHooks`, else the defaults."""
    return strategy if isinstance(strategy, CaseHooks) else _DEFAULTS
