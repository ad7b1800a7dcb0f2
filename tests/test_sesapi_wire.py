"""The SES HTTP API on the wire, driven by boto3's own `sesv2` and `ses` clients, unmodified.

Each test asserts on the ledger and on the exception the SDK raises, the way an application
sees it.
"""

from __future__ import annotations

import os
import smtplib

import pytest

from harness.server.fake_ses import FakeSES
from tests.helpers import message

boto3 = pytest.importorskip("boto3")
from botocore.exceptions import ClientError  # noqa: E402

os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

SIMPLE = {"Simple": {"Subject": {"Data": "Hello"}, "Body": {"Text": {"Data": "Hi there."}}}}
TO = {"ToAddresses": ["user@example.com"]}


def raw(n: int, to: str = "user@example.com") -> dict:
    return {"Raw": {"Data": message(n, to=to)}}


@pytest.fixture
def ses():
    with FakeSES(profile="ses", seed=3) as server:
        yield server


def test_v2_send_email_simple_is_recorded_with_an_ses_id_and_its_door(ses):
    client = ses.boto3_client("sesv2")
    answer = client.send_email(FromEmailAddress="app@example.com", Destination=TO, Content=SIMPLE)
    (record,) = ses.messages
    assert answer["MessageId"] == record.ses_id
    assert record.via == "api-v2"
    assert record.session == 0
    assert record.rcpt_tos == ("user@example.com",)
    assert record.subject == "Hello"
    assert record.message_id == f"<{record.ses_id}@email.amazonses.com>"
    assert b"Hi there." in record.data


def test_v2_send_email_raw_keeps_the_message_and_its_message_id(ses):
    client = ses.boto3_client("sesv2")
    client.send_email(Content=raw(1))
    (record,) = ses.messages
    assert record.message_id == "<msg-1@test.example>"
    assert record.data == message(1)
    assert record.mail_from == "app@example.com"


def test_v2_send_email_template_substitutes_the_data(ses):
    client = ses.boto3_client("sesv2")
    template = {
        "TemplateContent": {"Subject": "Hi {{name}}", "Text": "Dear {{name}}, {{a.b}}."},
        "TemplateData": '{"name": "Ann", "a": {"b": "welcome"}}',
    }
    client.send_email(
        FromEmailAddress="app@example.com", Destination=TO, Content={"Template": template}
    )
    (record,) = ses.messages
    assert record.subject == "Hi Ann"
    assert b"Dear Ann, welcome." in record.data


def test_v2_stored_template_by_name_and_a_missing_one_is_not_found():
    templates = {"welcome": {"Subject": "Welcome {{name}}", "Text": "Hello {{name}}"}}
    with FakeSES(templates=templates) as ses:
        client = ses.boto3_client("sesv2")
        content = {"Template": {"TemplateName": "welcome", "TemplateData": '{"name": "Bo"}'}}
        client.send_email(FromEmailAddress="app@example.com", Destination=TO, Content=content)
        assert ses.messages[0].subject == "Welcome Bo"
        content = {"Template": {"TemplateName": "nope", "TemplateData": "{}"}}
        with pytest.raises(client.exceptions.NotFoundException):
            client.send_email(FromEmailAddress="app@example.com", Destination=TO, Content=content)


def test_v2_send_bulk_email_records_one_message_per_entry(ses):
    client = ses.boto3_client("sesv2")
    entries = [
        {
            "Destination": {"ToAddresses": [f"user{n}@example.com"]},
            "ReplacementEmailContent": {
                "ReplacementTemplate": {"ReplacementTemplateData": f'{{"n": "{n}"}}'}
            },
        }
        for n in range(3)
    ]
    answer = client.send_bulk_email(
        FromEmailAddress="app@example.com",
        DefaultContent={
            "Template": {
                "TemplateContent": {"Subject": "No. {{n}}", "Text": "x"},
                "TemplateData": "{}",
            }
        },
        BulkEmailEntries=entries,
    )
    results = answer["BulkEmailEntryResults"]
    assert [r["Status"] for r in results] == ["SUCCESS"] * 3
    assert [r["MessageId"] for r in results] == [m.ses_id for m in ses.messages]
    assert [m.subject for m in ses.messages] == ["No. 0", "No. 1", "No. 2"]


