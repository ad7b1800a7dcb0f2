"""The matrix: one case per scenario and strategy, deterministic, in the results schema."""

from __future__ import annotations

import json
import textwrap

import pytest

from harness.base.clock import VirtualClock
from harness.base.ledger import Ledger
from harness.runner.matrix import SCHEMA, run_case, run_matrix
from harness.runner.scenario import load_scenario
from harness.runner.strategies import BUILTINS
from harness.runner.strategy import CaseHooks, hooks_of

SMALL = """
name = "small-cap"
description = "A session cap of 8 over 20 messages, with a random 451 at RCPT."
best_possible = "20 of 20."

[workload]
count = 20
seed = 4
recipients = [1, 2]
attachments = 0.2
unicode = 0.5

[plan]
profile = "ses"
seed = 4
limits = { session_limit = 8 }

[[plan.faults]]
stage = "RCPT"
probability = 0.1
action = "reply"
code = 451
text = "Temporary service failure"

[expect.naive]
delivered_once = "< 9"

[expect.robust]
delivered_once = 20
duplicated = 0
"""

RAISES = """
from harness.runner.strategy import Claim, ClaimStatus


def send_batch(messages, endpoint, clock):
    yield Claim(messages[0].id, ClaimStatus.NOT_ATTEMPTED)
    raise RuntimeError("boom")


def not_a_claim(messages, endpoint, clock):
    return ["sent"]
"""


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return load_scenario(path)


def without_wall_times(results):
    results = json.loads(json.dumps(results))
    results["run"].pop("wall_s"), results["run"].pop("id"), results["run"].pop("started_at")
    for case in results.get("cases", [results]):
        case["score"].pop("wall_s")
    return results


def test_a_case_has_every_field_of_the_schema(small):
    case = run_case(small, "robust")
    assert set(case) == {
        "scenario",
        "strategy",
        "seed",
        "passed",
        "held_to",
        "expectations",
        "score",
        "messages",
        "timeline",
        "error",
        "reproducer",
        "matching",
        "clock",
    }
    # In process, on the virtual clock: no count depends on the wall.
    assert (case["clock"]["kind"], case["clock"]["depends_on_time"]) == ("virtual", False)
    assert (case["scenario"], case["strategy"], case["seed"], case["passed"]) == (
        "small-cap",
        "robust",
        4,
        True,
    )
    assert case["expectations"] == [
        {"expr": "delivered_once == 20", "metric": "delivered_once", "actual": 20, "passed": True},
        {"expr": "duplicated == 0", "metric": "duplicated", "actual": 0, "passed": True},
    ]
    assert len(case["messages"]) == 20 and case["messages"][0]["class"] == "delivered_once"
    assert set(case["timeline"]) == {"sessions", "deliveries", "faults"}
    assert case["timeline"]["sessions"][0]["opened_at"] == 0.0
    assert case["reproducer"].endswith("small.toml --strategy robust")
    json.dumps(case)  # JSON-safe


def test_the_same_seed_gives_the_same_case_twice(small):
    first, second = run_case(small, "reconnect", seed=9), run_case(small, "reconnect", seed=9)
    first["score"].pop("wall_s"), second["score"].pop("wall_s")
    assert first == second
    assert first["seed"] == 9 and first["reproducer"].endswith("--seed 9")


def test_the_same_seed_gives_an_identical_results_dict_twice(small):
    strategies = ["naive", "backoff", "robust"]
    first = run_matrix([small], strategies, seed=3)
    second = run_matrix([small], strategies, seed=3)
    assert without_wall_times(first) == without_wall_times(second)


def test_another_seed_gives_another_fault_schedule(small):
    faults = {
        seed: [f["at"] for f in run_case(small, "robust", seed=seed)["timeline"]["faults"]]
        for seed in (1, 2)
    }
    assert faults[1] != faults[2]


def test_parallel_workers_give_the_same_cases_in_the_same_order(small):
    strategies = ["naive", "rotate", "robust"]
    serial = run_matrix([small, small], strategies, seed=5)
    parallel = run_matrix([small, small], strategies, seed=5, workers=2)
    assert parallel["run"]["workers"] == 2
    assert without_wall_times(serial)["cases"] == without_wall_times(parallel)["cases"]


