"""Typed loading of plain dicts (from TOML, JSON or flags) into frozen dataclasses.

One place checks unknown keys and value types, so a scenario file, a `--fault` flag and an HTTP
`PUT /api/plan` all get the same clear error.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from harness.core.errors import PlanError

T = TypeVar("T")

_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def coerce(value: Any, annotation: Any, key: str) -> Any:
    """Check `value` against a field annotation (scalars, enums, optionals, tuples of scalars)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None:
            return None
        return coerce(value, options[0], key)
    if origin is tuple:
        (item_type, *_rest) = typing.get_args(annotation)
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise PlanError(key, f"{value!r} is not a list")
        return tuple(coerce(v, item_type, f"{key}[{i}]") for i, v in enumerate(value))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        allowed = [m.value for m in annotation]
        if isinstance(value, annotation):
            return value
        if isinstance(value, str) and value.upper() in allowed:
            return annotation(value.upper())
        raise PlanError(key, f"{value!r} is not allowed", allowed=allowed)
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif annotation in (bool, str):
        if isinstance(value, annotation):
            return value
    else:  # pragma: no cover - a schema bug, not user input
        raise TypeError(f"unsupported annotation {annotation!r} for {key}")
    raise PlanError(key, f"{value!r} is not {_TYPE_NAMES[annotation]}")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def load(cls: type[T], data: Mapping[str, Any], *, skip: tuple[str, ...] = ()) -> T:
    """Build dataclass `cls` from `data`, refusing unknown keys and ill-typed values."""
    if not isinstance(data, Mapping):
        raise PlanError("", f"expected a table of keys, got {data!r}")
    hints = _hints(cls)
    fields = {f.name for f in dataclasses.fields(cls) if f.init and f.name not in skip}
    unknown = sorted(set(data) - fields)
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
    kwargs = {name: coerce(value, hints[name], name) for name, value in data.items()}
    try:
        return cls(**kwargs)
    except PlanError:
        raise
    except (TypeError, ValueError) as error:
        raise PlanError("", str(error)) from None


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
