"""The counting limits of an account, or of each authenticated user: rate, quota, tarpit.

SES counts its rate and daily quota per account; Microsoft 365 and Gmail count per mailbox
(`Limits.per_user`). A :class:`MeterBook` holds one :class:`Meters` per scope and keeps each
meter across plan changes that leave its limit alone.
"""

from __future__ import annotations

from harness.core.limits import Limits, RollingQuota, TokenBucket, Window

ACCOUNT = ""  # the scope of everything when limits are not per user, and of the SES API


class Meters:
    """One scope's rate bucket, rolling quota and tarpit (None where the limit is off)."""

    def __init__(self, limits: Limits, now: float) -> None:
        self.bucket: TokenBucket | None = None
        self.quota: RollingQuota | None = None
        self.tarpit: Window | None = None
        self.update(limits, None, now)

    def update(self, limits: Limits, old: Limits | None, now: float) -> None:
        """Start afresh each meter whose limit differs from `old` (all of them without one)."""
        if old is None or (old.rate_per_s, old.burst) != (limits.rate_per_s, limits.burst):
            self.bucket = (
                TokenBucket(limits.rate_per_s, limits.burst, now=now) if limits.rate_per_s else None
            )
        if old is None or old.daily_quota != limits.daily_quota:
            self.quota = RollingQuota(limits.daily_quota) if limits.daily_quota else None
        if old is None or old.tarpit_per_minute != limits.tarpit_per_minute:
            self.tarpit = Window(limits.tarpit_per_minute) if limits.tarpit_per_minute else None

    def charge(self, count: int, now: float) -> None:
        """Take `count` recipients from the rate and the quota, whether they fit or not (a
        message accepted by fiat, or one whose limits were checked at an earlier stage)."""
        if self.bucket is not None:
            self.bucket.try_take(count, now=now)
        if self.quota is not None:
            self.quota.take(count, now=now)


class MeterBook:
    """Meters by scope: the account's, or one per authenticated user."""

    def __init__(self, limits: Limits, now: float) -> None:
        self.limits = limits
        self._scopes: dict[str, Meters] = {}
        self._now = now

    def of(self, user: str | None) -> Meters:
        """The meters that count `user`'s sends (the account's unless limits are per user)."""
        scope = (user or ACCOUNT) if self.limits.per_user else ACCOUNT
        meters = self._scopes.get(scope)
        if meters is None:
            meters = self._scopes[scope] = Meters(self.limits, self._now)
        return meters

    def update(self, limits: Limits, now: float) -> None:
        old, self.limits, self._now = self.limits, limits, now
        if old.per_user != limits.per_user:
            self._scopes.clear()
        for meters in self._scopes.values():
            meters.update(limits, old, now)
