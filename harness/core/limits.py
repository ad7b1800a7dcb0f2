"""SES's account limits as pure objects: time goes in as an argument, nothing reads a clock."""

from __future__ import annotations

from collections import deque

DAY_S = 24 * 60 * 60.0


class TokenBucket:
    """Send-rate limit counted per recipient, as SES counts it.

    The bucket holds up to `burst` tokens and refills at `rate_per_s`. A send needs one token to
    start and then takes one per recipient, so a big message may leave the bucket in debt: SES's
    own example is a 5-recipient message at 1/s, after which "for the next five seconds ...
    Amazon will return errors for all send attempts".

    >>> bucket = TokenBucket(rate_per_s=1.0, burst=1.0, now=0.0)
    >>> bucket.try_take(5, now=0.0), bucket.try_take(1, now=4.5), bucket.try_take(1, now=5.0)
    (True, False, True)
    """

    def __init__(self, rate_per_s: float, burst: float | None = None, *, now: float) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst if burst is not None else rate_per_s
        self._tokens = self.burst
        self._at = now

    def _refill(self, now: float) -> None:
        if now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate_per_s)
            self._at = now

    def try_take(self, count: int, *, now: float) -> bool:
        self._refill(now)
        # A little slack absorbs float error in refills (0.1 + 0.2 style), never a whole token.
        if self._tokens < 1.0 - 1e-9:
            return False
        self._tokens -= count
        return True


class RollingQuota:
    """Daily quota over a rolling 24-hour window, counted per recipient.

    A send that would take the last 24 hours over `limit` is refused, and costs nothing.

    >>> quota = RollingQuota(limit=2)
    >>> quota.try_take(2, now=0.0), quota.try_take(1, now=100.0), quota.try_take(1, now=86_400.0)
    (True, False, True)
    """

    def __init__(self, limit: int, window_s: float = DAY_S) -> None:
        self.limit = limit
        self.window_s = window_s
        self._sends: deque[tuple[float, int]] = deque()
        self._used = 0

    def used(self, *, now: float) -> int:
        while self._sends and self._sends[0][0] <= now - self.window_s:
            self._used -= self._sends.popleft()[1]
        return self._used

    def fits(self, count: int, *, now: float) -> bool:
        return self.used(now=now) + count <= self.limit

    def try_take(self, count: int, *, now: float) -> bool:
        if not self.fits(count, now=now):
            return False
        self._sends.append((now, count))
        self._used += count
        return True