def test_the_results_dict_lists_the_run_scenarios_and_strategies(small):
    seen = []
    results = run_matrix(
        [small], ["naive", "robust"], command="ses-harness run x", on_case=seen.append
    )
    assert (results["schema"], results["version"]) == (SCHEMA, 1)
    assert results["run"]["command"] == "ses-harness run x"
    assert results["run"]["seed"] is None
    assert results["run"]["virtual_s"] == pytest.approx(
        sum(c["score"]["virtual_elapsed_s"] for c in results["cases"])
    )
    assert results["scenarios"] == [
        {
            "name": "small-cap",
            "file": results["scenarios"][0]["file"],
            "description": small.description,
            "best_possible": "20 of 20.",
            "contract": ["duplicated == 0", "silently_lost == 0"],
            "messages": 20,
        }
    ]
    assert [s["name"] for s in results["strategies"]] == ["naive", "robust"]
    assert all(s["description"] for s in results["strategies"])
    assert [(c["scenario"], c["strategy"]) for c in results["cases"]] == [
        ("small-cap", "naive"),
        ("small-cap", "robust"),
    ]
    assert seen == results["cases"]


def test_a_strategy_that_raises_is_reported_not_fatal(small, tmp_path, monkeypatch):
    (tmp_path / "broken_strategy.py").write_text(textwrap.dedent(RAISES))
    monkeypatch.chdir(tmp_path)
    case = run_case(small, "broken_strategy:send_batch")
    assert case["error"] == "strategy raised RuntimeError: boom"
    assert case["passed"] is False
    assert case["score"]["abandoned"] == 20


def test_a_strategy_that_returns_no_claims_is_reported(small, tmp_path, monkeypatch):
    (tmp_path / "broken_strategy.py").write_text(textwrap.dedent(RAISES))
    monkeypatch.chdir(tmp_path)
    case = run_case(small, "broken_strategy:not_a_claim")
    assert case["error"].startswith("strategy raised TypeError: yielded 'sent', not a")


def test_a_missed_expectation_fails_the_case(tmp_path):
    path = tmp_path / "wrong.toml"
    path.write_text(SMALL.replace('delivered_once = "< 9"', "delivered_once = 20"))
    case = run_case(load_scenario(path), "naive")
    assert case["expectations"][0]["passed"] is False
    assert case["expectations"][0]["actual"] < 20
    assert case["passed"] is False and case["error"] is None


class Hooked(CaseHooks):
    """Sends like robust but claims nothing itself, and brings every hook of its own."""

    pinned = False

    def __init__(self):
        self.clocks, self.watched, self.claims = [], [], []

    def __call__(self, messages, endpoint, clock):
        assert clock is self.clocks[-1]  # the clock its own hook made
        self.claims = list(BUILTINS["robust"].send_batch(messages, endpoint, clock))
        return []

    def clock(self, latency_s):
        self.clocks.append(VirtualClock(latency_s=latency_s))
        return self.clocks[-1]

    def arrivals_s(self, planned_s):
        return [0.0] * len(planned_s)

    def watch(self, ledger):
        self.watched.append(ledger)

    def start_s(self, case_start_s):
        return case_start_s - 5.0

    def claims_when_silent(self, messages, ledger):
        assert ledger is self.watched[-1]
        return self.claims

    def case_record(self, claims_from):
        return {"probe": {"claims": claims_from}, "score": "cannot replace the harness's own"}


def test_a_strategy_object_brings_its_own_hooks_through_the_one_path(small):
    hooked, ledger = Hooked(), Ledger()
    case = run_case(small, hooked, ledger=ledger)
    robust = run_case(small, "robust")
    assert len(hooked.clocks) == 1 and hooked.watched == [ledger]
    # claims_when_silent's claims were scored, and the case says whose they were
    assert case["probe"] == {"claims": "server"}
    assert case["score"]["delivered_once"] == robust["score"]["delivered_once"] == 20
    assert case["messages"] == robust["messages"]
    # start_s moved where elapsed time counts from; the harness's own entries stand
    assert case["score"]["virtual_elapsed_s"] == pytest.approx(
        robust["score"]["virtual_elapsed_s"] + 5.0
    )
    assert set(case) == set(robust) | {"probe"}


def test_a_plain_callable_gets_the_in_process_defaults(small):
    hooks = hooks_of(BUILTINS["naive"].send_batch)
    assert hooks.pinned is True
    assert isinstance(hooks.clock(0.05), VirtualClock) and hooks.clock(0.05).latency_s == 0.05
    assert hooks.arrivals_s([0.0, 3.0]) == [0.0, 3.0]
    assert hooks.start_s(12.5) == 12.5
    assert hooks.claims_when_silent([], Ledger()) is None
    assert hooks.case_record("client") == {}
    silent = run_case(small, lambda messages, endpoint, clock: [])
    assert silent["score"]["abandoned"] == 20 and "command" not in silent