def test_v2_get_account_reports_the_quota_used_by_both_doors(ses):
    with smtplib.SMTP(ses.host, ses.port) as smtp:
        smtp.sendmail("app@example.com", ["a@example.com", "b@example.com"], message(1))
    client = ses.boto3_client("sesv2")
    client.send_email(Content=raw(2))
    quota = client.get_account()["SendQuota"]
    assert quota == {"Max24HourSend": 50000.0, "MaxSendRate": 14.0, "SentLast24Hours": 3.0}
    assert ses.boto3_client("sesv2").get_account()["ProductionAccessEnabled"] is True


def test_v1_send_email_send_raw_email_and_get_send_quota(ses):
    client = ses.boto3_client("ses")
    first = client.send_email(
        Source="app@example.com",
        Destination=TO,
        Message={"Subject": {"Data": "v1"}, "Body": {"Html": {"Data": "<p>hi</p>"}}},
    )
    second = client.send_raw_email(RawMessage={"Data": message(7)})
    assert [first["MessageId"], second["MessageId"]] == [m.ses_id for m in ses.messages]
    assert [m.via for m in ses.messages] == ["api-v1", "api-v1"]
    assert ses.messages[0].subject == "v1"
    quota = client.get_send_quota()
    assert (quota["Max24HourSend"], quota["MaxSendRate"], quota["SentLast24Hours"]) == (
        50000.0,
        14.0,
        2.0,
    )


def test_one_account_smtp_and_api_share_the_daily_quota():
    with FakeSES(profile="ses", daily_quota=2, rate_per_s=None) as ses:
        with smtplib.SMTP(ses.host, ses.port) as smtp:
            smtp.sendmail("app@example.com", ["user@example.com"], message(1))
        client = ses.boto3_client("sesv2")
        client.send_email(Content=raw(2))
        with pytest.raises(ClientError) as refused:
            client.send_email(Content=raw(3))
        with (
            smtplib.SMTP(ses.host, ses.port) as smtp,
            pytest.raises(smtplib.SMTPDataError) as smtp_refused,
        ):
            smtp.sendmail("app@example.com", ["user@example.com"], message(4))
    error = refused.value.response["Error"]
    assert (error["Code"], error["Message"]) == (
        "TooManyRequestsException",
        "Daily message quota exceeded.",
    )
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert smtp_refused.value.smtp_code == 454
    assert [m.via for m in ses.messages] == ["smtp", "api-v2"]


def test_one_account_the_rate_bucket_is_shared_and_counts_recipients():
    with FakeSES(profile="ses", rate_per_s=1.0, daily_quota=None) as ses:
        with smtplib.SMTP(ses.host, ses.port) as smtp:
            smtp.sendmail("app@example.com", ["a@example.com", "b@example.com"], message(1))
        client = ses.boto3_client("sesv2")
        with pytest.raises(client.exceptions.TooManyRequestsException) as refused:
            client.send_email(Content=raw(2))
    assert refused.value.response["Error"]["Message"] == "Maximum sending rate exceeded."
    assert [f.name for f in ses.faults] == ["rate_per_s"]
    assert ses.faults[0].stage == "API"


def test_v1_rate_refusal_is_throttling_400_with_the_xml_users_logged():
    with FakeSES(profile="ses", rate_per_s=1.0) as ses:
        client = ses.boto3_client("ses")
        client.send_raw_email(RawMessage={"Data": message(1)})
        with pytest.raises(ClientError) as refused:
            client.send_raw_email(RawMessage={"Data": message(2)})
    response = refused.value.response
    assert response["Error"] == {
        "Type": "Sender",
        "Code": "Throttling",
        "Message": "Maximum sending rate exceeded.",
    }
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_the_developer_guides_throttling_exception_is_selectable():
    with FakeSES(profile="ses", rate_per_s=1.0, api_throttle="ThrottlingException") as ses:
        client = ses.boto3_client("sesv2")
        client.send_email(Content=raw(1))
        with pytest.raises(ClientError) as refused:
            client.send_email(Content=raw(2))
    assert refused.value.response["Error"]["Code"] == "ThrottlingException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_sandbox_refuses_unverified_identities_as_message_rejected():
    with FakeSES(profile="ses-sandbox") as ses:
        v2 = ses.boto3_client("sesv2")
        with pytest.raises(v2.exceptions.MessageRejected) as refused:
            v2.send_email(
                FromEmailAddress="app@example.com",
                Destination={"ToAddresses": ["someone@elsewhere.test"]},
                Content=SIMPLE,
            )
        assert v2.get_account()["ProductionAccessEnabled"] is False
        v1 = ses.boto3_client("ses")
        with pytest.raises(v1.exceptions.MessageRejected) as v1_refused:
            v1.send_raw_email(RawMessage={"Data": message(1, sender="app@unverified.test")})
    text = (
        "Email address is not verified. The following identities failed the check in region "
        "US-EAST-1: "
    )
    assert refused.value.response["Error"]["Message"] == text + "someone@elsewhere.test"
    assert v1_refused.value.response["Error"]["Message"] == text + "app@unverified.test"
    assert ses.messages == []


