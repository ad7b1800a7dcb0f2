"""The boto3 strategies: one SDK call per message, the SDK's retry mode deciding the rest, every
wait on the case's virtual clock."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from harness.base.clock import VirtualClock
from harness.core.plan import Rule
from harness.runner.strategies import BUILTINS, SDK_BUILTINS
from harness.runner.strategy import ClaimStatus, OutgoingMessage
from harness.server.fake_ses import FakeSES
from tests.helpers import message

pytest.importorskip("boto3")

SDK = [b.name for b in SDK_BUILTINS]


def batch(count: int) -> list[OutgoingMessage]:
    return [
        OutgoingMessage(
            f"<msg-{n}@test.example>", "app@example.com", ("user@example.com",), message(n)
        )
        for n in range(count)
    ]


def run(name: str, count: int, **server) -> tuple[Counter, FakeSES, VirtualClock]:
    clock = VirtualClock(latency_s=0.02)
    with FakeSES(clock=clock, **server) as ses:
        claims = list(BUILTINS[name].send_batch(batch(count), ses.endpoint, clock))
    return Counter(c.status for c in claims), ses, clock


@pytest.mark.parametrize("name", SDK)
def test_every_sdk_strategy_is_a_builtin_when_boto3_is_installed(name):
    assert BUILTINS[name].requires == "boto3"


@pytest.mark.parametrize("name", SDK)
def test_a_cut_after_accept_makes_every_retry_mode_send_twice(name):
    cut = Rule.from_dict({"stage": "API", "nth": 3, "action": "drop_after_accept"})
    claims, ses, _ = run(name, 5, faults=[cut], rate_per_s=None)
    assert claims == Counter({ClaimStatus.SENT: 5})
    copies = Counter(m.message_id for m in ses.messages)
    assert copies["<msg-2@test.example>"] == 2
    assert sum(copies.values()) == 6


@pytest.mark.parametrize("name", SDK)
def test_a_long_backoff_costs_virtual_time_not_wall_time(name, monkeypatch):
    # Every request of the first 3 refused with 503: each retry mode backs off and gets through.
    busy = Rule.from_dict({"stage": "API", "first": 2, "action": "reply", "code": 503})
    slept: list[float] = []  # every wall-clock sleep, from any thread
    wall_sleep = time.sleep
    monkeypatch.setattr(time, "sleep", lambda s: (slept.append(s), wall_sleep(s)))
    claims, ses, clock = run(name, 3, faults=[busy], rate_per_s=None)
    assert claims[ClaimStatus.SENT] == 3
    assert len(ses.messages) == 3
    assert clock.elapsed() > 3 * 0.02  # latency plus the SDK's backoff, on the virtual clock
    assert slept == []  # botocore's backoff ladder slept on that clock, never on the wall


@pytest.mark.parametrize("name", SDK)
def test_the_same_case_gives_the_same_schedule(name):
    def once() -> tuple[list[str], float]:
        _claims, ses, clock = run(name, 40)
        return [m.message_id for m in ses.messages], clock.elapsed()

    assert once() == once()


def test_a_throttled_batch_fails_what_the_sdk_gives_up_on_with_the_api_error():
    claims, ses, _ = run("sdk-v2-standard", 200, daily_quota=150, rate_per_s=None)
    assert claims == Counter({ClaimStatus.SENT: 150, ClaimStatus.FAILED: 50})
    assert len(ses.messages) == 150


def test_without_boto3_the_sdk_strategies_are_left_out_and_scenarios_still_load():
    import subprocess
    import sys

    script = (
        "import sys; sys.modules['boto3'] = None\n"
        "from harness.runner.strategies import BUILTINS, UNAVAILABLE\n"
        "from harness.runner.resolve import resolve_strategy\n"
        "from harness.runner.scenario import builtin_scenario, load_scenario\n"
        "assert not any(n.startswith('sdk-') for n in BUILTINS), list(BUILTINS)\n"
        "load_scenario(builtin_scenario('api-cut-after-accept'))\n"
        "try:\n"
        "    resolve_strategy('sdk-v2-standard')\n"
        "except Exception as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'ses-fault-harness[aws]'" in done.stdout


def test_the_conformance_story_tells_an_api_run_by_its_sends():
    from harness.base.ledger import Ledger
    from harness.runner.conformance import story
    from harness.runner.matrix import run_case
    from harness.runner.scenario import builtin_scenario, load_scenario

    scenario = load_scenario(builtin_scenario("api-cut-after-accept"))
    ledger = Ledger()
    case = run_case(scenario, "sdk-v2-standard", ledger=ledger)
    told = story(case, ledger)
    assert told.startswith("First refusal, at API send 25: the connection cut after the message")
    assert "12 of the 12 sends cut after storing sent again" in told


def test_clients_share_one_session_but_not_their_retries_even_made_from_many_threads():
    # A client from a new boto3 session loads the service's model files again (120 ms); the
    # strategies' clients come from one session of the process, each with its own retry mode.
    from concurrent.futures import ThreadPoolExecutor

    from harness.runner.strategies import sdk

    with FakeSES() as ses:
        modes = ["standard", "adaptive", "legacy"] * 4
        with ThreadPoolExecutor(len(modes)) as pool:
            clients = list(
                pool.map(lambda mode: sdk.client(ses.endpoint, "sesv2", {"mode": mode}), modes)
            )
        try:
            assert len({id(c._loader) for c in clients}) == 1
            assert [c.meta.config.retries["mode"] for c in clients] == modes
            assert all(c.get_account()["SendQuota"] for c in clients)
        finally:
            for c in clients:
                c.close()
