"""`ses-harness serve` answers the SES API on its HTTP port, beside /api/, under the same plan."""

from __future__ import annotations

import smtplib
import urllib.request

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


# --- the API token covers the SES API (issue 28, fault 9) --------------------------------------


def test_with_a_token_the_ses_api_wants_it_as_the_secret_key(start):
    """SDKs cannot send the token's header, so the token is their secret key: a request signed
    with anything else, with a forged (all-zero) signature or with none is refused, and nothing
    is stored."""
    import json

    from tests import sesapi_requests

    server = start("--api-token", "t0ken-for-tests")
    url = server.ready["api_url"]
    sdk(url, "sesv2", "AKIAANYKEY", "t0ken-for-tests").send_email(
        Content={"Raw": {"Data": message(1)}}
    )
    sdk(url, "ses", "AKIAOTHERKEY", "t0ken-for-tests").send_raw_email(
        RawMessage={"Data": message(2)}
    )
    with pytest.raises(ClientError) as refused:
        sdk(url, "sesv2", "AKIAANYKEY", "not-the-token").send_email(
            Content={"Raw": {"Data": message(3)}}
        )
    assert refused.value.response["Error"]["Code"] == "InvalidSignatureException"
    body = json.dumps({"Content": {"Raw": {"Data": "eA=="}}}).encode()
    send_url = url + sesapi_requests.V2_SEND
    headers = sesapi_requests.sign(send_url, body)
    forged = headers["Authorization"].rsplit("Signature=", 1)[0] + "Signature=" + "0" * 64
    assert sesapi_requests.send(send_url, body, {**headers, "Authorization": forged})[0] == 403
    unsigned = {"Content-Type": "application/json"}
    assert sesapi_requests.send(send_url, body, unsigned)[0] == 403
    status, listed = server.api("GET", "/api/messages")
    assert status == 401  # the token covers /api/ as before
    request = urllib.request.Request(
        server.ready["api_url"] + "/api/messages", headers={"X-Api-Token": "t0ken-for-tests"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        listed = json.loads(answer.read())
    messages = listed["messages"] if isinstance(listed, dict) else listed
    assert sorted(m["via"] for m in messages) == ["api-v1", "api-v2"]
    _code, out, _ = server.stop()
    assert "sign with the API token as the secret key" in out


def test_with_a_token_and_aws_credentials_the_credentials_are_required(start):
    server = start("--api-token", "t0ken", "--aws-credentials", "AKIAGOOD:s3cret")
    url = server.ready["api_url"]
    sdk(url, "ses", "AKIAGOOD", "s3cret").get_send_quota()
    with pytest.raises(ClientError) as refused:
        sdk(url, "ses", "AKIAGOOD", "t0ken").get_send_quota()
    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_serve_scopes_signatures_to_its_region(start):
    server = start("--aws-region", "eu-central-1")
    url = server.ready["api_url"]
    with pytest.raises(ClientError) as refused:
        sdk(url, "sesv2").get_account()  # signed for us-east-1
    assert refused.value.response["Error"]["Message"] == (
        "Credential should be scoped to a valid region, not 'us-east-1'. "
    )
    eu = boto3.client(
        "sesv2",
        endpoint_url=url,
        region_name="eu-central-1",
        aws_access_key_id="AKIAEXAMPLE",
        aws_secret_access_key="secret",
        config=Config(retries={"total_max_attempts": 1}),
    )
    assert eu.get_account()["SendingEnabled"] is True


def test_serve_answers_a_bad_v1_field_in_xml_and_a_bad_v2_field_in_json(start):
    """Through serve's port (beside /api/, whose errors are the console's JSON): a line break in a
    v1 field was a 500 with a JSON body, a v2 one a 500 too (issue 28, fault 2)."""
    import json
    import urllib.parse

    from tests.sesapi_requests import SIMPLE, v1_send, v2_send

    server = start()
    url = server.ready["api_url"]
    form = urllib.parse.urlencode(
        {
            "Action": "SendEmail",
            "Source": "app@example.com",
            "Destination.ToAddresses.member.1": "user@example.com",
            "Message.Subject.Data": "Hi\r\nBcc: evil@example.com",
            "Message.Body.Text.Data": "Hello",
        }
    ).encode()
    status, headers, body = v1_send(url, form)
    assert (status, headers["Content-Type"].split(";")[0]) == (400, "text/xml")
    assert b"<Code>InvalidParameterValue</Code>" in body
    bad = json.loads(json.dumps(SIMPLE))
    bad["Content"]["Simple"]["Headers"] = 5
    status, headers, body = v2_send(url, bad)
    assert (status, headers["x-amzn-ErrorType"]) == (400, "BadRequestException")
    _code, _out, err = server.stop()
    assert "Traceback" not in err and "API error" not in err


def test_an_unsigned_v1_form_through_serve_gets_ses_403_in_xml_not_the_page_guard_415(start):
    """serve's page guard wants JSON on every POST; a v1 form with no signature is the SES
    API's to refuse, as SES does (403 MissingAuthenticationToken, XML). It was a 415 in the
    page's JSON; /api/ keeps its 415."""
    import urllib.parse

    from tests.sesapi_requests import FORM, send

    server = start()
    url = server.ready["api_url"]
    form = urllib.parse.urlencode({"Action": "GetSendQuota"}).encode()
    for content_type in (FORM, "text/plain"):
        status, headers, body = send(url + "/", form, {"Content-Type": content_type})
        assert (status, headers["Content-Type"].split(";")[0]) == (403, "text/xml"), body[:300]
        assert b"<Code>MissingAuthenticationToken</Code>" in body
    status, headers, body = send(url + "/api/reset", b"", {"Content-Type": FORM})
    assert (status, headers["Content-Type"].split(";")[0]) == (415, "application/json")
    _code, _out, err = server.stop()
    assert "Traceback" not in err
