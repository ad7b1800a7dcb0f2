"""Finding a strategy by name: a built-in, ``cmd:COMMAND``, ``module:attr`` or an entry point.

Packages can publish strategies under the entry point group ``ses_harness.strategies``
(``name = "module:attr"``) and refer to them by name.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys

from harness.core.errors import PlanError
from harness.runner.command.strategy import CommandStrategy
from harness.runner.strategies import BUILTINS, UNAVAILABLE
from harness.runner.strategy import Strategy

ENTRY_POINT_GROUP = "ses_harness.strategies"


def resolve_strategy(spec: str) -> tuple[str, Strategy]:
    """Find a strategy by built-in name, ``cmd:COMMAND``, ``module:attr``, or entry point name.

    Returns ``(name, callable)``; the name is what reports show. ``module:attr`` is imported with
    the current directory on the import path, as ``python -m`` would.

    >>> resolve_strategy("robust")[0]
    'robust'
    """
    if spec in BUILTINS:
        return spec, BUILTINS[spec].send_batch
    if spec in UNAVAILABLE:  # a built-in whose extra is not installed (sdk-* without boto3)
        raise PlanError("", f"strategy {spec!r} {UNAVAILABLE[spec]}")
    if spec.startswith(("cmd:", "cmd[")):  # a client process: harness.runner.command
        return spec, CommandStrategy.from_spec(spec)
    if ":" in spec:
        return spec, _import_attr(spec)
    entry = _entry_points().get(spec)
    if entry is not None:
        return spec, _checked(spec, entry.load())
    installed = sorted(_entry_points())
    allowed = [*BUILTINS, "module:attr", "cmd:COMMAND", *installed]
    raise PlanError("", f"{spec!r} is not a known strategy", allowed=allowed)


def name_of(strategy: Strategy) -> str:
    """The name of a strategy given as a callable: ``module:qualname``, as --strategy takes it."""
    module = getattr(strategy, "__module__", None) or "?"
    qualname = getattr(strategy, "__qualname__", None) or type(strategy).__qualname__
    return f"{module}:{qualname}"


def known_strategy(spec: str) -> bool:
    """True when `spec` could name a strategy, without importing user code."""
    return spec in BUILTINS or spec in UNAVAILABLE or ":" in spec or spec in _entry_points()


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {e.name: e for e in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _import_attr(spec: str) -> Strategy:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise PlanError("", f"strategy {spec!r} is not of the form module:attr")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        target: object = importlib.import_module(module_name)
    except ImportError as error:
        raise PlanError("", f"strategy {spec!r}: cannot import {module_name!r}: {error}") from None
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            problem = f"strategy {spec!r}: module {module_name!r} has no {attr!r}"
            raise PlanError("", problem) from None
    return _checked(spec, target)


def _checked(spec: str, target: object) -> Strategy:
    if not callable(target):
        raise PlanError(
            "", f"strategy {spec!r} is not callable", allowed="fn(messages, endpoint, clock)"
        )
    return target  # type: ignore[return-value]
