"""Built-in strategies on a real fake server (loopback sockets, virtual clock)."""

from __future__ import annotations

import random
import sys
import textwrap

import pytest

from harness import FakeSES, PlanError, Rule, VirtualClock
from harness.runner.matrix import run_case
from harness.runner.resolve import resolve_strategy
from harness.runner.scenario import builtin_scenarios, load_scenario
from harness.runner.strategies import BUILTINS, UNAVAILABLE, backoff, paced, reconnect, robust
from harness.runner.strategies.session import Session
from harness.runner.strategy import ClaimStatus, OutgoingMessage


def batch(count: int, domain: str = "example.com") -> list[OutgoingMessage]:
    return [
        OutgoingMessage(
            f"<m{n}@example.com>",
            "app@example.com",
            (f"user{n}@{domain}",),
            f"Message-ID: <m{n}@example.com>\r\nSubject: {n}\r\n\r\n.dot-stuffed line\r\n".encode(),
        )
        for n in range(count)
    ]


def run(send_batch, messages, *, latency_s=0.01, **server):
    clock = VirtualClock(latency_s=latency_s)
    with FakeSES(clock=clock, seed=1, **server) as ses:
        claims = list(send_batch(messages, ses.endpoint, clock))
        ses.ledger.wait_for(lambda lg: all(not s.open for s in lg.sessions))
    return claims, ses.ledger, clock


def copies(ledger, message):
    return sum(1 for m in ledger.messages if m.message_id == message.id)


# --- the cap scenario, every strategy -------------------------------------------------------

CAP = {
    "naive": 350,
    "naive-continue": 350,
    "retry-same-session": 350,
    "reconnect": 1000,
    "rotate": 1000,
    "backoff": 1000,
    "paced": 998,  # never resends: the message that meets each 421 is reported failed
    "robust": 1000,
    # The SES API through boto3: no session cap there, the throttle ridden out by retries.
    "sdk-v2-standard": 1000,
    "sdk-v2-adaptive": 1000,
    "sdk-v1-legacy": 1000,
}


def test_every_builtin_has_a_cap_expectation_here():
    assert set(CAP) == set(BUILTINS) | set(UNAVAILABLE)  # sdk-* need the aws extra


@pytest.mark.parametrize("strategy", list(CAP))
def test_builtin_strategy_on_the_session_cap_scenario(strategy):
    if strategy in UNAVAILABLE:
        pytest.skip(UNAVAILABLE[strategy])
    scenario = load_scenario(next(p for p in builtin_scenarios() if p.stem == "session-cap"))
    case = run_case(scenario, strategy)
    score = case["score"]
    assert (score["messages"], score["delivered_once"]) == (1000, CAP[strategy])
    assert score["duplicated"] == 0 and score["silently_lost"] == 0
    assert case["error"] is None


# --- one behaviour each, on small batches ---------------------------------------------------


def test_session_reports_a_loss_after_the_final_dot_as_ambiguous():
    clock = VirtualClock()
    rule = Rule.from_spec("stage=EOM,nth=1,action=drop_after_accept")
    with FakeSES(clock=clock, faults=[rule]) as ses:
        session = Session(ses.endpoint, clock)
        first, second = (session.send(m) for m in batch(2))
        session.close()
    assert first.ambiguous and not first.accepted
    assert second.accepted and second.code == 250


def test_session_reports_a_loss_before_the_data_as_safe_to_resend():
    clock = VirtualClock()
    with FakeSES(clock=clock, faults=[Rule.from_spec("stage=DATA,nth=1,action=drop")]) as ses:
        attempt = Session(ses.endpoint, clock).send(batch(1)[0])
    assert attempt.stage == "DATA" and attempt.code is None and not attempt.ambiguous


def test_session_dot_stuffs_lines_that_start_with_a_dot():
    messages = batch(1)
    claims, ledger, _ = run(robust.send_batch, messages)
    assert claims[0].status is ClaimStatus.SENT
    assert ledger.messages[0].data.endswith(b"\r\n.dot-stuffed line\r\n")


def test_robust_does_not_resend_after_an_ambiguous_loss_but_reconnect_does():
    rule = Rule.from_spec("stage=EOM,nth=2,action=drop_after_accept")
    messages = batch(3)
    claims, ledger, _ = run(robust.send_batch, messages, faults=[rule])
    assert [copies(ledger, m) for m in messages] == [1, 1, 1]
    assert claims[1].status is ClaimStatus.UNCERTAIN and "ambiguous" in (claims[1].reply_text or "")
    _, ledger, _ = run(reconnect.send_batch, messages, faults=[rule])
    assert [copies(ledger, m) for m in messages] == [1, 2, 1]


def test_robust_never_retries_a_5xx():
    messages = batch(3, domain="unverified.example.net")
    claims, ledger, _ = run(robust.send_batch, messages, verified=("@example.com",))
    assert [c.reply_code for c in claims] == [554, 554, 554]
    assert len([f for f in ledger.faults if f.name == "verified"]) == 3


def test_backoff_retries_a_5xx_like_any_failure():
    messages = batch(1, domain="unverified.example.net")
    _, ledger, _ = run(backoff.send_batch, messages, verified=("@example.com",))
    assert len([f for f in ledger.faults if f.name == "verified"]) == 5


