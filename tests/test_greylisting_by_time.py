"""Time-based greylisting: refused until the first try is S seconds old on the server's clock."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from harness import (
    Claim,
    Endpoint,
    Engine,
    FakeSES,
    OutgoingMessage,
    Plan,
    PlanError,
    Rule,
    Stage,
    VirtualClock,
)
from harness.base.clock import Clock
from harness.runner.matrix import run_case
from harness.runner.scenario import load_scenario
from harness.runner.strategies.session import Session

GREYLIST = "stage=RCPT,greylist_s=300,action=reply,code=451,text=4.7.1 Greylisted"
SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def patient(
    messages: Sequence[OutgoingMessage], endpoint: Endpoint, clock: Clock
) -> Iterator[Claim]:
    """Greylisted? Hang up, come back in five minutes (`tests.test_greylisting_by_time:patient`)."""
    session = Session(endpoint, clock)
    for message in messages:
        for attempt in (1, 2):
            result = session.send(message)
            if result.accepted or attempt == 2:
                yield result.claim(message)
                break
            session.close()
            clock.sleep(300.0)
    session.close()


def test_a_retry_is_refused_until_the_first_try_is_old_enough_however_often_it_comes() -> None:
    engine = Engine(Plan(profile="plain", faults=(Rule.from_spec(GREYLIST),)), now=0.0)
    session, _ = engine.connect(now=0.0)

    def rcpt(now: float, recipient: str = "b@y.example") -> str:
        decision = engine.command(
            session, Stage.RCPT, now=now, sender="a@x.example", recipients=(recipient,)
        )
        return decision.outcome.value

    tries = [rcpt(t) for t in (0.0, 0.0, 1.0, 60.0, 299.9)]  # ten tries would not help either
    assert tries == ["reply"] * 5
    assert rcpt(300.0) == "proceed" and rcpt(301.0) == "proceed"
    assert rcpt(301.0, "other@y.example") == "reply"  # a new pair starts its own wait


def test_greylist_s_is_checked_where_attempts_are_counted() -> None:
    with pytest.raises(PlanError, match=r"greylist_s.*not at MAIL"):
        Rule.from_spec("stage=MAIL,greylist_s=300,action=reply,code=451")
    with pytest.raises(PlanError, match="greylist_s"):
        Rule.from_spec("stage=RCPT,greylist_s=0,action=reply,code=451")


def test_on_a_virtual_clock_waiting_out_the_greylist_costs_no_wall_time() -> None:
    clock = VirtualClock()
    with FakeSES(profile="plain", clock=clock, faults=[Rule.from_spec(GREYLIST)]) as ses:
        with smtplib.SMTP(ses.host, ses.port) as client:
            message = "Message-ID: <g@x>\r\n\r\nhi\r\n"
            for _ in range(3):  # at once, and again: refused each time
                with pytest.raises(smtplib.SMTPRecipientsRefused):
                    client.sendmail("a@x.example", ["b@y.example"], message)
            clock.sleep(300)
            client.sendmail("a@x.example", ["b@y.example"], message)
        assert [m.message_id for m in ses.messages] == ["<g@x>"]
        assert [f.name for f in ses.faults] == ["RCPT:reply"] * 3


def test_the_greylisting_scenario_is_beaten_by_waiting_not_by_retrying() -> None:
    scenario = load_scenario(SCENARIOS / "greylisting.toml")
    (rule,) = scenario.plan.faults
    assert rule.match.greylist_s == 300.0 and rule.match.attempts is None

    # A client that waits five minutes meets the contract (every message once), on virtual time.
    waited = run_case(scenario, "tests.test_greylisting_by_time:patient")
    assert waited["passed"] and waited["score"]["delivered_once"] == 300
    # A backoff of seconds gives up on every message before the five minutes are up.
    assert run_case(scenario, "backoff")["score"]["delivered_once"] == 0
    # robust, greylisted twice, waits five minutes: the reference strategy meets the contract.
    robust = run_case(scenario, "robust")
    assert robust["passed"] and robust["score"]["delivered_once"] == 300
    assert all(e.check(robust["score"][e.metric]) for e in scenario.contract)
