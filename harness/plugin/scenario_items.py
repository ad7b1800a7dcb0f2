"""Scenario cases as pytest items: the CI regression suite, in the user's repo and in ours.

Two ways in, and nothing else is collected:

- **A project's suite**: a ``pyproject.toml`` at the rootdir with a ``[tool.ses-harness]`` table
  (see :mod:`harness.runner.config`; ``ses-harness init`` writes one) is collected as one item
  per scenario, strategy and seed, ``pyproject.toml::session-cap[mymail:send_batch]``. A plain
  ``pytest`` collects it even when ``testpaths`` leaves the rootdir out.
- **Scenario files**: a ``.toml`` file matching a ``fake_ses_scenarios`` ini glob, or, in a
  project without that table, one in a folder named ``scenarios`` *that declares itself a
  scenario* (a ``[workload]`` or ``[plan]`` table): one item per strategy with a table of its
  own. Any other ``.toml`` file is left alone, silently, so a project that merely has the
  package installed runs its own tests unchanged.

A failing item shows the same text as ``ses-harness run`` and :func:`harness.play`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from harness.runner.scenario import Scenario

# A table header that only our scenario files have: [workload], [plan], [plan.limits] ...
_DECLARES = re.compile(rb"^[ \t]*\[[ \t]*(workload|plan)[ \t]*[\].]", re.MULTILINE)
#: Scenario files are small; more than this in a `scenarios` folder is somebody else's data.
_SNIFF_BYTES = 1 << 20


def declares_scenario(path: Path) -> bool:
    """True when `path` has a ``[workload]`` or ``[plan]`` table header (read, not parsed)."""
    try:
        with path.open("rb") as handle:
            return _DECLARES.search(handle.read(_SNIFF_BYTES)) is not None
    except OSError:
        return False


def _suite_file(config: pytest.Config) -> Path | None:
    from harness.runner.config import find_pyproject

    return find_pyproject(config.rootpath)


def collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix != ".toml":
        return None
    config = parent.config
    suite = _suite_file(config)
    if file_path.name == "pyproject.toml":
        return SuiteFile.from_parent(parent, path=file_path) if file_path == suite else None
    globs = config.getini("fake_ses_scenarios")
    if globs:  # asked for by name: a broken file is an error, not skipped
        wanted = any(file_path.match(glob) for glob in globs)
    else:  # a project with a suite names its scenarios there; no guessing by folder
        wanted = (
            suite is None and file_path.parent.name == "scenarios" and declares_scenario(file_path)
        )
    return ScenarioFile.from_parent(parent, path=file_path) if wanted else None


def add_suite_to_testpaths(session: pytest.Session) -> None:
    """A plain ``pytest`` in a project whose `testpaths` leave out the rootdir still plays it."""
    config = session.config
    if config.args_source is not pytest.Config.ArgsSource.TESTPATHS:
        return
    suite = _suite_file(config)
    if suite is None:
        return
    covered = any(
        suite == Path(arg) or Path(arg) in suite.parents
        for arg in (config.rootpath / a.split("::")[0] for a in config.args)
    )
    if not covered:
        config.args.append(str(suite))


class SuiteFile(pytest.File):
    """The ``[tool.ses-harness]`` suite of a pyproject.toml: every scenario x strategy x seed."""

    def collect(self) -> Iterator[ScenarioItem]:
        from harness.core.errors import PlanError
        from harness.runner.config import load_suite

        try:
            suite = load_suite(self.path)
        except PlanError as error:
            raise self.CollectError(str(error)) from None
        for scenario in suite.scenarios:
            for seed in suite.seeds:
                played = scenario if seed is None else scenario.with_seed(seed)
                for strategy in suite.strategies:
                    yield ScenarioItem.from_parent(
                        self, name=f"{played.name}[{strategy}]", scenario=played, strategy=strategy
                    )


class ScenarioFile(pytest.File):
    """A scenario file: one item per strategy it states expectations for."""

    def collect(self) -> Iterator[ScenarioItem]:
        from harness.core.errors import PlanError
        from harness.runner.scenario import load_scenario

        try:
            scenario = load_scenario(self.path)
        except PlanError as error:  # shown as the message alone, no traceback
            raise self.CollectError(str(error)) from None
        for strategy in scenario.strategies:
            yield ScenarioItem.from_parent(self, name=strategy, scenario=scenario)


class ScenarioFailure(Exception):
    """A scenario case that missed an expectation; carries the case dict of results.json."""

    def __init__(self, case: dict[str, Any]) -> None:
        super().__init__(case["reproducer"])
        self.case = case


class ScenarioItem(pytest.Item):
    """One strategy against one scenario, on its own server (and virtual clock, in process)."""

    def __init__(self, *, scenario: Scenario, strategy: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.strategy = strategy or self.name

    def runtest(self) -> None:
        from harness.runner.matrix import run_case

        seed = self.config.getoption("fake_ses_seed")  # only when given: files carry their own
        case = run_case(self.scenario, self.strategy, seed=seed)
        self.user_properties.append(("reproducer", case["reproducer"]))
        if not case["passed"]:
            raise ScenarioFailure(case)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> Any:
        from harness.core.errors import PlanError

        if isinstance(excinfo.value, ScenarioFailure):
            from harness.reports.failure import case_report

            return case_report(excinfo.value.case, self.scenario.best_possible)
        if isinstance(excinfo.value, PlanError):  # e.g. a strategy that cannot be imported
            return f"{self.path}: {excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"scenario {self.scenario.name}, strategy {self.strategy}"
