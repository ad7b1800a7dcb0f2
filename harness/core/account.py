"""What the SES API tells an account about its sending limits (GetSendQuota, GetAccount)."""

from __future__ import annotations

from harness.core.limits import Limits

#: MaxSendRate reported when neither the plan nor its profile has a rate (INFER: the example
#: production account's rate of the ses profile; fakecloud's GetAccount reports it too).
UNLIMITED_RATE_REPORTED = 14.0


def send_quota(limits: Limits, profile: Limits, used: int) -> tuple[float, float, float]:
    """(max 24-hour send, max send rate, sent in the last 24 hours) under `limits`.

    A daily quota switched off is -1, "an unlimited quota" (DOC: GetSendQuota's and GetAccount's
    SendQuota). The rate has no such value: none is documented, and every account has one (the
    sandbox's 1/s in the AWS CLI's get-send-quota example). So a rate switched off reports the
    `profile`'s, else UNLIMITED_RATE_REPORTED: clients that pace themselves on it (django-ses's
    auto-throttle divides by it) keep working.

    >>> send_quota(Limits(rate_per_s=None, daily_quota=None), Limits(rate_per_s=1.0), 3)
    (-1.0, 1.0, 3.0)
    """
    quota = limits.daily_quota
    rate = limits.rate_per_s or profile.rate_per_s or UNLIMITED_RATE_REPORTED
    return (float(quota) if quota is not None else -1.0, float(rate), float(used))
