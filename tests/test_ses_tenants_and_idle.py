"""SES's newer facts: tenants named by X-SES-TENANT (SMTP) and TenantName (API v2), in the
ledger and in rule matchers; the idle timeout's two kinds of evidence, each a profile."""

from __future__ import annotations

import smtplib

import pytest

from harness import PROFILES, FakeSES, Plan, PlanError, Rule
from harness.core.engine import Engine
from harness.core.plan import Stage


def message(n: int, tenant: str | None) -> bytes:
    head = f"X-SES-TENANT: {tenant}\r\n" if tenant else ""
    return f"{head}Message-ID: <t{n}@example.com>\r\nSubject: {n}\r\n\r\nhi\r\n".encode()


def test_the_smtp_tenant_header_is_recorded_and_a_rule_can_match_it():
    rule = Rule.from_spec("stage=EOM,tenant=blue-*,action=reply,code=554,text=Tenant paused")
    with (
        FakeSES(profile="ses", faults=[rule], rate_per_s=None) as ses,
        smtplib.SMTP(ses.host, ses.port, timeout=10) as client,
    ):
        client.sendmail("a@example.com", ["b@example.com"], message(1, "red-shop"))
        with pytest.raises(smtplib.SMTPDataError) as paused:
            client.sendmail("a@example.com", ["b@example.com"], message(2, "Blue-Shop"))
        client.sendmail("a@example.com", ["b@example.com"], message(3, None))
    assert paused.value.smtp_code == 554
    assert [(m.message_id, m.tenant) for m in ses.messages] == [
        ("<t1@example.com>", "red-shop"),
        ("<t3@example.com>", None),
    ]


def test_the_api_tenant_name_is_recorded_and_matched_like_the_header():
    rule = Rule.from_spec(
        "stage=API,tenant=blue,action=reply,code=400,error=SendingPausedException"
    )
    with FakeSES(profile="ses", faults=[rule]) as ses:
        client = ses.boto3_client("sesv2")
        content = {"Simple": {"Subject": {"Data": "hi"}, "Body": {"Text": {"Data": "hi"}}}}
        sent = client.send_email(
            FromEmailAddress="a@example.com",
            Destination={"ToAddresses": ["b@example.com"]},
            Content=content,
            TenantName="red",
        )
        with pytest.raises(client.exceptions.SendingPausedException):
            client.send_email(
                FromEmailAddress="a@example.com",
                Destination={"ToAddresses": ["b@example.com"]},
                Content=content,
                TenantName="blue",
            )
    assert [(m.ses_id, m.tenant, m.via) for m in ses.messages] == [
        (sent["MessageId"], "red", "api-v2")
    ]


def test_a_tenant_is_matched_only_where_a_message_names_one():
    with pytest.raises(PlanError) as error:
        Rule.from_spec("stage=MAIL,tenant=blue,action=drop")
    assert "key 'tenant'" in str(error.value) and "stage = EOM or API" in str(error.value)


def test_ses_documents_10_s_idle_and_the_observed_profile_draws_30_to_90_per_session():
    documented = Engine(Plan(profile="ses"), now=0.0)
    assert {documented.idle_timeout_s(n) for n in range(1, 50)} == {10.0}
    observed = Engine(Plan(profile="ses-observed-idle", seed=4), now=0.0)
    drawn = [observed.idle_timeout_s(n) for n in range(1, 200)]
    assert all(30.0 <= t <= 90.0 for t in drawn) and max(drawn) - min(drawn) > 50
    again = Engine(Plan(profile="ses-observed-idle", seed=4), now=0.0)
    assert [again.idle_timeout_s(n) for n in range(1, 200)] == drawn  # seeded
    reason = PROFILES["ses"].evidence["idle_timeout_s"].source
    assert "about 10 seconds" in reason and "30-90" in reason


def test_an_observed_idle_session_is_dropped_with_ses_451_after_its_own_timeout():
    plan = Plan(profile="ses-observed-idle", seed=4, limits={"rate_per_s": None})
    engine = Engine(plan, now=0.0)
    session, _ = engine.connect(now=0.0)
    timeout = engine.idle_timeout_s(session)
    assert engine.idle_deadline(session) == pytest.approx(timeout)
    still = engine.command(session, Stage.NOOP, now=timeout - 0.1)
    assert still.reply is None
    gone = engine.command(session, Stage.NOOP, now=2 * timeout)
    assert str(gone.reply) == "451 4.4.2 Timeout waiting for data from client." and gone.close


def test_a_rules_delay_and_the_tarpits_add_up():
    rule = Rule.from_spec("stage=EOM,action=delay,delay_s=5")
    plan = Plan(profile="microsoft365", limits={"require_auth": False, "tarpit_per_minute": 1})
    engine = Engine(plan.with_faults(rule), now=0.0)
    session, _ = engine.connect(now=0.0)
    sends = [
        engine.end_of_data(
            session,
            now=0.0,
            sender="a@x.example",
            recipients=("b@y.example",),
            key=f"<{n}@x>",
            size=10,
        )
        for n in range(2)
    ]
    assert [d.delay_s for d in sends] == [5.0, 65.0]
    assert [f.name for f in sends[1].fired] == ["EOM:delay", "tarpit_per_minute"]
