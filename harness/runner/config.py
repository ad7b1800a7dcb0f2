"""A project's regression suite, from the ``[tool.ses-harness]`` table of its pyproject.toml.

    [tool.ses-harness]
    strategies = ["mymail:send_batch", "cmd:node worker/send.js"]   # what to judge
    scenarios = ["builtin", "scenarios"]   # "builtin" (all), built-in names, files, folders
    seeds = [1, 2, 3]                      # play each case with these seeds too (optional)
    time_scale = 8                         # cmd: server and client clocks 8x the wall
    reports = "ses-harness-reports"        # where run and hunt write here (the default)

    # A bar of your own where you accept a known weakness (the default is the contract):
    [tool.ses-harness.expect.drop-after-accept."mymail:send_batch"]
    misreported = "<= 12"

`ses-harness run` with no arguments and a plain `pytest` in that project both play it; paths
are relative to the pyproject.toml's folder. Errors name the file and the key. The default
report folder has a hyphen in its name: a ``reports/`` folder beside a flat-layout package
would be one more top-level package to setuptools, and ``pip install -e .`` would refuse the
project; a name with a hyphen is never one.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import PlanError
from harness.runner.command.spec import PREFIX
from harness.runner.resolve import known_strategy
from harness.runner.scenario import (
    Scenario,
    builtin_scenario,
    builtin_scenarios,
    load_scenario,
    scenario_paths,
)

TABLE = "tool.ses-harness"
KEYS = ("strategies", "scenarios", "seeds", "time_scale", "expect", "reports")
BUILTIN = "builtin"
DEFAULT_REPORTS = "ses-harness-reports"
MAX_SEEDS = 1_000


@dataclass(frozen=True)
class Suite:
    """What a project plays: every scenario x every strategy x every seed (None: the file's)."""

    path: Path  # the pyproject.toml
    scenarios: tuple[Scenario, ...]
    strategies: tuple[str, ...]
    seeds: tuple[int | None, ...]


def find_pyproject(start: Path) -> Path | None:
    """The pyproject.toml in `start` that has a ``[tool.ses-harness]`` table, if any."""
    path = start / "pyproject.toml"
    return path if path.is_file() and has_table(path) else None


def has_table(path: Path) -> bool:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return False  # not ours to judge: pytest and pip will say what is wrong with it
    return isinstance(data.get("tool", {}).get("ses-harness"), Mapping)


def report_dir(start: Path) -> Path:
    """Where `ses-harness run` and `hunt` write in `start`: the ``reports`` folder its
    ``[tool.ses-harness]`` table names, else ``ses-harness-reports``."""
    found = find_pyproject(start)
    if found is None:
        return start / DEFAULT_REPORTS
    value = tomllib.loads(found.read_text(encoding="utf-8"))["tool"]["ses-harness"].get(
        "reports", DEFAULT_REPORTS
    )
    if not isinstance(value, str) or not value.strip():
        raise PlanError(f"{TABLE}.reports", f"{value!r} is not a folder", source=str(found))
    return start / value


def load_suite(path: Path) -> Suite:
    """Read ``[tool.ses-harness]`` from `path` and load every scenario it names."""
    source = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as error:
        problem = "nested too deep" if isinstance(error, RecursionError) else str(error)
        raise PlanError("", f"cannot read it: {problem}", source=source) from None
    table = data.get("tool", {}).get("ses-harness")
    try:
        if not isinstance(table, Mapping):
            raise PlanError(TABLE, "is missing", allowed="a table")
        unknown = sorted(set(table) - set(KEYS))
        if unknown:
            raise PlanError(f"{TABLE}.{unknown[0]}", "unknown key", allowed=KEYS)
        scale = _time_scale(table.get("time_scale"))
        written = _strings(table.get("strategies"), f"{TABLE}.strategies", required=True)
        for spec in written:
            if not known_strategy(spec):
                raise PlanError(
                    f"{TABLE}.strategies",
                    f"{spec!r} is not a strategy",
                    allowed="a built-in name, module:attr, cmd:COMMAND or an entry point name",
                )
        strategies = {spec: _scaled(spec, scale) for spec in written}
        scenarios = _scenarios(table.get("scenarios", [BUILTIN]), path.parent)
        scenarios = _with_bars(scenarios, table.get("expect", {}), strategies, source)
        seeds = _seeds(table.get("seeds"))
        report_dir(path.parent)  # a bad `reports` is named before anything runs
    except PlanError as error:
        raise error.within(source=source) from None
    return Suite(path, tuple(scenarios), tuple(strategies.values()), seeds)


def _scaled(spec: str, scale: float | None) -> str:
    """`cmd:X` as ``cmd[time_scale=K]:X`` when the table sets a scale and the spec does not."""
    if scale is None or not spec.startswith(f"{PREFIX}:"):
        return spec
    return f"{PREFIX}[time_scale={scale:g}]:{spec.removeprefix(f'{PREFIX}:')}"


def _scenarios(value: Any, root: Path) -> list[Scenario]:
    targets = _strings(value, f"{TABLE}.scenarios", required=True)
    paths: list[Path] = []
    for target in targets:
        if target == BUILTIN:
            paths += builtin_scenarios()
        elif (root / target).exists():
            paths += scenario_paths([root / target])
        elif (builtin := builtin_scenario(target)) is not None:
            paths.append(builtin)
        else:
            raise PlanError(
                f"{TABLE}.scenarios",
                f"{target!r} is neither a path under {root} nor a built-in scenario",
                allowed=[BUILTIN, "a file or folder", *(p.stem for p in builtin_scenarios())],
            )
    unique = list(dict.fromkeys(p.resolve() for p in paths))
    scenarios = [load_scenario(p) for p in unique]
    names = [s.name for s in scenarios]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise PlanError(f"{TABLE}.scenarios", f"two scenarios are called {twice[0]!r}")
    return scenarios


def _with_bars(
    scenarios: list[Scenario], expect: Any, strategies: Mapping[str, str], source: str
) -> list[Scenario]:
    if not isinstance(expect, Mapping):
        raise PlanError(f"{TABLE}.expect", f"{expect!r} is not a table")
    by_name = {s.name: s for s in scenarios}
    for scenario_name, tables in expect.items():
        key = f"{TABLE}.expect.{scenario_name}"
        if scenario_name not in by_name:
            raise PlanError(key, "is not a scenario of this suite", allowed=list(by_name))
        if not isinstance(tables, Mapping):
            raise PlanError(key, f"{tables!r} is not a table of strategies")
        for spec, table in tables.items():
            if spec not in strategies:
                raise PlanError(f"{key}.{spec}", "is not in strategies", allowed=list(strategies))
            scenario = by_name[scenario_name]
            by_name[scenario_name] = scenario.with_expectations(strategies[spec], table, source)
    return [by_name[s.name] for s in scenarios]


def _strings(value: Any, key: str, *, required: bool = False) -> list[str]:
    if value is None and not required:
        return []
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise PlanError(key, f"{value!r} is not a list of strings", allowed='["...", ...]')
    return value


def _seeds(value: Any) -> tuple[int | None, ...]:
    key = f"{TABLE}.seeds"
    if value is None:
        return (None,)
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
    ):
        raise PlanError(key, f"{value!r} is not a list of seeds", allowed="[integers >= 0]")
    if len(value) > MAX_SEEDS:
        raise PlanError(key, f"{len(value):,} seeds", allowed=f"at most {MAX_SEEDS:,}")
    return tuple(dict.fromkeys(value))


def _time_scale(value: Any) -> float | None:
    key = f"{TABLE}.time_scale"
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= 1000:
        raise PlanError(key, f"{value!r} is not a time scale", allowed="a number > 0, <= 1000")
    return float(value)
