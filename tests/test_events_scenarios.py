"""The scenarios on SES's events: robust, which reconciles its ambiguous sends from the events,
meets reconcile-after-cut's contract for 50 seeds; without reading them it cannot."""

from __future__ import annotations

import functools

import pytest

from harness.runner.matrix import run_case, run_matrix
from harness.runner.scenario import builtin_scenario, load_scenario
from harness.runner.strategies import robust

SWEEP = range(1000, 1050)  # 50 seeds the file does not use


def _scenario():  # type: ignore[no-untyped-def]
    return load_scenario(builtin_scenario("reconcile-after-cut"))


def test_robust_settles_every_ambiguous_send_from_the_events() -> None:
    case = run_case(_scenario(), "robust")
    assert case["passed"], case["expectations"]
    score = case["score"]
    assert (score["delivered_once"], score["duplicated"], score["uncertain"]) == (300, 0, 0)


def test_without_the_events_the_same_client_is_left_uncertain() -> None:
    blind = functools.partial(robust.send_batch, reconcile=False)
    case = run_case(_scenario(), blind)
    assert not case["passed"]
    assert (case["score"]["uncertain"], case["score"]["duplicated"]) == (18, 0)


@pytest.mark.slow
def test_robust_meets_the_contract_for_50_seeds() -> None:
    scenarios = [_scenario().with_seed(seed) for seed in SWEEP]
    results = run_matrix(scenarios, ["robust"], workers=2)
    assert len(results["cases"]) == 50
    missed = [
        f"{case['scenario']}: {e['expr']} (got {e['actual']})"
        for case in results["cases"]
        for e in case["expectations"]
        if not e["passed"]
    ]
    assert missed == []
