"""The results dict, version 1: its shape as data, and one validator that names the bad key.

The runner builds the dict; every report reads it. Checking it once, here, means a runner bug
shows up as `results: key 'cases[3].score.duplicated': ...` instead of a broken report.
SCHEMA.md beside this file documents each field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.core.errors import PlanError
from harness.core.plan import ACTIONS
from harness.runner.scoring import METRICS, MessageClass
from harness.runner.strategy import ClaimStatus

SCHEMA_NAME = "ses-fault-harness/results"
SCHEMA_VERSION = 1

# The message classes of SPEC §2, in the order reports list them (best first).
MESSAGE_CLASSES = tuple(
    cls.value
    for cls in (
        MessageClass.DELIVERED_ONCE,
        MessageClass.REJECTED_REPORTED,
        MessageClass.MISREPORTED,
        MessageClass.UNCERTAIN,
        MessageClass.GIVEN_UP,
        MessageClass.ABANDONED,
        MessageClass.DUPLICATED,
        MessageClass.SILENTLY_LOST,
    )
)
CLAIMS = tuple(status.value for status in ClaimStatus)
CLOSED_BY = ("client", "server")
#: The metrics that are a fraction or a time; every other metric of METRICS is a count.
FRACTIONAL = ("delivered_once_score", "virtual_elapsed_s", "fastest_possible_s", "efficiency")


@dataclass(frozen=True)
class Scalar:
    """A leaf value of one of `types` (bool is never an int here), or None when nullable."""

    types: tuple[type, ...]
    nullable: bool = False


@dataclass(frozen=True)
class OneOf:
    """A string from a fixed set."""

    values: tuple[str, ...]
    nullable: bool = False


@dataclass(frozen=True)
class ListOf:
    item: Any


@dataclass(frozen=True)
class Obj:
    """A dict with exactly these keys, except `optional` ones that may be left out; `nullable`
    lets the whole object be None."""

    fields: Mapping[str, Any]
    nullable: bool = False
    optional: tuple[str, ...] = ()


STR = Scalar((str,))
OPT_STR = Scalar((str,), nullable=True)
INT = Scalar((int,))
OPT_INT = Scalar((int,), nullable=True)
NUM = Scalar((int, float))
OPT_NUM = Scalar((int, float), nullable=True)
BOOL = Scalar((bool,))
OPT_BOOL = Scalar((bool,), nullable=True)

RUN = Obj(
    {
        "id": STR,
        "started_at": STR,
        "wall_s": NUM,
        "seed": OPT_INT,
        "harness_version": STR,
        "command": STR,
        "workers": INT,
        "virtual_s": NUM,
    }
)
SCENARIO = Obj(
    {
        "name": STR,
        "file": STR,
        "description": STR,
        "best_possible": STR,
        "contract": ListOf(STR),
        "messages": INT,
    }
)
STRATEGY = Obj({"name": STR, "description": STR})
EXPECTATION = Obj({"expr": STR, "metric": STR, "actual": OPT_NUM, "passed": BOOL})
SCORE = Obj(
    {
        **{name: NUM if name in FRACTIONAL else INT for name in METRICS},
        "wall_s": NUM,  # the case's wall time, added by the matrix (not a metric)
    },
    nullable=True,  # only when the case has an error: see _check_case
    # results written before copies were matched by envelope, or before SES's events
    optional=("stray_copies", "sent_to_bounced"),
)
MESSAGE = Obj(
    {
        "id": STR,
        "class": OneOf(MESSAGE_CLASSES),
        "copies": INT,
        "claim": OneOf(CLAIMS),
        "reply": OPT_STR,
        "ses_ids": ListOf(STR),
        "sessions": ListOf(INT),
    }
)
SESSION = Obj(
    {
        "number": INT,
        "opened_at": NUM,
        "closed_at": OPT_NUM,  # None: still open when the case ended
        "closed_by": OneOf(CLOSED_BY, nullable=True),
        "close_reason": OPT_STR,
    }
)
DELIVERY = Obj({"at": NUM, "session": INT, "id": OPT_STR, "acknowledged": BOOL})
FAULT = Obj(
    {
        "at": NUM,
        "session": INT,
        "stage": STR,
        "source": STR,
        "name": STR,
        "action": OneOf(tuple(ACTIONS)),
        "reply": OPT_STR,
    },
    optional=("action",),  # results written before it was recorded
)
TIMELINE = Obj(
    {"sessions": ListOf(SESSION), "deliveries": ListOf(DELIVERY), "faults": ListOf(FAULT)}
)
# Only in cases of a command strategy (harness.runner.command): the client process.
PACE = Obj(
    {
        "wall_s": NUM,
        "client_cpu_s": NUM,
        "server_cpu_s": NUM,
        "client_queued_s": NUM,
        "server_queued_s": NUM,
        "start_up_s": NUM,
        "left_out_s": NUM,
        "leaped_s": NUM,
        "scale_1_s": NUM,
        "stretch": NUM,
        "kept_up": BOOL,
        "suggested_time_scale": INT,
    },
    nullable=True,
)
COMMAND = Obj(
    {
        "argv": ListOf(STR),
        "time_scale": NUM,
        "time_scale_asked": NUM,
        "time_scale_from": OneOf(("strategy", "scenario", "default")),
        "clock": OneOf(("libfaketime", "real")),
        "pace": PACE,
        "note": OPT_STR,
        "timeout_s": NUM,
        "claims": OneOf(("client", "server")),
        "exit_code": OPT_INT,
        "timed_out": BOOL,
        "stdout_tail": STR,
        "stderr_tail": STR,
    }
)
# How the server's copies were tied to the workload's messages (harness.runner.identity).
STRAY = Obj(
    {
        "ses_id": STR,
        "session": INT,
        "message_id": OPT_STR,
        "mail_from": STR,
        "rcpt_tos": ListOf(STR),
    }
)
MATCHING = Obj(
    {
        "message_id": INT,
        "envelope": INT,
        "recipient": INT,
        "strays": INT,
        "explained": STR,
        "stray_copies": ListOf(STRAY),
    }
)
# The case's clock (harness.runner.scale.clock_record): whether a count depends on time.
CLOCK = Obj(
    {
        "kind": OneOf(("virtual", "progress", "scaled", "real")),
        "time_scale": OPT_NUM,
        "scale_from": OneOf(("strategy", "scenario", "default"), nullable=True),
        "left_out_s": NUM,
        "leaped_s": NUM,
        "client_ahead_s": NUM,
        "timed_faults": ListOf(Obj({"name": STR, "fired": INT})),
        "decided_by_clock": BOOL,
        "kept_up": OPT_BOOL,
        "stretch": OPT_NUM,
        "suggested_time_scale": OPT_INT,
        "closest_call": Obj({"margin_s": NUM, "decided_by": STR, "at_s": NUM}, nullable=True),
        "resolution_s": NUM,
        "hung_up_waiting": ListOf(Obj({"session": INT, "at_s": NUM})),
        "depends_on_time": BOOL,
    }
)
CASE = Obj(
    {
        "scenario": STR,
        "strategy": STR,
        "seed": OPT_INT,
        "passed": BOOL,
        "held_to": OneOf(("own", "contract")),
        "expectations": ListOf(EXPECTATION),
        "score": SCORE,
        "messages": ListOf(MESSAGE),
        "timeline": TIMELINE,
        "error": OPT_STR,
        "reproducer": STR,
        "command": COMMAND,
        "matching": MATCHING,
        "clock": CLOCK,
    },
    optional=("command", "matching", "clock"),
)
RESULTS = Obj(
    {
        "schema": OneOf((SCHEMA_NAME,)),
        "version": INT,
        "run": RUN,
        "scenarios": ListOf(SCENARIO),
        "strategies": ListOf(STRATEGY),
        "cases": ListOf(CASE),
    }
)

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def validate_results(results: Any) -> None:
    """Raise PlanError naming the first key of `results` that breaks schema version 1.

    >>> validate_results({"schema": "ses-fault-harness/results"})
    Traceback (most recent call last):
    ...
    harness.core.errors.PlanError: results: key 'version': missing
    """
    try:
        _check(results, RESULTS, "")
        if results["version"] != SCHEMA_VERSION:
            raise PlanError("version", f"{results['version']!r} is not supported", allowed="1")
        _check_references(results)
    except PlanError as error:
        raise error.within(source="results") from None


def _check(value: Any, spec: Any, key: str) -> None:
    if value is None and getattr(spec, "nullable", False):
        return
    if isinstance(spec, Obj):
        _check_object(value, spec, key)
    elif isinstance(spec, ListOf):
        if not isinstance(value, list):
            raise PlanError(key, f"expected a list, got {_show(value)}")
        for index, item in enumerate(value):
            _check(item, spec.item, f"{key}[{index}]")
    elif isinstance(spec, OneOf):
        if value not in spec.values:
            raise PlanError(key, f"{_show(value)} is not allowed", allowed=spec.values)
    else:
        _check_scalar(value, spec, key)


def _check_object(value: Any, spec: Obj, key: str) -> None:
    if not isinstance(value, dict):
        raise PlanError(key, f"expected an object, got {_show(value)}")
    for name, field_spec in spec.fields.items():
        sub = f"{key}.{name}" if key else name
        if name not in value:
            if name in spec.optional:
                continue
            raise PlanError(sub, "missing")
        _check(value[name], field_spec, sub)
    unknown = sorted(set(value) - set(spec.fields), key=str)
    if unknown:
        sub = f"{key}.{unknown[0]}" if key else str(unknown[0])
        raise PlanError(sub, "unknown key", allowed=list(spec.fields))


def _check_scalar(value: Any, spec: Scalar, key: str) -> None:
    ok = isinstance(value, spec.types) and not (isinstance(value, bool) and bool not in spec.types)
    if not ok:
        wanted = " or ".join(_TYPE_NAMES[t] for t in spec.types)
        if spec.nullable:
            wanted += " or null"
        raise PlanError(key, f"expected {wanted}, got {_show(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise PlanError(key, f"{value!r} is not a finite number (JSON has no NaN or infinity)")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise PlanError(key, f"{value!r} is not valid Unicode text") from None


def _check_references(results: dict) -> None:
    """Cross-field rules: names are unique and known, and each score adds up."""
    scenarios = _unique_names(results["scenarios"], "scenarios")
    strategies = _unique_names(results["strategies"], "strategies")
    seen: set[tuple[str, str]] = set()
    for index, case in enumerate(results["cases"]):
        key = f"cases[{index}]"
        if case["scenario"] not in scenarios:
            raise PlanError(f"{key}.scenario", f"{case['scenario']!r} is not in 'scenarios'")
        if case["strategy"] not in strategies:
            raise PlanError(f"{key}.strategy", f"{case['strategy']!r} is not in 'strategies'")
        pair = (case["scenario"], case["strategy"])
        if pair in seen:
            raise PlanError(key, f"a second case for scenario {pair[0]!r}, strategy {pair[1]!r}")
        seen.add(pair)
        _check_case(case, key)


def _unique_names(items: list[dict], key: str) -> set[str]:
    names: set[str] = set()
    for index, item in enumerate(items):
        if item["name"] in names:
            raise PlanError(f"{key}[{index}].name", f"{item['name']!r} appears twice")
        names.add(item["name"])
    return names


def _check_case(case: dict, key: str) -> None:
    score = case["score"]
    if score is None:
        if case["error"] is None:
            raise PlanError(f"{key}.score", "is null but the case has no error")
        return
    total = sum(score[name] for name in MESSAGE_CLASSES)
    if total != score["messages"]:
        raise PlanError(
            f"{key}.score.messages",
            f"is {score['messages']} but the classes add up to {total}",
        )
    for name in MESSAGE_CLASSES:
        listed = sum(1 for message in case["messages"] if message["class"] == name)
        if listed != score[name]:
            raise PlanError(
                f"{key}.score.{name}", f"is {score[name]} but {listed} messages have that class"
            )


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
