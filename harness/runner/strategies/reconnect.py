"""`reconnect`: on a 4xx or a lost connection, open a new connection and resend at once.

Survives SES's 421 session cap and its idle timeout. Two flaws: it resends without waiting (a
throttled send is refused again), and it resends after a connection lost just after the final
"." (the server may already have the message: a duplicate). A 5xx is final.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from harness.base.clock import Clock
from harness.base.endpoint import Endpoint
from harness.runner.strategies.session import Session
from harness.runner.strategy import Claim, OutgoingMessage

ATTEMPTS = 5


def send_batch(
    messages: Sequence[OutgoingMessage],
    endpoint: Endpoint,
    clock: Clock,
    *,
    attempts: int = ATTEMPTS,
) -> Iterator[Claim]:
    session = Session(endpoint, clock)
    try:
        for message in messages:
            for attempt in range(1, attempts + 1):
                result = session.send(message)
                if result.accepted or result.permanent or attempt == attempts:
                    yield result.claim(message)
                    break
                session.close()  # a fresh connection for the resend
    finally:
        session.close()
