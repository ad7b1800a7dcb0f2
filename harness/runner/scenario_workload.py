"""A scenario file's ``[workload]`` table, read and checked (`harness.runner.scenario`): each
bad value a :class:`harness.PlanError` naming the key and what is allowed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.core import schema
from harness.core.errors import PlanError
from harness.runner.workload import WorkloadSpec

# Upper bounds keep a typo from building a batch that does not fit in memory.
MAX_MESSAGES = 100_000
MAX_RECIPIENTS = 1_000  # SES takes 50; more lets a scenario test that cap
MAX_BYTES = 64 * 1024 * 1024  # SES takes 40 MB; more lets a scenario test that cap
_WORKLOAD_KEYS = (
    "count",
    "seed",
    "recipients",
    "body_bytes",
    "attachments",
    "attachment_bytes",
    "unicode",
    "sender",
    "domains",
    "burst_size",
    "pause_s",
    "mailings",
    "bouncing",
    "complaining",
)


def _workload(data: Mapping[str, Any]) -> WorkloadSpec:
    unknown = sorted(set(data) - set(_WORKLOAD_KEYS))
    if unknown:
        raise PlanError(f"workload.{unknown[0]}", "unknown key", allowed=_WORKLOAD_KEYS)
    if "count" not in data:
        raise PlanError("workload.count", "is required", allowed="an integer >= 1")
    defaults = WorkloadSpec(count=1)
    burst = data.get("burst_size")
    return WorkloadSpec(
        count=_integer(data["count"], "workload.count", minimum=1, maximum=MAX_MESSAGES),
        seed=_integer(data.get("seed", defaults.seed), "workload.seed", minimum=0),
        recipients=_range(
            data.get("recipients", defaults.recipients), "workload.recipients", 1, MAX_RECIPIENTS
        ),
        body_bytes=_range(
            data.get("body_bytes", defaults.body_bytes), "workload.body_bytes", 1, MAX_BYTES
        ),
        attachments=_share(data.get("attachments", defaults.attachments), "workload.attachments"),
        attachment_bytes=_range(
            data.get("attachment_bytes", defaults.attachment_bytes),
            "workload.attachment_bytes",
            1,
            MAX_BYTES,
        ),
        unicode=_share(data.get("unicode", defaults.unicode), "workload.unicode"),
        sender=_address(data.get("sender", defaults.sender), "workload.sender"),
        domains=_domains(data.get("domains", dict(defaults.domains))),
        burst_size=None
        if burst is None
        else _integer(burst, "workload.burst_size", minimum=1, maximum=MAX_MESSAGES),
        pause_s=_number(data.get("pause_s", 0.0), "workload.pause_s", minimum=0.0),
        mailings=_integer(data.get("mailings", 1), "workload.mailings", minimum=1, maximum=100),
        bouncing=_share(data.get("bouncing", 0.0), "workload.bouncing"),
        complaining=_share(data.get("complaining", 0.0), "workload.complaining"),
    )


def _integer(value: Any, key: str, *, minimum: int, maximum: int | None = None) -> int:
    allowed = f">= {minimum}" if maximum is None else f">= {minimum} and <= {maximum:,}"
    if not isinstance(value, int) or isinstance(value, bool):
        raise PlanError(key, f"{value!r} is not an integer", allowed=allowed)
    if value < minimum:
        raise PlanError(key, f"{value} is too small", allowed=allowed)
    if maximum is not None and value > maximum:
        raise PlanError(key, f"{value:,} is too large", allowed=allowed)
    return value


def _number(value: Any, key: str, *, minimum: float) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise PlanError(key, f"{value!r} is not a number", allowed=f">= {minimum}")
    schema.check_number(value, key)  # finite, and within the key's range (schema.RANGES)
    if value < minimum:
        raise PlanError(key, f"{value} is too small", allowed=f">= {minimum}")
    return float(value)


def _share(value: Any, key: str) -> float:
    share = _number(value, key, minimum=0.0)
    if share > 1.0:
        raise PlanError(key, f"{value} is more than 1", allowed="a share from 0.0 to 1.0")
    return share


def _range(value: Any, key: str, minimum: int, maximum: int) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise PlanError(key, f"{value!r} is not a range", allowed="an integer or [min, max]")
    low, high = value
    if low < minimum or high < low or high > maximum:
        raise PlanError(
            key, f"{value!r} is out of range", allowed=f"{minimum} <= min <= max <= {maximum:,}"
        )
    return (low, high)


def _address(value: Any, key: str) -> str:
    address = _string(value, key)
    if address.count("@") != 1 or not all(address.split("@")):
        raise PlanError(key, f"{address!r} is not an email address", allowed="local@domain")
    return address


def _domains(value: Any) -> tuple[tuple[str, float], ...]:
    key = "workload.domains"
    if isinstance(value, list) and value:
        for domain in value:  # before they become keys: a table or a list is not hashable
            if not isinstance(domain, str):
                raise PlanError(key, f"{domain!r} is not a domain", allowed="e.g. example.com")
        value = dict.fromkeys(value, 1.0)
    if not isinstance(value, Mapping) or not value:
        raise PlanError(
            key, f"{value!r} is not a list of domains", allowed='["a.com", ...] or {"a.com" = 9}'
        )
    pairs = []
    for domain, weight in value.items():
        if not isinstance(domain, str) or "@" in domain or "." not in domain:
            raise PlanError(key, f"{domain!r} is not a domain", allowed="e.g. example.com")
        pairs.append((domain, _number(weight, f"{key}.{domain}", minimum=0.0)))
    if not any(weight for _, weight in pairs):
        raise PlanError(key, "all weights are 0", allowed="at least one weight > 0")
    return tuple(pairs)


def _string(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise PlanError(key, f"{value!r} is not a string")
    return value
