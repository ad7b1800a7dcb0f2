"""The checks a message meets at end of data (or an API send), as pure functions of the limits
and the meters they count on: size, recipients, verified identities, rate, quota, tarpit."""

from __future__ import annotations

from harness.core.decision import Decision, Fired, Outcome
from harness.core.limits import Limits, is_verified
from harness.core.margins import Margins
from harness.core.meters import Meters
from harness.core.rules import chance

#: The profile's reply line (a `Replies` field) for each limit a message can break.
REPLY_LINES = {
    "max_message_bytes": "too_large",
    "max_recipients": "too_many_recipients",
    "verified": "not_verified",
    "daily_quota": "daily_quota",
    "rate_per_s": "rate_exceeded",
}


def content_limit(
    limits: Limits,
    meters: Meters,
    recipients: tuple[str, ...],
    size: int,
    now: float,
    max_bytes: int | None,
    identities: tuple[str, ...] | None = None,
    *,
    smtp: bool = False,
    margins: Margins | None = None,
) -> tuple[str, str] | None:
    """The limit a message breaks (its field name, and the identities that failed), or None
    after taking its recipients from the rate bucket and the daily quota. Over SMTP these two
    refuse here unless the profile checks them at an earlier stage (`quota_stage`); the quota
    counts the message here all the same."""
    if max_bytes is not None and size > max_bytes:
        return "max_message_bytes", ""
    if limits.max_recipients is not None and len(recipients) > limits.max_recipients:
        return "max_recipients", ""
    if limits.verified is not None:
        checked = recipients if identities is None else identities
        failed = [r for r in checked if not is_verified(r, limits.verified)]
        if failed:
            return "verified", ", ".join(dict.fromkeys(failed))
    count = len(recipients)
    if smtp and limits.quota_stage != "EOM":
        # At AUTH only the quota was checked: the rate is still this stage's.
        rate = limits.quota_stage == "AUTH"
        refused = spent(meters, count, now, rate=rate, quota=False, margins=margins)
    else:
        refused = spent(meters, count, now, rate=True, margins=margins)
    if refused is not None:
        return refused, ""
    if meters.quota is not None:
        meters.quota.take(count, now=now)
    return None


def spent(
    meters: Meters,
    count: int,
    now: float,
    *,
    rate: bool,
    quota: bool = True,
    margins: Margins | None = None,
) -> str | None:
    """The meter `count` more recipients would break ("daily_quota", "rate_per_s"), or None
    after taking them from the rate bucket (the quota is taken when a message is accepted).
    `margins` hears how near the bucket came to deciding otherwise."""
    if quota and meters.quota is not None and not meters.quota.fits(count, now=now):
        return "daily_quota"
    if rate and meters.bucket is not None:
        taken = meters.bucket.try_take(count, now=now)
        if margins is not None:
            margins.note(meters.bucket.margin_s, "limit:rate_per_s", at_s=now)
        if not taken:
            return "rate_per_s"
    return None


def tarpit(meters: Meters, now: float) -> Decision:
    """Accept, after waiting for the tarpit's next free slot: a delay, not a refusal.

    Microsoft 365 carries a mailbox's messages past 30 a minute "over to the following
    minutes"; the server waits on its own clock (a virtual clock costs no wall time).
    """
    if meters.tarpit is None:
        return Decision(Outcome.ACCEPT)
    wait_s = meters.tarpit.slot(now=now) - now
    if wait_s <= 0:
        return Decision(Outcome.ACCEPT)
    fired = (Fired("limit", "tarpit_per_minute", "delay"),)
    return Decision(Outcome.ACCEPT, delay_s=wait_s, fired=fired)


def idle_timeout_s(limits: Limits, seed: int, session: int) -> float | None:
    """How long `session` may be silent: `idle_timeout_s`, or drawn (seeded, per session)
    between it and `idle_timeout_max_s` (SES documents about 10 s; users measured 30-90)."""
    low, high = limits.idle_timeout_s, limits.idle_timeout_max_s
    if low is None or high is None:
        return low
    return low + (high - low) * chance(seed, "idle", session)
