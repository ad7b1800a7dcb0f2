"""Seeded outcomes for ordinary addresses, as rules: bounce, complain, reject_virus and
delivery_delay at stage EOM and API. The message is accepted as usual; its events follow from
what its record holds, the same seed giving the same outcomes; Reject and DeliveryDelay are
shaped as AWS documents them and only in the event-publishing form; the score counts mail sent
to any address whose hard bounce or complaint SES had published."""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import Rule
from harness.base.clock import VirtualClock
from harness.base.event_plan import iso, plan
from harness.base.records import MessageRecord
from harness.core.engine import Engine
from harness.core.errors import PlanError
from harness.core.outcomes import Bounce, Fate
from harness.core.plan import Plan
from harness.runner.matrix import run_case
from harness.runner.scenario import load_scenario
from harness.runner.scoring import sent_to_bounced
from harness.server.fake_ses import FakeSES
from tests.serve_process import ServeProcess

SIMPLE = {"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}}


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


def _server(clock: VirtualClock, *specs: str) -> FakeSES:
    rules = [Rule.from_spec(spec) for spec in specs]
    return FakeSES(clock=clock, faults=rules, idle_timeout_s=None)


def _smtp(ses: FakeSES, *rcpts: str) -> str:
    with smtplib.SMTP(ses.host, ses.port) as smtp:
        smtp.ehlo()
        smtp.mail("app@example.com")
        for rcpt in rcpts:
            smtp.rcpt(rcpt)
        code, reply = smtp.data(b"Subject: t\r\nTo: x@example.com\r\n\r\nhi\r\n")
    assert code == 250
    return reply.decode().split()[-1]


def _v2(ses: FakeSES, *rcpts: str) -> str:
    pytest.importorskip("boto3")
    client = ses.boto3_client("sesv2")
    return client.send_email(
        FromEmailAddress="app@example.com", Destination={"ToAddresses": list(rcpts)}, Content=SIMPLE
    )["MessageId"]


def _v1(ses: FakeSES, *rcpts: str) -> str:
    pytest.importorskip("boto3")
    return ses.boto3_client("ses").send_email(
        Source="app@example.com",
        Destination={"ToAddresses": list(rcpts)},
        Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}},
    )["MessageId"]


def _events(ses: FakeSES, ses_id: str) -> list:
    return [e for e in ses.events_hub.events(pending=True) if e.ses_id == ses_id]


# --- the rules ------------------------------------------------------------------------------


def test_outcome_rules_load_from_every_form_and_dump_back() -> None:
    rule = Rule.from_spec("stage=EOM,probability=0.05,action=bounce")
    assert rule.action == Bounce() and rule.to_dict()["action"] == "bounce"
    table = {"stage": "API", "action": "complain", "feedback_type": "fraud", "after_s": 30}
    assert Rule.from_dict(Rule.from_dict(table).to_dict()) == Rule.from_dict(table)
    spec = "stage=EOM,action=delivery_delay,delay_type=MailboxFull,delay_s=3600,then=bounce"
    assert Rule.from_spec(spec).to_dict()["then"] == "bounce"
    assert Rule.from_spec("stage=API,action=reject_virus").action.kind == "reject_virus"


@pytest.mark.parametrize(
    ("spec", "key", "allowed"),
    [
        ("stage=RCPT,action=bounce", "action", "stage = EOM or API"),
        ("stage=EOM,action=bounce,bounce_type=Soft", "bounce_type", "Permanent"),
        ("stage=EOM,action=bounce,bounce_subtype=MailboxFull", "bounce_subtype", "NoEmail"),
        ("stage=EOM,action=bounce,status=9.1.1", "status", "5.1.1"),
        ("stage=EOM,action=complain,feedback_type=spam", "feedback_type", "not-spam"),
        ("stage=EOM,action=complain,code=550", "code", "feedback_type"),
        ("stage=EOM,action=delivery_delay,delay_type=Slow", "delay_type", "MailboxFull"),
        ("stage=EOM,action=delivery_delay,then=drop", "then", "delivery"),
        ("stage=EOM,action=bounce,after_s=-1", "after_s", ">= 0"),
    ],
)
def test_a_bad_outcome_field_is_a_one_line_error_naming_it(
    spec: str, key: str, allowed: str
) -> None:
    with pytest.raises(PlanError) as raised:
        Rule.from_spec(spec)
    assert raised.value.key == key
    assert allowed in str(raised.value) and "\n" not in str(raised.value)


def test_a_scenario_file_names_the_bad_outcome_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        '[workload]\ncount = 3\n[plan]\nprofile = "ses"\n'
        '[[plan.faults]]\nstage = "EOM"\naction = "bounce"\nbounce_type = "Hard"\n'
    )
    with pytest.raises(PlanError) as raised:
        load_scenario(path)
    assert raised.value.key == "plan.faults[0].bounce_type" and str(path) in str(raised.value)
    assert "allowed: Undetermined, Permanent, Transient" in str(raised.value)


