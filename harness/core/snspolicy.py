"""SNS's delivery policy for an HTTP/S subscriber, as data: when each retry of a failed post
is due, and what counts as failed.

Documented (AWS SNS DG, "Amazon SNS message delivery retries", "Creating an HTTP/S delivery
policy", "Set the delivery policy for the Amazon SNS subscription", "Prepare your HTTP/S
endpoint to receive Amazon SNS messages"):

- the default: after a failed first attempt, up to three retries 20 seconds apart
  (``numRetries`` 3, ``minDelayTarget`` = ``maxDelayTarget`` = 20, ``backoffFunction`` linear);
- a policy's four phases, in order: ``numNoDelayRetries`` at once, ``numMinDelayRetries``
  ``minDelayTarget`` apart, the backoff phase (the retries left over) from ``minDelayTarget``
  to ``maxDelayTarget`` by ``backoffFunction``, ``numMaxDelayRetries`` ``maxDelayTarget`` apart;
  ``numRetries`` at most 100, and the policy's retries within 3,600 seconds in all;
- a post fails when the endpoint does not answer within 15 seconds or answers a status outside
  200-4xx (a 4xx is not retried); when the policy is exhausted SNS discards the message, unless
  the subscription has a dead-letter queue (the fake has none: it records the post given up).

Inferred: the backoff functions' curves (AWS shows them in a graph, not as formulas; here
linear, arithmetic: quadratic, geometric: a constant ratio, exponential: doubling, each from
the minimum to the maximum delay). SNS adds jitter to its delays (documented); the fake does
not, so the same plan gives the same times.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.core.errors import PlanError

#: SNS's hard limit on a policy's retry time, in seconds (documented).
MAX_RETRY_TIME_S = 3600.0
BACKOFF_FUNCTIONS = ("linear", "arithmetic", "geometric", "exponential")
#: SNS's policy keys (healthyRetryPolicy) and the fields they set.
_SNS_KEYS = {
    "numRetries": "retries",
    "numNoDelayRetries": "no_delay_retries",
    "numMinDelayRetries": "min_delay_retries",
    "numMaxDelayRetries": "max_delay_retries",
    "minDelayTarget": "min_delay_s",
    "maxDelayTarget": "max_delay_s",
    "backoffFunction": "backoff",
}


@dataclass(frozen=True)
class DeliveryPolicy:
    """SNS's retry policy for HTTP/S; the default is SNS's own.

    `retry_delay_s` is a shortcut for ``min_delay_s = max_delay_s``: every retry that far apart.
    `timeout_s` is how long a post may wait for its answer (SNS: 15 s), in real seconds.

    >>> DeliveryPolicy().delays_s()
    (20.0, 20.0, 20.0)
    >>> DeliveryPolicy(retries=4, no_delay_retries=1, min_delay_s=2, max_delay_s=8,
    ...                backoff="exponential").delays_s()
    (0.0, 2.0, 4.0, 8.0)
    """

    retries: int = 3
    retry_delay_s: float | None = None
    timeout_s: float = 15.0
    no_delay_retries: int = 0
    min_delay_retries: int = 0
    max_delay_retries: int = 0
    min_delay_s: float = 20.0
    max_delay_s: float = 20.0
    backoff: str = "linear"

    def __post_init__(self) -> None:
        if self.retry_delay_s is not None:
            if not 0 <= self.retry_delay_s <= MAX_RETRY_TIME_S:
                raise PlanError(
                    "retry_delay_s", f"{self.retry_delay_s} is out of range", allowed="0..3600"
                )
            object.__setattr__(self, "min_delay_s", float(self.retry_delay_s))
            object.__setattr__(self, "max_delay_s", float(self.retry_delay_s))
        if not 0 <= self.retries <= 100:
            raise PlanError("retries", f"{self.retries} is out of range", allowed="0..100")
        phases = self.no_delay_retries + self.min_delay_retries + self.max_delay_retries
        if min(self.no_delay_retries, self.min_delay_retries, self.max_delay_retries) < 0:
            raise PlanError("retries", "a phase's retries are negative", allowed=">= 0")
        if phases > self.retries:
            raise PlanError(
                "retries",
                f"{self.retries} is fewer than the phases' {phases}",
                allowed="numRetries >= numNoDelayRetries + numMinDelayRetries + numMaxDelayRetries",
            )
        if not 0 <= self.min_delay_s <= self.max_delay_s <= MAX_RETRY_TIME_S:
            raise PlanError(
                "min_delay_s",
                f"{self.min_delay_s}..{self.max_delay_s} is not a range of delays",
                allowed="0 <= min_delay_s <= max_delay_s <= 3600",
            )
        if not 0 < self.timeout_s <= MAX_RETRY_TIME_S:
            raise PlanError("timeout_s", f"{self.timeout_s} is out of range", allowed="(0, 3600]")
        if self.backoff not in BACKOFF_FUNCTIONS:
            raise PlanError(
                "backoff", f"{self.backoff!r} is not a backoff function", allowed=BACKOFF_FUNCTIONS
            )
        if sum(self.delays_s()) > MAX_RETRY_TIME_S:
            raise PlanError(
                "retries", f"{sum(self.delays_s()):g} s of retries", allowed="<= 3600 s in all"
            )

    @classmethod
    def from_sns(cls, policy: Mapping[str, Any], **extra: Any) -> DeliveryPolicy:
        """From SNS's own JSON: ``{"healthyRetryPolicy": {"numRetries": 5, ...}}`` or the
        inner table; `extra` sets the fake's own fields (``timeout_s``)."""
        inner = policy.get("healthyRetryPolicy", policy)
        if not isinstance(inner, Mapping):
            raise PlanError("healthyRetryPolicy", "is a table", allowed=list(_SNS_KEYS))
        unknown = sorted(set(inner) - set(_SNS_KEYS), key=str)
        if unknown:
            raise PlanError(unknown[0], "unknown key", allowed=list(_SNS_KEYS))
        fields: dict[str, Any] = {}
        for key, value in inner.items():
            name = _SNS_KEYS[key]
            if name == "backoff":
                fields[name] = str(value).lower()
            elif isinstance(value, bool) or not isinstance(value, int | float):
                raise PlanError(
                    key, f"{value!r} is not a number", allowed="whole seconds or counts"
                )
            elif not name.endswith("_s") and value != int(value):
                raise PlanError(key, f"{value!r} is not a whole number", allowed="0..100")
            else:
                fields[name] = float(value) if name.endswith("_s") else int(value)
        try:
            return cls(**fields, **extra)
        except PlanError as error:  # named as the user wrote it: SNS's key
            sns_key = {v: k for k, v in _SNS_KEYS.items()}.get(error.key, error.key)
            raise PlanError(sns_key, error.problem, allowed=error.allowed) from None

    def delays_s(self) -> tuple[float, ...]:
        """The wait before each retry, in order (``len`` is `retries`)."""
        lo, hi = self.min_delay_s, self.max_delay_s
        backoff = self.retries - self.no_delay_retries - self.min_delay_retries
        backoff -= self.max_delay_retries
        curve = tuple(_backoff(self.backoff, lo, hi, i, backoff) for i in range(1, backoff + 1))
        return (
            (0.0,) * self.no_delay_retries
            + (lo,) * self.min_delay_retries
            + curve
            + (hi,) * self.max_delay_retries
        )

    def delay_before(self, attempt: int) -> float:
        """The wait before `attempt` (2 for the first retry)."""
        return self.delays_s()[attempt - 2]


def _backoff(function: str, lo: float, hi: float, i: int, n: int) -> float:
    """The i-th of n backoff delays, from about `lo` to `hi` (inferred curves)."""
    if n == 1 or lo == hi:
        return float(hi if n == 1 else lo)
    f = (i - 1) / (n - 1)
    if function == "arithmetic":
        return lo + (hi - lo) * f * f
    if function == "geometric" and lo > 0:
        return lo * (hi / lo) ** f
    if function == "exponential":
        return float(min(hi, max(lo, 1.0) * 2.0 ** (i - 1)))
    return lo + (hi - lo) * f


#: Whether SNS counts an HTTP answer as delivered: 200-4xx is; None (no answer in time, refused,
#: cut) and 5xx are not (documented, "Prepare your HTTP/S endpoint").
def delivered(status: int | None) -> bool:
    return status is not None and 200 <= status < 500