def test_robust_stops_the_batch_when_the_daily_quota_is_spent():
    messages = batch(5)
    claims, ledger, _ = run(robust.send_batch, messages, daily_quota=2)
    assert [c.status for c in claims] == [ClaimStatus.SENT] * 2 + [ClaimStatus.FAILED]
    assert len(ledger.messages) == 2
    assert len([f for f in ledger.faults if f.name == "daily_quota"]) == 1


def test_robust_reconnects_before_the_idle_timeout_instead_of_meeting_it():
    from harness.runner.workload import Workload

    clock = VirtualClock(latency_s=0.01)
    messages = batch(4)
    with FakeSES(clock=clock, seed=1) as ses:
        workload = Workload(messages, [0.0, 0.0, 30.0, 30.0], clock)  # a second burst at 30 s
        claims = list(robust.send_batch(workload, ses.endpoint, clock))
    assert all(c.status is ClaimStatus.SENT for c in claims)
    # The stale connection's QUIT may meet SES's idle 451; no message ever does.
    assert [f.stage for f in ses.ledger.faults if f.name == "idle_timeout_s"] == ["QUIT"]
    assert len(ses.ledger.sessions) == 2 and len(ses.ledger.messages) == 4


def test_paced_stays_under_the_send_rate_counted_in_recipients():
    messages = [
        OutgoingMessage(m.id, m.sender, (m.recipients[0], "b@example.com"), m.data)
        for m in batch(40)
    ]
    claims, ledger, clock = run(paced.send_batch, messages, latency_s=0.001)
    assert all(c.status is ClaimStatus.SENT for c in claims)
    assert not [f for f in ledger.faults if f.name == "rate_per_s"]
    assert clock.elapsed() >= (80 - 14) / 14  # 80 recipients through a 14/s bucket


def test_backoff_aws_ladder_waits_5_10_30_seconds_then_20_minutes():
    rule = Rule.from_spec("stage=MAIL,first=4,action=reply,code=451,text=Try later")
    # Without SES's idle timeout: waits on an open connection would otherwise meet it.
    claims, _, clock = run(
        backoff.send_batch_aws_ladder, batch(1), latency_s=0.0, faults=[rule], idle_timeout_s=None
    )
    assert claims[0].status is ClaimStatus.SENT
    assert clock.elapsed() == pytest.approx(5 + 10 + 30 + 1200)


def test_exponential_waits_grow_stay_capped_and_repeat_for_a_seed():
    policy = backoff.Exponential(base_s=1.0, factor=2.0, cap_s=5.0, jitter=0.5)
    waits = [policy.wait_s(n, random.Random(3)) for n in range(1, 6)]
    assert waits == [policy.wait_s(n, random.Random(3)) for n in range(1, 6)]
    ceilings = [1.0, 2.0, 4.0, 5.0, 5.0]
    assert all(c / 2 <= w <= c for w, c in zip(waits, ceilings, strict=True))


# --- resolving strategies by name -----------------------------------------------------------


def test_resolve_finds_builtins_by_name():
    for name, builtin in BUILTINS.items():
        assert resolve_strategy(name) == (name, builtin.send_batch)


def test_resolve_imports_module_attr_from_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "mymail_strategy.py").write_text(
        textwrap.dedent(
            """
            from harness.runner.strategy import Claim, ClaimStatus

            def send_batch(messages, endpoint, clock):
                return [Claim(m.id, ClaimStatus.NOT_ATTEMPTED) for m in messages]
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    name, send_batch = resolve_strategy("mymail_strategy:send_batch")
    assert name == "mymail_strategy:send_batch"
    assert [c.status for c in send_batch(batch(2), None, None)] == [ClaimStatus.NOT_ATTEMPTED] * 2


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("robst", "is not a known strategy"),
        ("no_such_module_here:send", "cannot import"),
        ("harness.runner.strategies.robust:nothing", "has no 'nothing'"),
        ("harness.runner.strategies.robust:PER_SESSION", "is not callable"),
    ],
)
def test_a_bad_strategy_spec_says_why_and_lists_the_builtins(spec, problem):
    with pytest.raises(PlanError) as raised:
        resolve_strategy(spec)
    assert raised.value.key == ""  # no key of a file: the message names the strategy itself
    assert str(raised.value).startswith(("strategy '", f"'{spec}'"))
    assert problem in str(raised.value)
    if problem == "is not a known strategy":
        assert all(name in raised.value.allowed for name in BUILTINS)


@pytest.mark.parametrize("strategy", ["naive", "robust"])
def test_strategies_name_themselves_without_looking_up_the_machine(strategy, monkeypatch):
    # smtplib looks up the machine's own name for EHLO on every connection unless told one:
    # system calls per connection, DNS on some machines, and an EHLO line that varies by host.
    import socket

    def looked_up(*args):
        raise AssertionError("a strategy's connection looked up the machine's name")

    monkeypatch.setattr(socket, "getfqdn", looked_up)
    monkeypatch.setattr(socket, "gethostbyname", looked_up)
    _, send_batch = resolve_strategy(strategy)
    claims, ledger, _ = run(send_batch, batch(3))
    assert [c.status for c in claims] == [ClaimStatus.SENT] * 3
    ehlos = [
        line.text for s in ledger.sessions for line in s.transcript if line.text.startswith("EHLO")
    ]
    assert ehlos and set(ehlos) == {"EHLO [127.0.0.1]"}