def test_serve_takes_an_outcome_fault_flag_and_refuses_a_bad_one() -> None:
    from tests.test_serve_cli import run_cli

    result = run_cli("--fault", "stage=EOM,probability=0.05,action=bounce,bounce_type=Hard")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "key 'bounce_type'" in result.stderr and "Permanent" in result.stderr
    server = ServeProcess("--fault", "stage=EOM,action=bounce,bounce_subtype=NoEmail")
    try:
        with smtplib.SMTP(*server.smtp) as smtp:
            smtp.sendmail("app@example.com", ["gone@example.com"], b"Subject: x\r\n\r\nhi\r\n")
        status, listed = server.api("GET", "/api/ses-events?pending=1&kind=Bounce")
        assert status == 200
        [bounce] = [e["event"]["bounce"] for e in listed["events"]]
        assert (bounce["bounceType"], bounce["bounceSubType"]) == ("Permanent", "NoEmail")
    finally:
        server.stop()


# --- what becomes of the message ------------------------------------------------------------


@pytest.mark.parametrize(("stage", "send"), [("EOM", _smtp), ("API", _v2), ("API", _v1)])
def test_a_seeded_bounce_is_accepted_then_bounces(clock, stage: str, send) -> None:  # type: ignore[no-untyped-def]
    spec = f"stage={stage},recipient=*@gone.example,action=bounce,diagnostic=smtp; 550 no such user"
    with _server(clock, spec) as ses:
        ses_id = send(ses, "a@gone.example", "b@fine.example")
        assert ses.messages[0].ses_id == ses_id and ses.messages[0].acknowledged
        events = _events(ses, ses_id)
        assert [(e.kind, e.recipients, e.at - ses.messages[0].at) for e in events] == [
            ("Send", ("a@gone.example", "b@fine.example"), 0.0),
            ("Delivery", ("b@fine.example",), 2.0),
            ("Bounce", ("a@gone.example",), 2.0),
        ]
        bounce = events[2].body["bounce"]
        assert bounce["bouncedRecipients"] == [
            {
                "emailAddress": "a@gone.example",
                "action": "failed",
                "status": "5.1.1",
                "diagnosticCode": "smtp; 550 no such user",
            }
        ]
        assert events[2].notification()["notificationType"] == "Bounce"
        fired = [f for f in ses.faults if f.action == "bounce"]
        assert len(fired) == 1


def test_a_seeded_complaint_follows_a_delivery(clock) -> None:
    with _server(clock, "stage=EOM,action=complain,feedback_type=fraud,after_s=60") as ses:
        ses_id = _smtp(ses, "reader@example.com")
        kinds = [(e.kind, e.at - ses.messages[0].at) for e in _events(ses, ses_id)]
        assert kinds == [("Send", 0.0), ("Delivery", 2.0), ("Complaint", 60.0)]
        complaint = _events(ses, ses_id)[-1].body["complaint"]
        assert complaint["complaintFeedbackType"] == "fraud"
        assert complaint["complainedRecipients"] == [{"emailAddress": "reader@example.com"}]


def test_reject_virus_publishes_a_reject_and_nothing_else_and_only_in_the_publishing_form(
    clock,
) -> None:
    with _server(clock, "stage=EOM,action=reject_virus") as ses:
        ses_id = _smtp(ses, "reader@example.com", "success@simulator.amazonses.com")
        clock.advance(60.0)
        events = _events(ses, ses_id)
        assert [e.kind for e in events] == ["Send", "Reject"]
        assert events[1].body["reject"] == {"reason": "Bad content"}
        assert events[1].body["eventType"] == "Reject"
        assert events[1].notification() is None  # feedback notifications carry no Reject


@pytest.mark.parametrize("then", ["delivery", "bounce"])
def test_a_delivery_delay_then_its_final_event(clock, then: str) -> None:
    spec = f"stage=EOM,action=delivery_delay,delay_type=MailboxFull,delay_s=3600,then={then}"
    with _server(clock, spec) as ses:
        ses_id = _smtp(ses, "full@example.com")
        at = ses.messages[0].at
        events = _events(ses, ses_id)
        assert [(e.kind, e.at - at) for e in events] == [
            ("Send", 0.0),
            ("DeliveryDelay", 2.0),
            ("Delivery" if then == "delivery" else "Bounce", 3600.0),
        ]
        delay = events[1].body["deliveryDelay"]
        assert delay["delayType"] == "MailboxFull"
        assert delay["expirationTime"] == iso(at + 3600.0)  # SES stops trying then
        assert delay["delayedRecipients"][0]["emailAddress"] == "full@example.com"
        assert delay["delayedRecipients"][0]["status"].startswith("4.")
        assert set(delay) >= {"timestamp", "delayType", "expirationTime", "reportingMTA"}
        assert events[1].notification() is None
        if then == "bounce":
            bounce = events[2].body["bounce"]
            assert (bounce["bounceType"], bounce["bounceSubType"]) == ("Transient", "General")
        assert [e.kind for e in ses.events] == ["Send"]  # nothing else published yet


