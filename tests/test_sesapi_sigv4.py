"""Signatures: always well-formed; with credentials configured, checked with botocore's signer
and a wrong one answered as SES does (403, per version)."""

from __future__ import annotations

import os
import urllib.error
import urllib.request

import pytest

from harness.server.fake_ses import FakeSES
from tests.helpers import message

boto3 = pytest.importorskip("boto3")
from botocore.exceptions import ClientError  # noqa: E402

os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

KEY, SECRET = "AKIAEXAMPLE123456789", "s3cr3t/example+key"


def client(ses: FakeSES, service: str, key: str = KEY, secret: str = SECRET):
    return boto3.client(
        service,
        endpoint_url=ses.api_url,
        region_name="eu-west-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=boto3.session.Config(retries={"total_max_attempts": 1}),
    )


@pytest.fixture(scope="module")
def ses():
    with FakeSES(aws_credentials=(KEY, SECRET)) as server:
        yield server


def test_the_right_credentials_are_verified_for_v2_and_v1(ses):
    client(ses, "sesv2").send_email(Content={"Raw": {"Data": message(1)}})
    client(ses, "ses").send_raw_email(RawMessage={"Data": message(2)})
    client(ses, "ses").get_send_quota()
    assert ses.endpoint.aws_access_key_id == KEY
    assert ses.boto3_client("sesv2").get_account()["SendingEnabled"] is True


@pytest.mark.parametrize(
    ("service", "code"), [("sesv2", "InvalidSignatureException"), ("ses", "SignatureDoesNotMatch")]
)
def test_a_wrong_secret_is_refused_with_403(ses, service, code):
    before = len(ses.messages)
    sender = client(ses, service, secret="wrong")
    with pytest.raises(ClientError) as refused:
        if service == "sesv2":
            sender.send_email(Content={"Raw": {"Data": message(3)}})
        else:
            sender.send_raw_email(RawMessage={"Data": message(3)})
    error = refused.value.response["Error"]
    assert error["Code"] == code
    assert error["Message"].startswith("The request signature we calculated does not match")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert len(ses.messages) == before


@pytest.mark.parametrize(
    ("service", "code"), [("sesv2", "UnrecognizedClientException"), ("ses", "InvalidClientTokenId")]
)
def test_an_unknown_access_key_is_refused(ses, service, code):
    with pytest.raises(ClientError) as refused:
        if service == "sesv2":
            client(ses, service, key="AKIANOBODY").get_account()
        else:
            client(ses, service, key="AKIANOBODY").get_send_quota()
    assert refused.value.response["Error"]["Code"] == code
    assert refused.value.response["Error"]["Message"] == (
        "The security token included in the request is invalid."
    )


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_an_unsigned_request_is_refused_even_without_credentials():
    with FakeSES() as ses:
        status, headers, body = _post(
            ses.api_url + "/v2/email/outbound-emails", b"{}", {"Content-Type": "application/json"}
        )
        assert (status, headers["x-amzn-ErrorType"]) == (403, "MissingAuthenticationTokenException")
        status, _, body = _post(ses.api_url + "/", b"Action=GetSendQuota", {})
        assert status == 403
        assert b"<Code>MissingAuthenticationToken</Code>" in body


def test_a_malformed_authorization_header_is_an_incomplete_signature():
    with FakeSES() as ses:
        headers = {"Authorization": "AWS4-HMAC-SHA256 Credential=oops", "X-Amz-Date": "x"}
        status, _, body = _post(ses.api_url + "/", b"Action=GetSendQuota", headers)
    assert status == 400
    assert b"<Code>IncompleteSignature</Code>" in body
