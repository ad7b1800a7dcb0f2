"""SES's account limits as pure objects: time goes in as an argument, nothing reads a clock."""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.core import schema
from harness.core.errors import PlanError

DAY_S = 24 * 60 * 60.0
MINUTE_S = 60.0
#: Where the rate and the daily quota may refuse (Limits.quota_stage).
QUOTA_STAGES = ("EOM", "DATA", "MAIL", "AUTH")


@dataclass(frozen=True)
class Limits:
    """SES's stateful limits. None switches a limit off. Profiles give the defaults."""

    session_limit: int | None = None  # messages accepted per connection, then 421 at MAIL
    rate_per_s: float | None = None  # recipients per second (token bucket)
    burst: float | None = None  # bucket size; default: one second's worth
    daily_quota: int | None = None  # recipients per rolling 24 h
    max_connections: int | None = None  # concurrent connections; more get 421 at connect
    idle_timeout_s: float | None = None  # unprompted 451 and close after this much silence
    max_recipients: int | None = None  # per message
    max_message_bytes: int | None = None  # per message, as received
    require_auth: bool = False  # MAIL before AUTH gets 530
    verified: tuple[str, ...] | None = None  # sandbox: only these addresses or @domains
    # The SES API's v2 throttling error: what applications see, or the developer guide's name
    # (see harness.core.api_errors for the evidence of each).
    api_throttle: str = "TooManyRequestsException"
    # Beyond SES (harness.core.providers): limits that count per authenticated user, delay
    # instead of refusing, or fire at AUTH.
    per_user: bool = False  # rate, daily quota and tarpit counted per AUTH user, not account
    max_connections_per_user: int | None = None  # sessions of one user at once; past: refused
    tarpit_per_minute: int | None = None  # messages a rolling minute; more are delayed, not refused
    auth_per_minute: int | None = None  # AUTH attempts a rolling minute; more are refused
    # Where rate_per_s and daily_quota refuse: "EOM" (SES: at end of data), "DATA" (at the
    # DATA command), "MAIL" (at MAIL FROM, one message), "AUTH" (the quota only: no login once
    # it is spent). Counted at end of data, per recipient, wherever they refuse.
    quota_stage: str = "EOM"
    # Idle timeout drawn per session between idle_timeout_s and this (seeded): SES's own
    # documents say about 10 s, a 2026 report measured 30-90 s.
    idle_timeout_max_s: float | None = None

    def __post_init__(self) -> None:
        for name in (
            "session_limit",
            "daily_quota",
            "max_connections",
            "max_recipients",
            "max_message_bytes",
            "max_connections_per_user",
            "tarpit_per_minute",
            "auth_per_minute",
        ):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise PlanError(name, f"{value} is too small", allowed=">= 1, or leave unset")
        if self.api_throttle not in ("TooManyRequestsException", "ThrottlingException"):
            raise PlanError(
                "api_throttle",
                f"{self.api_throttle!r} is not a throttling style",
                allowed="TooManyRequestsException, ThrottlingException",
            )
        if self.quota_stage not in QUOTA_STAGES:
            raise PlanError(
                "quota_stage", f"{self.quota_stage!r} is not a stage", allowed=QUOTA_STAGES
            )
        low, high = self.idle_timeout_s, self.idle_timeout_max_s
        if low is not None and high is not None and high < low:  # no timeout: no range
            raise PlanError(
                "idle_timeout_max_s",
                f"{high:g} is below idle_timeout_s ({low:g}): it is the top of their range",
                allowed=">= idle_timeout_s",
            )
        for name in ("rate_per_s", "burst", "idle_timeout_s", "idle_timeout_max_s"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise PlanError(name, f"{value} must be positive", allowed="> 0, or leave unset")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Limits:
        return schema.load(cls, data)

    def first_met(self) -> tuple[str, int] | None:
        """The limit a fast sender meets first, and the message it refuses: one-recipient
        messages on one connection, as fast as the server answers.

        The rate's bucket holds a second's worth, so with SES's settings the 15th message in a
        second is throttled long before the 351st meets the session cap:

        >>> Limits(session_limit=350, rate_per_s=14.0, daily_quota=50_000).first_met()
        ('rate_per_s', 15)
        >>> Limits(session_limit=350, daily_quota=50_000).first_met()
        ('session_limit', 351)
        """
        refused = {
            "rate_per_s": None if self.rate_per_s is None else int(self.burst or self.rate_per_s),
            "session_limit": self.session_limit,
            "daily_quota": self.daily_quota,
        }
        met = [(n + 1, name) for name, n in refused.items() if n is not None]
        return None if not met else (min(met)[1], min(met)[0])

    def updated(self, **overrides: Any) -> Limits:
        """A copy with `overrides` applied, validated as user input."""
        names = [f.name for f in dataclasses.fields(Limits)]
        unknown = sorted(set(overrides) - set(names), key=str)
        if unknown:  # before the Nones are set aside: `{"typo": None}` is a typo too
            raise PlanError(unknown[0], "unknown key", allowed=sorted(names))
        merged = {**schema.dump(self), **overrides}
        merged = {k: v for k, v in merged.items() if v is not None}
        base = schema.load(Limits, merged)
        # Explicit None switches a limit off.
        return dataclasses.replace(base, **{k: None for k, v in overrides.items() if v is None})


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
        #: Seconds the last check's time would have had to move to be decided the other way.
        self.margin_s = float("inf")

    def _refill(self, now: float) -> None:
        if now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate_per_s)
            self._at = now

    def try_take(self, count: int, *, now: float) -> bool:
        self._refill(now)
        self.margin_s = abs(self._tokens - 1.0) / self.rate_per_s
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
        self.take(count, now=now)
        return True

    def take(self, count: int, *, now: float) -> None:
        """Count `count` sends, whether or not they fit (they were let through elsewhere)."""
        self.used(now=now)
        self._sends.append((now, count))
        self._used += count


def is_verified(address: str, verified: Iterable[str]) -> bool:
    """Whether `address` is one of the `verified` identities (an address, or "@domain")."""
    address = address.lower()
    return any(
        address.endswith(v.lower()) if v.startswith("@") else address == v.lower() for v in verified
    )


class Window:
    """Events in a rolling window: at most `limit` in any `window_s`.

    As a refusal (`try_take`), the next event past the limit is refused and costs nothing. As a
    tarpit (`slot`), it is let through late: at the first moment the window has room, which is
    when it is booked, so concurrent senders queue in order of arrival.

    >>> pit = Window(2, 60.0)
    >>> pit.slot(now=0.0), pit.slot(now=1.0), pit.slot(now=2.0), pit.slot(now=3.0)
    (0.0, 1.0, 60.0, 61.0)
    >>> logins = Window(1, 60.0)
    >>> logins.try_take(now=0.0), logins.try_take(now=59.0), logins.try_take(now=60.0)
    (True, False, True)
    """

    def __init__(self, limit: int, window_s: float = MINUTE_S) -> None:
        self.limit = limit
        self.window_s = window_s
        self._times: deque[float] = deque(maxlen=limit)

    def slot(self, *, now: float) -> float:
        """When the next event may happen (now, or later), booked."""
        at = now if len(self._times) < self.limit else max(now, self._times[0] + self.window_s)
        self._times.append(at)
        return at

    def try_take(self, *, now: float) -> bool:
        if len(self._times) == self.limit and self._times[0] > now - self.window_s:
            return False
        self._times.append(now)
        return True
