"""The SES API as SES answers it: v1's request id header, an account's send rate when the plan
switched the limit off, a message rejected for good scored as a reported refusal, and SES
message ids reproducible in scenario runs and unique across `serve` runs."""

from __future__ import annotations

import smtplib

import pytest

from harness.base.clock import VirtualClock
from harness.runner.scoring import MessageClass, score_case
from harness.runner.strategies import BUILTINS
from harness.runner.strategy import ClaimStatus, OutgoingMessage
from harness.server.fake_ses import FakeSES
from tests.helpers import message

pytest.importorskip("boto3")


def test_v1_answers_carry_the_request_id_header_that_matches_their_body():
    with FakeSES(profile="plain") as ses:
        ses_v1 = ses.boto3_client("ses")
        for answer in (
            ses_v1.get_send_quota(),
            ses_v1.send_raw_email(RawMessage={"Data": message(1)}),
            ses_v1.list_templates(),
        ):
            meta = answer["ResponseMetadata"]
            assert meta["HTTPHeaders"]["x-amzn-requestid"] == meta["RequestId"]


@pytest.mark.parametrize(
    ("profile", "rate"),
    [("ses", 14.0), ("ses-sandbox", 1.0), ("plain", 14.0)],
)
def test_with_the_rate_off_the_account_still_reports_a_real_send_rate(profile, rate):
    """No account reports MaxSendRate -1 (only Max24HourSend has "-1: unlimited", DOC); a rate
    switched off reports the profile's, so an auto-throttling client divides by something real."""
    with FakeSES(profile=profile, rate_per_s=None, daily_quota=None) as ses:
        quota = ses.boto3_client("ses").get_send_quota()
        account = ses.boto3_client("sesv2").get_account()["SendQuota"]
    assert (quota["MaxSendRate"], quota["Max24HourSend"]) == (rate, -1.0)
    assert (account["MaxSendRate"], account["Max24HourSend"]) == (rate, -1.0)


def test_an_api_message_rejected_for_good_is_a_reported_refusal_not_given_up():
    clock = VirtualClock(latency_s=0.02)
    messages = [
        OutgoingMessage(f"<m{n}@test.example>", f"app{n}@example.com", (f"u{n}@x.example",), b"")
        for n in range(2)
    ]
    messages = [
        OutgoingMessage(m.id, m.sender, m.recipients, message(n, sender=m.sender))
        for n, m in enumerate(messages)
    ]
    # The sandbox refuses unverified identities with MessageRejected: app1 is not verified.
    verified = ["app0@example.com", "u0@x.example"]
    with FakeSES(profile="ses-sandbox", clock=clock, verified=verified) as ses:
        claims = list(BUILTINS["sdk-v2-standard"].send_batch(messages, ses.endpoint, clock))
        card = score_case(
            messages,
            claims,
            sessions=ses.sessions,
            accepted=ses.messages,
            faults=ses.faults,
            limits=ses.plan.resolved_limits(),
            latency_s=0.02,
            elapsed_s=1.0,
        )
    assert [c.status for c in claims] == [ClaimStatus.SENT, ClaimStatus.FAILED]
    assert [v.cls for v in card.messages] == [
        MessageClass.DELIVERED_ONCE,
        MessageClass.REJECTED_REPORTED,
    ]
    assert card.score["delivered_once_score"] == 1.0
    (fault,) = ses.faults
    assert (fault.sender, fault.recipient, fault.permanent) == (
        "app1@example.com",
        "u1@x.example",
        True,
    )


def test_a_throttled_api_message_is_not_a_refusal_for_good():
    with FakeSES(profile="ses", rate_per_s=1.0, burst=1) as ses:
        client = ses.boto3_client("sesv2")
        client.send_email(Content={"Raw": {"Data": message(1)}})
        with pytest.raises(Exception, match="Maximum sending rate"):
            client.send_email(Content={"Raw": {"Data": message(2)}})
    assert [(f.name, f.permanent) for f in ses.faults] == [("rate_per_s", False)]


def ses_ids(salt: str = "") -> list[str]:
    """The SES ids of an SMTP and an API message, sent at the same virtual time."""
    with FakeSES(profile="plain", seed=7, clock=VirtualClock()) as ses:
        ses._state.engine.id_salt = salt  # what serve sets through FakeSES.id_salt before start
        with smtplib.SMTP(ses.host, ses.port) as smtp:
            smtp.sendmail("a@example.com", ["b@example.com"], message(1))
        ses.boto3_client("sesv2").send_email(Content={"Raw": {"Data": message(2)}})
        return [m.ses_id for m in ses.messages]


def test_ses_ids_are_reproducible_from_the_seed_in_scenario_runs():
    assert ses_ids() == ses_ids()


def test_ses_ids_differ_between_server_runs_with_a_salt_of_their_own():
    assert set(ses_ids("run-a")).isdisjoint(ses_ids("run-b"))


def test_serve_runs_with_one_seed_give_different_ses_ids_and_so_does_a_reset(start):
    ids = []
    for _ in range(2):
        server = start("--seed", "7", "--profile", "plain")
        for _ in range(2):
            with smtplib.SMTP(*server.smtp) as smtp:
                smtp.sendmail("a@example.com", ["b@example.com"], message(1))
            ids += [m["ses_id"] for m in server.api("GET", "/api/messages")[1]]
            server.api("POST", "/api/reset", {})  # numbering starts again; the ids do not
        server.stop()
    # 0100 and the time in ms, then the uuid: the seed's alone would be the same in all four.
    assert len({ses_id.split("-", 1)[1] for ses_id in ids}) == 4
