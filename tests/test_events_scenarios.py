"""The scenarios on SES's events: robust, which reconciles its ambiguous sends from the events
(waiting for late ones, counting one read twice once) and leaves out the addresses that bounced
or complained, meets reconcile-after-cut's, webhook-down's and bounce-handling's contracts for
50 seeds; without the events, or giving up on them too soon, it cannot."""

from __future__ import annotations

import dataclasses
import functools

import pytest

from harness.core.errors import PlanError
from harness.runner.matrix import run_case, run_matrix
from harness.runner.scenario import builtin_scenario, load_scenario
from harness.runner.strategies import reconcile, robust

SWEEP = range(1000, 1050)  # 50 seeds the file does not use


def _scenario(name: str = "reconcile-after-cut"):  # type: ignore[no-untyped-def]
    return load_scenario(builtin_scenario(name))


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


def test_late_events_read_twice_settle_once(monkeypatch) -> None:
    case = run_case(_scenario("webhook-down"), "robust")
    assert case["passed"], case["expectations"]
    assert (case["score"]["delivered_once"], case["score"]["duplicated"]) == (300, 0)
    # a client that stops waiting for the events after 10 s resends what SES kept
    monkeypatch.setattr(reconcile, "SETTLE_MAX_S", 10.0)
    case = run_case(_scenario("webhook-down"), "robust")
    assert not case["passed"]
    assert case["score"]["duplicated"] == 12


def test_a_scenarios_events_table_is_checked(tmp_path) -> None:
    text = builtin_scenario("reconcile-after-cut").read_text()
    path = tmp_path / "bad.toml"
    path.write_text(text.replace("events = true", "events = { duplicates = 3 }"))
    with pytest.raises(PlanError, match="events"):
        load_scenario(path)
    path.write_text(text.replace("events = true", "events = { twice = 1 }"))
    with pytest.raises(PlanError, match="events"):
        load_scenario(path)


def test_robust_does_not_mail_an_address_again_once_it_bounced_or_complained() -> None:
    case = run_case(_scenario("bounce-handling"), "robust")
    assert case["passed"], case["expectations"]
    score = case["score"]
    assert score["sent_to_bounced"] == 0
    assert score["delivered_once"] + score["abandoned"] == 200 and score["abandoned"] >= 1
    # the same client without the events mails them all again, and the score says so
    blind = dataclasses.replace(_scenario("bounce-handling"), events=None)
    case = run_case(blind, "robust")
    assert not case["passed"]
    assert case["score"]["sent_to_bounced"] == score["abandoned"]


@pytest.mark.slow
def test_robust_meets_the_contracts_for_50_seeds() -> None:
    scenarios = [
        _scenario(name).with_seed(seed)
        for name in ("reconcile-after-cut", "webhook-down", "bounce-handling")
        for seed in SWEEP
    ]
    results = run_matrix(scenarios, ["robust"], workers=2)
    assert len(results["cases"]) == 150
    missed = [
        f"{case['scenario']}: {e['expr']} (got {e['actual']})"
        for case in results["cases"]
        for e in case["expectations"]
        if not e["passed"]
    ]
    assert missed == []
