"""`ses-harness serve` answers the SES API on its HTTP port, beside /api/, under the same plan."""

from __future__ import annotations

import smtplib

import pytest

from tests.helpers import message

boto3 = pytest.importorskip("boto3")
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402


def sdk(url: str, service: str, key: str = "AKIAEXAMPLE", secret: str = "secret"):
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"total_max_attempts": 1}),
    )


def test_serve_takes_both_doors_into_one_ledger_and_one_quota(start):
    server = start("--limit", "daily_quota=3")
    url = server.ready["api_url"]
    sdk(url, "sesv2").send_email(Content={"Raw": {"Data": message(1)}})
    sdk(url, "ses").send_raw_email(RawMessage={"Data": message(2)})
    with smtplib.SMTP(*server.smtp) as smtp:
        smtp.sendmail("app@example.com", ["user@example.com"], message(3))
    with pytest.raises(ClientError) as refused:
        sdk(url, "sesv2").send_email(Content={"Raw": {"Data": message(4)}})
    assert refused.value.response["Error"]["Message"] == "Daily message quota exceeded."
    status, listed = server.api("GET", "/api/messages")
    assert status == 200
    assert len(listed["messages"] if isinstance(listed, dict) else listed) == 3
    _code, out, _ = server.stop()
    assert "SES API" in out


def test_serve_verifies_signatures_with_aws_credentials(start):
    server = start("--aws-credentials", "AKIAGOOD:s3cret")
    url = server.ready["api_url"]
    sdk(url, "ses", "AKIAGOOD", "s3cret").get_send_quota()
    with pytest.raises(ClientError) as refused:
        sdk(url, "ses", "AKIAGOOD", "wrong").get_send_quota()
    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_a_store_keeps_how_each_message_came(tmp_path):
    from harness.base.ledger import Ledger
    from harness.console.store import Store
    from harness.server.fake_ses import FakeSES

    store = Store(tmp_path)
    with FakeSES(ledger=Ledger(sink=store)) as ses:
        ses.boto3_client("ses").send_raw_email(RawMessage={"Data": message(1)})
        with smtplib.SMTP(ses.host, ses.port) as smtp:
            smtp.sendmail("app@example.com", ["user@example.com"], message(2))
    store.close()
    again = Store(tmp_path)
    assert [(m.via, m.session) for m in again.load_messages()] == [("api-v1", 0), ("smtp", 1)]
    again.close()
