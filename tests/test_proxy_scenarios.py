"""A scenario that names an upstream: the runner scores a strategy on the proxied path, counting
copies on the upstream's side where it lets us read them (maildev), else on the proxy's ledger."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.core.errors import PlanError
from harness.runner.matrix import run_case
from harness.runner.scenario import load_scenario
from tests.upstreams import maildev, maildev_missing, smtp_sink, smtp_sink_missing

SCENARIO = """
name = "proxied-cap"
latency_s = 0.0

[workload]
count = 12
seed = 7

[plan]
profile = "ses"
seed = 7
limits = {{ session_limit = 5, rate_per_s = 1000.0 }}
{faults}

[contract]
delivered_once = 12

[upstream]
{upstream}
"""


def scenario(tmp_path: Path, upstream: str, faults: str = "") -> Path:
    path = tmp_path / "proxied.toml"
    path.write_text(SCENARIO.format(upstream=upstream, faults=faults))
    return path


@pytest.mark.skipif(bool(maildev_missing()), reason=str(maildev_missing()))
def test_copies_are_counted_in_maildev_and_the_cap_is_the_proxys(tmp_path: Path) -> None:
    with maildev() as upstream:
        table = (
            f'address = "127.0.0.1:{upstream.port}"\ncopies = "maildev"\n'
            f'api = "http://127.0.0.1:{upstream.web_port}"'
        )
        loaded = load_scenario(scenario(tmp_path, table))
        naive = run_case(loaded, "naive")
        held_after_naive = len(upstream.emails(at_least=5))
        robust = run_case(loaded, "reconnect")
        held_after_reconnect = len(upstream.emails(at_least=12))
    assert naive["score"]["delivered_once"] == 5  # the proxy's 421 at the 6th
    assert not naive["passed"]
    assert held_after_naive == 5
    assert robust["score"]["delivered_once"] == 12 and robust["passed"]
    assert robust["score"]["duplicated"] == 0
    assert held_after_reconnect == 12  # emptied before the case: only this case's copies
    assert (robust["matching"]["message_id"], robust["matching"]["strays"]) == (12, 0)


@pytest.mark.skipif(bool(smtp_sink_missing()), reason=str(smtp_sink_missing()))
def test_a_copy_cut_before_its_250_is_scored_from_the_proxys_ledger(tmp_path: Path) -> None:
    faults = '[[plan.faults]]\nstage = "EOM"\nnth = 3\naction = "drop_after_accept"'
    with smtp_sink() as upstream:
        loaded = load_scenario(
            scenario(tmp_path, f'address = "127.0.0.1:{upstream.port}"', faults=faults)
        )
        case = run_case(loaded, "reconnect")
        held = len(upstream.messages())
    # reconnect resends the message whose 250 never came: the upstream holds it twice.
    assert case["score"]["duplicated"] == 1
    assert held == 13


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ('address = "nowhere"', "upstream.address"),
        ('address = "127.0.0.1:25"\ntls = "ssl"', "upstream.tls"),
        ('address = "127.0.0.1:25"\ncopies = "maildev"', "upstream.api"),
        ('address = "127.0.0.1:25"\nport = 25', "upstream.port"),
    ],
)
def test_a_bad_upstream_table_names_the_file_and_key(tmp_path: Path, table: str, key: str) -> None:
    with pytest.raises(PlanError) as error:
        load_scenario(scenario(tmp_path, table))
    assert key in str(error.value) and "proxied.toml" in str(error.value)
