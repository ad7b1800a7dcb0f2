"""`backoff`: retry every failure after a growing, jittered wait.

The generic retry decorator many applications wrap around `send`: exponential waits with jitter
(seeded, so runs repeat), or AWS's documented ladder for SMTP 4xx replies, "wait 5 seconds, then
10 seconds, and then 30 seconds. If the third retry doesn't succeed, wait 20 minutes" (use
:func:`send_batch_aws_ladder`). A lost connection is reopened for the next try. It retries
everything, 5xx included, and keeps the connection open while it waits: a wait longer than SES's
10-second idle timeout costs one more failed try.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from harness.base.clock import Clock
from harness.base.endpoint import Endpoint
from harness.runner.strategies.session import Session
from harness.runner.strategy import Claim, OutgoingMessage

AWS_LADDER_S = (5.0, 10.0, 30.0, 20 * 60.0)


@dataclass(frozen=True)
class Exponential:
    """Wait ``base_s * factor**(n-1)``, at most `cap_s`, times a random factor in [1-jitter, 1]."""

    base_s: float = 1.0
    factor: float = 2.0
    cap_s: float = 60.0
    jitter: float = 0.5

    def wait_s(self, retry: int, rng: random.Random) -> float:
        """The wait before retry number `retry` (1-based)."""
        ceiling = min(self.cap_s, self.base_s * self.factor ** (retry - 1))
        return ceiling * (1.0 - self.jitter * rng.random())


@dataclass(frozen=True)
class Ladder:
    """Fixed waits; the last one repeats."""

    steps_s: tuple[float, ...] = AWS_LADDER_S

    def wait_s(self, retry: int, rng: random.Random) -> float:
        return self.steps_s[min(retry, len(self.steps_s)) - 1]


Policy = Exponential | Ladder
EXPONENTIAL = Exponential()  # 1, 2, 4, 8 s between five tries, jittered


def send_batch(
    messages: Sequence[OutgoingMessage],
    endpoint: Endpoint,
    clock: Clock,
    *,
    policy: Policy = EXPONENTIAL,
    attempts: int = 5,
    seed: int = 0,
) -> Iterator[Claim]:
    rng = random.Random(seed)
    session = Session(endpoint, clock)
    try:
        for message in messages:
            for attempt in range(1, attempts + 1):
                result = session.send(message)
                if result.accepted or attempt == attempts:
                    yield result.claim(message)
                    break
                clock.sleep(policy.wait_s(attempt, rng))
    finally:
        session.close()


def send_batch_aws_ladder(
    messages: Sequence[OutgoingMessage], endpoint: Endpoint, clock: Clock
) -> Iterator[Claim]:
    """:func:`send_batch` with AWS's 5 s / 10 s / 30 s / 20 min ladder."""
    return send_batch(messages, endpoint, clock, policy=Ladder())
