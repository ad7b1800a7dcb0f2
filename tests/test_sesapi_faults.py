"""Fault rules at stage API, with boto3 on the other end: what the SDK raises, what it retries,
and what the ledger holds. Retrying clients wait on a virtual clock (harness.runner.sdk_clock),
so their backoff costs no wall time."""

from __future__ import annotations

import os

import pytest

from harness.base.clock import VirtualClock
from harness.core.plan import Rule
from harness.runner import sdk_clock
from harness.server.fake_ses import FakeSES
from tests.helpers import message

boto3 = pytest.importorskip("boto3")
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError  # noqa: E402

os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")


def rule(**table) -> Rule:
    return Rule.from_dict({"stage": "API", **table})


def raw(n: int) -> dict:
    return {"Raw": {"Data": message(n)}}


def test_reply_rule_answers_with_the_status_and_sess_code_for_it():
    with FakeSES(faults=[rule(nth=1, action="reply", code=503, text="Service busy")]) as ses:
        client = ses.boto3_client("sesv2")
        with pytest.raises(ClientError) as refused:
            client.send_email(Content=raw(1))
        client.send_email(Content=raw(2))
    response = refused.value.response
    assert response["Error"]["Code"] == "ServiceUnavailable"
    assert response["Error"]["Message"] == "Service busy"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert [m.message_id for m in ses.messages] == ["<msg-2@test.example>"]
    (fault,) = ses.faults
    assert (fault.stage, fault.source, fault.action, fault.session, fault.command) == (
        "API",
        "rule",
        "reply",
        0,
        1,
    )


def test_reply_rule_can_name_the_error_code_for_v1_too():
    table = {"first": 1, "action": "reply", "code": 400, "error": "Throttling", "text": "Slow"}
    with FakeSES(faults=[rule(**table)]) as ses:
        client = ses.boto3_client("ses")
        with pytest.raises(ClientError) as refused:
            client.send_raw_email(RawMessage={"Data": message(1)})
    assert refused.value.response["Error"] == {
        "Type": "Sender",
        "Code": "Throttling",
        "Message": "Slow",
    }


def test_drop_cuts_the_connection_without_an_answer_and_records_nothing():
    with FakeSES(faults=[rule(nth=1, action="drop")]) as ses:
        client = ses.boto3_client("sesv2")
        with pytest.raises(ConnectionClosedError):
            client.send_email(Content=raw(1))
        client.send_email(Content=raw(2))
    assert [m.message_id for m in ses.messages] == ["<msg-2@test.example>"]


def test_drop_after_accept_records_it_and_a_retrying_sdk_sends_it_twice():
    clock = VirtualClock()
    faults = [rule(nth=1, action="drop_after_accept")]
    with FakeSES(clock=clock, faults=faults) as ses, sdk_clock.using(clock):
        client = ses.boto3_client("sesv2", retries={"mode": "standard", "max_attempts": 3})
        answer = client.send_email(Content=raw(1))
    copies = [m for m in ses.messages if m.message_id == "<msg-1@test.example>"]
    assert len(copies) == 2  # the SDK believes it sent one
    assert [c.acknowledged for c in copies] == [False, True]
    assert answer["MessageId"] == copies[1].ses_id
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1


def test_drop_after_accept_without_retries_is_a_loss_the_client_cannot_tell_from_a_failure():
    with FakeSES(faults=[rule(nth=1, action="drop_after_accept")]) as ses:
        client = ses.boto3_client("ses")
        with pytest.raises(ConnectionClosedError):
            client.send_raw_email(RawMessage={"Data": message(1)})
    (record,) = ses.messages
    assert record.acknowledged is False
    assert record.via == "api-v1"


def test_delay_passes_on_the_virtual_clock_and_then_the_send_goes_through():
    clock = VirtualClock()
    with FakeSES(clock=clock, faults=[rule(nth=1, action="delay", delay_s=30.0)]) as ses:
        ses.boto3_client("sesv2").send_email(Content=raw(1))
    assert clock.elapsed() == 30.0
    assert len(ses.messages) == 1
    assert ses.messages[0].at == clock.now()


def test_stall_never_answers_and_the_sdk_read_timeout_ends_it():
    with FakeSES(faults=[rule(nth=1, action="stall")]) as ses:
        client = ses.boto3_client("sesv2", read_timeout=0.5)
        with pytest.raises(ReadTimeoutError):
            client.send_email(Content=raw(1))
        client.send_email(Content=raw(2))
    assert [m.message_id for m in ses.messages] == ["<msg-2@test.example>"]
    assert [f.action for f in ses.faults] == ["stall"]


def test_greylisting_by_attempt_is_ridden_out_by_standard_retries():
    clock = VirtualClock()
    greylist = rule(attempts=2, action="reply", code=503, text="Try again")
    with FakeSES(clock=clock, faults=[greylist]) as ses, sdk_clock.using(clock):
        client = ses.boto3_client("sesv2", retries={"mode": "standard", "max_attempts": 3})
        answer = client.send_email(Content=raw(1))
    assert answer["ResponseMetadata"]["RetryAttempts"] == 2
    assert len(ses.messages) == 1
    assert 0 < clock.elapsed() <= 1 + 2  # standard mode: random up to 2**attempt s each


def test_legacy_retries_sleep_on_the_virtual_clock_not_the_wall():
    clock = VirtualClock()
    faults = [rule(first=3, action="reply", code=500)]
    with FakeSES(clock=clock, faults=faults) as ses, sdk_clock.using(clock):
        client = ses.boto3_client("ses", retries={"mode": "legacy", "max_attempts": 4})
        client.send_raw_email(RawMessage={"Data": message(1)})
    assert len(ses.messages) == 1
    assert clock.elapsed() > 0


def test_probability_faults_repeat_for_the_same_seed():
    def outcomes() -> list[bool]:
        faults = [rule(probability=0.5, action="reply", code=500, text="Internal")]
        with FakeSES(seed=5, faults=faults, rate_per_s=None) as ses:
            client = ses.boto3_client("sesv2")
            results = []
            for n in range(12):
                try:
                    client.send_email(Content=raw(n))
                    results.append(True)
                except ClientError:
                    results.append(False)
            return results

    first = outcomes()
    assert first == outcomes()
    assert True in first and False in first


def test_an_api_rule_only_fires_on_api_sends_not_on_smtp():
    with FakeSES(faults=[rule(action="reply", code=500)]) as ses, ses.endpoint.connect() as smtp:
        smtp.sendmail("app@example.com", ["user@example.com"], message(1))
    assert len(ses.messages) == 1
    assert ses.faults == []
