"""`paced`: keep the client's own send rate below SES's, counted in recipients as SES counts.

SES's 14/s is a token bucket over recipients; a client that spaces its sends at 12 recipients a
second never sees "454 Throttling failure". When the server closes the connection the next
message opens a new one. Nothing is ever resent.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from harness.base.clock import Clock
from harness.base.endpoint import Endpoint
from harness.runner.strategies.session import Session
from harness.runner.strategy import Claim, OutgoingMessage

RATE_PER_S = 12.0  # recipients per second, with headroom below SES's default 14


class Pacer:
    """Spaces sends so that `rate_per_s` recipients go out per second, on `clock`."""

    def __init__(self, clock: Clock, rate_per_s: float = RATE_PER_S) -> None:
        self.clock = clock
        self.rate_per_s = rate_per_s
        self._next_at = clock.now()

    def wait_for(self, recipients: int) -> None:
        """Sleep until a send to `recipients` addresses fits the rate, and book it."""
        now = self.clock.now()
        if now < self._next_at:
            self.clock.sleep(self._next_at - now)
            now = self._next_at
        self._next_at = now + recipients / self.rate_per_s


def send_batch(
    messages: Sequence[OutgoingMessage],
    endpoint: Endpoint,
    clock: Clock,
    *,
    rate_per_s: float = RATE_PER_S,
) -> Iterator[Claim]:
    pacer = Pacer(clock, rate_per_s)
    session = Session(endpoint, clock)
    try:
        for message in messages:
            pacer.wait_for(len(message.recipients))
            yield session.send(message).claim(message)
    finally:
        session.close()
