"""Typed loading of plain dicts (from TOML, JSON or flags) into frozen dataclasses.

One place checks unknown keys, value types and the range of every number, so a scenario file, a
`--fault` flag and an HTTP `PUT /api/plan` all get the same clear error.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from harness.core.errors import PlanError

T = TypeVar("T")

_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}

DAY_S = 86_400.0
BILLION = 10**9
#: The range of every number in the schema, by key: (lowest, highest), both allowed. NaN and
#: infinity are never allowed: NaN compares false with everything, so it switched checks off
#: (`rate_per_s = NaN`: no throttle), and 1e308 seconds overflowed the clock. Lower bounds
#: with a reason of their own (0 messages a session is "too small") are also checked, with that
#: reason, by the dataclass that holds the key.
RANGES: dict[str, tuple[float, float]] = {
    # limits
    "session_limit": (1, BILLION),
    "rate_per_s": (0.0, 1e6),
    "burst": (0.0, 1e9),
    "daily_quota": (1, BILLION),
    "max_connections": (1, 1_000_000),
    "idle_timeout_s": (0.0, DAY_S),
    "max_recipients": (1, 1_000_000),
    "max_message_bytes": (1, 2**40),
    "max_connections_per_user": (1, 1_000_000),
    "tarpit_per_minute": (1, BILLION),
    "auth_per_minute": (1, BILLION),
    "idle_timeout_max_s": (0.0, DAY_S),
    # matchers
    "nth": (1, BILLION),
    "first": (1, BILLION),
    "every": (1, BILLION),
    "after": (0, BILLION),
    "probability": (0.0, 1.0),
    "session": (1, BILLION),
    "attempt": (1, BILLION),
    "attempts": (1, BILLION),
    "greylist_s": (0.0, DAY_S),
    # actions
    "code": (200, 599),
    "delay_s": (0.0, DAY_S),
    "stall_s": (0.0, DAY_S),
    "after_s": (0.0, DAY_S),  # when an accepted message's event is published
    # the plan
    "seed": (0, 2**64 - 1),
    # scenario files (harness.runner.scenario reads these)
    "latency_s": (0.0, 3600.0),
    "timeout_s": (0.0, DAY_S),
    "pause_s": (0.0, DAY_S),
    "command_time_scale": (1.0, 100_000.0),
}
#: What is wrong with a number out of range, where there is more to say than "too large".
OUT_OF_RANGE = {"code": "is not an SMTP reply code"}
#: Keys whose lowest value is itself refused: more than 0, not 0.
ABOVE_LOW = frozenset({"rate_per_s", "burst", "idle_timeout_s", "idle_timeout_max_s"})
#: A number under a key not listed above (a new field) still has a bound.
DEFAULT_RANGES: dict[type, tuple[float, float]] = {int: (-(2**63), 2**63 - 1), float: (-1e9, 1e9)}


def allowed_range(key: str, kind: type = float) -> str:
    """The range of `key` as the error messages state it: ``>= 1 and <= 1,000,000,000``."""
    low, high = _range(key, kind)
    above = ">" if _name(key) in ABOVE_LOW else ">="
    return f"{above} {_number_text(low)} and <= {_number_text(high)}"


def check_number(value: int | float, key: str, kind: type = float) -> int | float:
    """`value` if it is finite and within the range of `key` (see RANGES), else a PlanError.

    `key` may carry a parent (``faults[0].delay_s``) or an index (``verified[2]``): the range is
    that of its last part.
    """
    low, high = _range(key, kind)
    if isinstance(value, float) and not math.isfinite(value):
        problem = f"{value!r} is not a finite number"
    elif value < low or (value == low and _name(key) in ABOVE_LOW):
        problem = f"{_number_text(value)} {OUT_OF_RANGE.get(_name(key), 'is too small')}"
    elif value > high:
        problem = f"{_number_text(value)} {OUT_OF_RANGE.get(_name(key), 'is too large')}"
    else:
        return value
    raise PlanError(key, problem, allowed=allowed_range(key, kind))


def _name(key: str) -> str:
    return key.rpartition(".")[2].partition("[")[0]


def _range(key: str, kind: type) -> tuple[float, float]:
    return RANGES.get(_name(key), DEFAULT_RANGES[kind])


def _number_text(value: float) -> str:
    if isinstance(value, int) or (float(value).is_integer() and abs(value) < 1e16):
        number = int(value)
        # Digits beyond what anyone reads: say how many there are instead of printing them.
        if abs(number) < 10**30:
            return f"{number:,}"
        return f"a number of about {int(abs(number).bit_length() * math.log10(2))} digits"
    return f"{value:g}"


def coerce(value: Any, annotation: Any, key: str, *, ranged: bool = True) -> Any:
    """Check `value` against a field annotation (scalars, enums, optionals, tuples of scalars).

    Numbers must be finite; with `ranged`, also within the key's range (see RANGES). `load`
    checks the ranges after the dataclass has checked its own bounds, in its own words.
    """
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None:
            return None
        return coerce(value, options[0], key, ranged=ranged)
    if origin is tuple:
        (item_type, *_rest) = typing.get_args(annotation)
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise PlanError(key, f"{value!r} is not a list")
        return tuple(
            coerce(v, item_type, f"{key}[{i}]", ranged=ranged) for i, v in enumerate(value)
        )
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        allowed = [m.value for m in annotation]
        if isinstance(value, annotation):
            return value
        if isinstance(value, str) and value.upper() in allowed:
            return annotation(value.upper())
        raise PlanError(key, f"{value!r} is not allowed", allowed=allowed)
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if isinstance(value, int) and ranged:
                check_number(value, key, float)  # before float(): 10**400 does not fit one
            try:
                number = float(value)
            except OverflowError:
                check_number(value, key, float)  # too large: says so, with the range
                raise
            if ranged or not math.isfinite(number):
                check_number(number, key, float)
            return number
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return check_number(value, key, int) if ranged else value
    elif annotation in (bool, str):
        if isinstance(value, annotation):
            return value
    else:  # pragma: no cover - a schema bug, not user input
        raise TypeError(f"unsupported annotation {annotation!r} for {key}")
    allowed = allowed_range(key, annotation) if annotation in (int, float) else None
    raise PlanError(key, f"{value!r} is not {_TYPE_NAMES[annotation]}", allowed=allowed)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def load(cls: type[T], data: Mapping[str, Any], *, skip: tuple[str, ...] = ()) -> T:
    """Build dataclass `cls` from `data`, refusing unknown keys and ill-typed values."""
    if not isinstance(data, Mapping):
        raise PlanError("", f"expected a table of keys, got {data!r}")
    hints = _hints(cls)
    fields = {f.name for f in dataclasses.fields(cls) if f.init and f.name not in skip}
    unknown = sorted(set(data) - fields, key=str)
    if unknown:
        raise PlanError(unknown[0], "unknown key", allowed=sorted(fields))
    required = [
        f.name
        for f in dataclasses.fields(cls)
        if f.init
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
        and f.name not in skip
    ]
    missing = [name for name in required if name not in data]
    if missing:
        raise PlanError(missing[0], "is required", allowed=_describe(hints[missing[0]]))
    kwargs = {name: coerce(value, hints[name], name, ranged=False) for name, value in data.items()}
    try:
        built = cls(**kwargs)
    except PlanError:
        raise
    except (TypeError, ValueError) as error:
        raise PlanError("", str(error)) from None
    for name, value in kwargs.items():
        for index, number in enumerate(value if isinstance(value, tuple) else (value,)):
            if isinstance(number, int | float) and not isinstance(number, bool):
                key = f"{name}[{index}]" if isinstance(value, tuple) else name
                check_number(number, key, type(number))
    return built


def _describe(annotation: Any) -> str:
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return ", ".join(m.value for m in annotation)
    return _TYPE_NAMES.get(annotation, str(annotation))


def dump(obj: Any) -> dict[str, Any]:
    """The dict form of a dataclass, without keys left at their default (TOML has no null)."""
    out: dict[str, Any] = {}
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        default = field.default
        if field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        if value == default or value is None:
            continue
        if isinstance(value, enum.Enum):
            value = value.value
        elif isinstance(value, tuple):
            value = list(value)
        out[field.name] = value
    return out
