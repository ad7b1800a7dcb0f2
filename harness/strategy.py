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

    from harness.strategy import Claim, ClaimStatus


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

Packages can also publish strategies under the entry point group ``ses_harness.strategies``
(``name = "module:attr"``) and refer to them by name.
"""

from __future__ import annotations

import enum
import importlib
import importlib.metadata
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from harness.clock import Clock
from harness.core.errors import PlanError
from harness.endpoint import Endpoint

ENTRY_POINT_GROUP = "ses_harness.strategies"


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


def resolve_strategy(spec: str) -> tuple[str, Strategy]:
    """Find a strategy by built-in name, ``cmd:COMMAND``, ``module:attr``, or entry point name.

    Returns ``(name, callable)``; the name is what reports show. ``module:attr`` is imported with
    the current directory on the import path, as ``python -m`` would.

    >>> resolve_strategy("robust")[0]
    'robust'
    """
    from harness.strategies import BUILTINS  # the registry imports this module's types

    if spec in BUILTINS:
        return spec, BUILTINS[spec].send_batch
    if spec.startswith(("cmd:", "cmd[")):  # a client process: harness.command_strategy
        from harness.command_strategy import CommandStrategy

        return spec, CommandStrategy.from_spec(spec)
    if ":" in spec:
        return spec, _import_attr(spec)
    entry = _entry_points().get(spec)
    if entry is not None:
        return spec, _checked(spec, entry.load())
    installed = sorted(_entry_points())
    allowed = [*BUILTINS, "module:attr", "cmd:COMMAND", *installed]
    raise PlanError("strategy", f"{spec!r} is not a known strategy", allowed=allowed)


def known_strategy(spec: str) -> bool:
    """True when `spec` could name a strategy, without importing user code."""
    from harness.strategies import BUILTINS

    return spec in BUILTINS or ":" in spec or spec in _entry_points()


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {e.name: e for e in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _import_attr(spec: str) -> Strategy:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise PlanError("strategy", f"{spec!r} is not of the form module:attr")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        target: object = importlib.import_module(module_name)
    except ImportError as error:
        raise PlanError("strategy", f"cannot import {module_name!r}: {error}") from None
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise PlanError("strategy", f"module {module_name!r} has no {attr!r}") from None
    return _checked(spec, target)


def _checked(spec: str, target: object) -> Strategy:
    if not callable(target):
        raise PlanError(
            "strategy", f"{spec!r} is not callable", allowed="fn(messages, endpoint, clock)"
        )
    return target  # type: ignore[return-value]