def test_the_sandbox_names_the_servers_region_in_both_versions_and_over_smtp():
    """SES writes the account's region, upper case (EU-WEST-1 in opensupplyhub/
    open-apparel-registry#298); the text said US-EAST-1 whatever the server's region."""
    text = (
        "Email address is not verified. The following identities failed the check in region "
        "EU-WEST-1: "
    )
    with FakeSES(profile="ses-sandbox", region="eu-west-1") as ses:
        v2 = ses.boto3_client("sesv2")
        with pytest.raises(v2.exceptions.MessageRejected) as refused:
            v2.send_email(
                FromEmailAddress="app@example.com",
                Destination={"ToAddresses": ["someone@elsewhere.test"]},
                Content=SIMPLE,
            )
        assert refused.value.response["Error"]["Message"] == text + "someone@elsewhere.test"
        v1 = ses.boto3_client("ses")
        with pytest.raises(v1.exceptions.MessageRejected) as v1_refused:
            v1.send_raw_email(RawMessage={"Data": message(1, sender="app@unverified.test")})
        assert v1_refused.value.response["Error"]["Message"] == text + "app@unverified.test"
        with (
            smtplib.SMTP(ses.host, ses.port) as smtp,
            pytest.raises(smtplib.SMTPDataError) as smtp_refused,
        ):
            smtp.sendmail("app@example.com", ["someone@elsewhere.test"], message(2))
        assert smtp_refused.value.smtp_code == 554
        assert smtp_refused.value.smtp_error.decode() == (
            "Message rejected: " + text + "someone@elsewhere.test"
        )
    assert ses.messages == []


def test_recipient_cap_and_v1_size_cap():
    with FakeSES(profile="ses", max_recipients=2) as ses:
        v2 = ses.boto3_client("sesv2")
        many = {"ToAddresses": ["a@example.com", "b@example.com", "c@example.com"]}
        with pytest.raises(v2.exceptions.BadRequestException):
            v2.send_email(FromEmailAddress="app@example.com", Destination=many, Content=SIMPLE)
    with FakeSES(profile="ses", rate_per_s=None) as ses:
        big = message(1) + b"x" * (10 * 1024 * 1024)
        v1 = ses.boto3_client("ses")
        with pytest.raises(ClientError) as refused:
            v1.send_raw_email(RawMessage={"Data": big})
        ses.boto3_client("sesv2").send_email(Content={"Raw": {"Data": big}})  # v2 allows 40 MB
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert [m.via for m in ses.messages] == ["api-v2"]


def test_ids_and_answers_repeat_for_the_same_seed():
    def run() -> list[str]:
        from harness.base.clock import VirtualClock

        with FakeSES(seed=11, clock=VirtualClock()) as ses:
            client = ses.boto3_client("sesv2")
            return [client.send_email(Content=raw(n))["MessageId"] for n in range(3)]

    assert run() == run()


def test_bulk_entries_past_the_rate_are_account_throttled_one_by_one():
    with FakeSES(profile="ses", rate_per_s=2.0) as ses:
        client = ses.boto3_client("sesv2")
        entries = [{"Destination": {"ToAddresses": [f"u{n}@example.com"]}} for n in range(4)]
        answer = client.send_bulk_email(
            FromEmailAddress="app@example.com",
            DefaultContent={
                "Template": {
                    "TemplateContent": {"Subject": "s", "Text": "t"},
                    "TemplateData": "{}",
                }
            },
            BulkEmailEntries=entries,
        )
    statuses = [r["Status"] for r in answer["BulkEmailEntryResults"]]
    assert statuses == ["SUCCESS", "SUCCESS", "ACCOUNT_THROTTLED", "ACCOUNT_THROTTLED"]
    assert len(ses.messages) == 2
