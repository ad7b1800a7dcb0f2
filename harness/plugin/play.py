"""`play`: one scenario against your own sending code, from your own unit test.

    import harness
    from myapp.mail import send_batch

    def test_the_batch_mailer_survives_the_session_cap():
        harness.play("session-cap", send_batch).assert_ok()

The strategy is a callable ``fn(messages, endpoint, clock)`` yielding :class:`harness.Claim`
(or any ``--strategy`` spec: ``"cmd:node send.js"``, ``"mymail:send_batch"``). It is held to
the scenario's contract unless you pass `expect`; a miss fails with the same text as the
scenario's pytest item and ``ses-harness run``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.reports.failure import case_report
from harness.runner.matrix import run_case
from harness.runner.resolve import name_of
from harness.runner.scenario import Scenario, load_scenario, scenario_paths
from harness.runner.strategy import Strategy


@dataclass(frozen=True)
class Played:
    """One case: the verdict, the scores and the per-message classes (a results.json case)."""

    case: dict[str, Any]
    best_possible: str = ""  # the scenario's line on what a correct client does there

    @property
    def passed(self) -> bool:
        return bool(self.case["passed"])

    @property
    def score(self) -> dict[str, Any]:
        """The metrics by name: ``delivered_once``, ``duplicated``, ``silently_lost`` ..."""
        return self.case["score"] or {}

    def report(self) -> str:
        """Why it failed (empty when it passed)."""
        return "" if self.passed else case_report(self.case, self.best_possible)

    def assert_ok(self) -> Played:
        """Raise AssertionError with the failure text unless every expectation held."""
        if not self.passed:
            raise AssertionError(self.report())
        return self


def play(
    scenario: str | Path | Scenario,
    strategy: str | Strategy,
    *,
    seed: int | None = None,
    expect: Mapping[str, Any] | None = None,
) -> Played:
    """Play `strategy` on `scenario` (a built-in's name, a file, or a loaded Scenario).

    `seed` replaces the file's seeds; `expect` (``{"delivered_once": ">= 990"}``) replaces the
    contract for this call. Runs in this process, on a virtual clock (a command on the real one).
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario_paths([scenario])[0])
    if expect is not None:
        name = strategy if isinstance(strategy, str) else name_of(strategy)
        scenario = scenario.with_expectations(name, expect, source="play(expect=...)")
    return Played(run_case(scenario, strategy, seed=seed), scenario.best_possible)