def test_the_fluent_arrangement_seeds_outcomes_too(clock) -> None:
    with _server(clock) as server:
        view = server.view()
        rule = view.on("EOM", recipient="b*").bounce("Transient", "MailboxFull")
        ses_id = _smtp(server, "b@example.com")
        assert rule.call_count == 1
        bounce = next(e for e in _events(server, ses_id) if e.kind == "Bounce")
        assert bounce.body["bounce"]["bounceSubType"] == "MailboxFull"


# --- determinism ----------------------------------------------------------------------------


def _fates(seed: int, probability: float, count: int) -> list[tuple]:
    """What a fresh engine decides for `count` one-recipient messages in one session."""
    rules = (
        Rule.from_spec(f"stage=EOM,probability={probability},action=bounce"),
        Rule.from_spec(f"stage=EOM,probability={probability},action=complain"),
    )
    engine = Engine(Plan(profile="plain", seed=seed, faults=rules), now=0.0)
    session, _ = engine.connect(now=0.0)
    out = []
    for n in range(count):
        decision = engine.end_of_data(
            session, now=float(n), sender="a@x", recipients=(f"u{n}@y",), key=f"<{n}@x>", size=10
        )
        out.append(tuple((f.action.kind, f.recipients) for f in decision.fates))
    return out


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), probability=st.floats(0.0, 1.0), count=st.integers(1, 40))
def test_the_same_seed_gives_the_same_outcomes(seed: int, probability: float, count: int) -> None:
    assert _fates(seed, probability, count) == _fates(seed, probability, count)


def test_the_rate_is_near_the_probability_and_the_seed_changes_which() -> None:
    first, second = _fates(7, 0.05, 2000), _fates(8, 0.05, 2000)
    bounced = [n for n, fates in enumerate(first) if fates and fates[0][0] == "bounce"]
    assert 60 <= len(bounced) <= 140  # 5 % of 2000 is 100; fixed seeds, so never flaky
    assert first != second


def test_outcomes_follow_from_the_record_alone() -> None:
    record = MessageRecord(
        1, 1, "id-1", "a@x", ("u@y", "v@y"), None, None, (), 1, "", 100.0, 0.0, True,
        fates=(Fate(Bounce(), ("u@y",), "rule:r"),),
    )  # fmt: skip
    assert plan(record, 100.0) == plan(record, 100.0)
    assert [(p.kind, p.recipients) for p in plan(record, 100.0)] == [
        ("Send", ("u@y", "v@y")),
        ("Delivery", ("v@y",)),
        ("Bounce", ("u@y",)),
    ]


# --- the score ------------------------------------------------------------------------------


def _record(seq: int, rcpt: str, at: float, *fates: Fate) -> MessageRecord:
    return MessageRecord(
        seq, 1, f"id-{seq}", "a@x", (rcpt,), None, None, (), 1, "", at, 0.0, True, fates=fates
    )


def test_sent_to_bounced_counts_ordinary_addresses_that_bounced_or_were_listed() -> None:
    bounced = Fate(Bounce(), ("u@y",), "rule:r")
    listed = Fate(Bounce("Permanent", "OnAccountSuppressionList", after_s=0.0), ("u@y",), "list")
    accepted = [
        _record(1, "u@y", 0.0, bounced),  # its Bounce is published at 2.0
        _record(2, "u@y", 1.0),  # sent before that: not counted
        _record(3, "u@y", 5.0, listed),  # after: counted (and SES bounced it from the list)
        _record(4, "v@y", 5.0),
    ]
    assert sent_to_bounced(accepted) == 1


BOUNCING_LIST = """
name = "seeded-bounces"
description = "An ordinary list mailed twice, an hour apart; SES bounces 5 % and 3 % complain."
latency_s = 0.02
events = true

[workload]
count = 120
seed = 3
mailings = 2
burst_size = 60
pause_s = 3600.0

[plan]
profile = "ses"
seed = 3

[[plan.faults]]
stage = "EOM"
probability = 0.05
action = "bounce"

[[plan.faults]]
stage = "EOM"
probability = 0.03
action = "complain"

[contract]
sent_to_bounced = 0
duplicated = 0
silently_lost = 0
"""


def test_a_bounce_handling_scenario_works_for_an_ordinary_list(tmp_path: Path) -> None:
    path = tmp_path / "seeded-bounces.toml"
    path.write_text(BOUNCING_LIST)
    scenario = load_scenario(path)
    careful = run_case(scenario, "robust")
    assert careful["passed"], careful["expectations"]
    assert careful["score"]["abandoned"] >= 1  # it left the bounced addresses out
    careless = run_case(scenario, "reconnect")
    assert careless["score"]["sent_to_bounced"] >= 1
    assert not careless["passed"]
