"""`rotate`: a new connection every `per_session` messages, before SES's cap of 350 bites.

AWS's own advice for the 421 "Maximum message count per session reached": recycle connections
after a fixed number of messages. When the server closes a connection anyway, the next message
opens a new one. Nothing is ever resent: a refused message is reported failed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from harness.base.clock import Clock
from harness.base.endpoint import Endpoint
from harness.runner.strategies.session import Session
from harness.runner.strategy import Claim, OutgoingMessage

PER_SESSION = 300  # below SES's 350, with room for messages refused mid-session


def send_batch(
    messages: Sequence[OutgoingMessage],
    endpoint: Endpoint,
    clock: Clock,
    *,
    per_session: int = PER_SESSION,
) -> Iterator[Claim]:
    session = Session(endpoint, clock)
    try:
        for message in messages:
            if session.sent >= per_session:
                session.close()
            yield session.send(message).claim(message)
    finally:
        session.close()
