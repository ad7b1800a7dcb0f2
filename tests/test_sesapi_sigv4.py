"""Signatures: always well-formed, scoped to the server's region and service and dated within
15 minutes of its clock; with credentials configured, checked with botocore's signer and a wrong
one answered as SES does (403, per version)."""

from __future__ import annotations

import datetime
import os
import urllib.error
import urllib.request

import pytest

from harness.base.clock import ScaledClock
from harness.server.fake_ses import FakeSES
from harness.server.sesapi import sigv4
from tests import sesapi_requests
from tests.helpers import message
from tests.sesapi_requests import SIMPLE, v1_send, v2_send

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
    with FakeSES(aws_credentials=(KEY, SECRET), region="eu-west-1") as server:
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


# --- the credential scope and the clock (issue 28, fault 10) ------------------------------------


def signed_at(when: datetime.datetime | datetime.timedelta) -> datetime.datetime:
    """A signing time: a date as given, or an offset from now, taken when the test signs (a
    time taken when the module was collected drifts by as long as the suite runs)."""
    if isinstance(when, datetime.timedelta):
        return datetime.datetime.now(datetime.UTC) + when
    return when


SCOPES = [
    ({"region": "x"}, "Credential should be scoped to a valid region, not 'x'. "),
    ({"service": "s3"}, "Credential should be scoped to correct service: 'ses'. "),
    (
        {"region": "x", "service": "s3"},
        "Credential should be scoped to a valid region, not 'x'. "
        "Credential should be scoped to correct service: 'ses'. ",
    ),
]


@pytest.mark.parametrize(("signing", "text"), SCOPES)
def test_a_signature_scoped_to_another_region_or_service_is_refused(signing, text):
    with FakeSES(aws_credentials=(KEY, SECRET)) as ses:  # us-east-1
        status, headers, body = v2_send(ses.api_url, SIMPLE, key=KEY, secret=SECRET, **signing)
        assert (status, headers["x-amzn-ErrorType"]) == (403, "InvalidSignatureException")
        assert body == b'{"message": "' + text.encode() + b'"}'
        form = b"Action=GetSendQuota&Version=2010-12-01"
        status, _, body = v1_send(ses.api_url, form, key=KEY, secret=SECRET, **signing)
        assert status == 403
        assert b"<Code>SignatureDoesNotMatch</Code>" in body
        assert f"<Message>{text}</Message>".encode() in body
        assert ses.messages == []


def test_the_scope_is_checked_without_credentials_too_and_email_is_a_service_name():
    with FakeSES() as ses:
        assert v2_send(ses.api_url, SIMPLE, region="eu-west-1")[0] == 403
        assert v2_send(ses.api_url, SIMPLE, service="email")[0] == 200
        assert v2_send(ses.api_url, SIMPLE)[0] == 200
        assert len(ses.messages) == 2


@pytest.mark.parametrize(
    ("at", "start"),
    [
        (datetime.datetime(2015, 6, 1, tzinfo=datetime.UTC), "Signature expired: 20150601T000000Z"),
        (
            datetime.datetime(2099, 6, 1, tzinfo=datetime.UTC),
            "Signature not yet current: 20990601T000000Z is still later than ",
        ),
        (datetime.timedelta(minutes=-16), "Signature expired: "),
        (datetime.timedelta(minutes=16), "Signature not yet current: "),
    ],
)
def test_a_signature_dated_outside_15_minutes_of_the_server_clock_is_refused(at, start):
    at = signed_at(at)
    with FakeSES(aws_credentials=(KEY, SECRET)) as ses:
        status, headers, body = v2_send(ses.api_url, SIMPLE, key=KEY, secret=SECRET, at=at)
        assert (status, headers["x-amzn-ErrorType"]) == (403, "InvalidSignatureException")
        assert body.decode().startswith('{"message": "' + start)
        form = b"Action=GetSendQuota"
        status, _, body = v1_send(ses.api_url, form, key=KEY, secret=SECRET, at=at)
        assert (status, b"<Code>SignatureDoesNotMatch</Code>" in body) == (403, True)
        assert ses.messages == []


def test_a_signature_dated_within_the_window_passes():
    with FakeSES(aws_credentials=(KEY, SECRET)) as ses:
        for minutes in (-14, 14):
            at = signed_at(datetime.timedelta(minutes=minutes))
            assert v2_send(ses.api_url, SIMPLE, key=KEY, secret=SECRET, at=at)[0] == 200


def test_a_date_that_is_not_iso_8601_basic_is_an_incomplete_signature():
    with FakeSES() as ses:
        url = ses.api_url + sesapi_requests.V2_SEND
        headers = sesapi_requests.sign(url, b"{}")
        headers["X-Amz-Date"] = "20151399T999999Z"
        status, answer, body = sesapi_requests.send(url, b"{}", headers)
    assert (status, answer["x-amzn-ErrorType"]) == (403, "IncompleteSignatureException")
    assert b"Date must be in ISO-8601 'basic format'. Got '20151399T999999Z'." in body


def test_a_replay_is_accepted_inside_the_window_as_aws_does_and_refused_after_it():
    """SigV4 has no nonce: AWS takes the same signed request again until its date leaves the
    window. The window is on the server's clock: here a scaled one, 15 SES minutes in 0.9 s."""
    clock = ScaledClock(1000.0)
    with FakeSES(aws_credentials=(KEY, SECRET), clock=clock) as ses:
        at = datetime.datetime.fromtimestamp(clock.now(), datetime.UTC)
        url = ses.api_url + sesapi_requests.V2_SEND
        body = sesapi_requests.json.dumps(SIMPLE).encode()
        headers = sesapi_requests.sign(url, body, key=KEY, secret=SECRET, at=at)
        assert sesapi_requests.send(url, body, headers)[0] == 200
        assert sesapi_requests.send(url, body, headers)[0] == 200
        clock.sleep(sigv4.SKEW_S + 60)
        status, _, answer = sesapi_requests.send(url, body, headers)
    assert status == 403
    assert b"Signature expired: " in answer
    assert len(ses.messages) == 2


def test_the_clock_check_is_pure_and_names_both_edges():
    now = datetime.datetime(2026, 1, 1, 0, 15, 1, tzinfo=datetime.UTC).timestamp()
    with pytest.raises(sigv4.SignatureProblem) as late:
        sigv4.check_clock("20260101T000000Z", now_s=now)
    assert late.value.detail == (
        "Signature expired: 20260101T000000Z is now earlier than 20260101T000001Z "
        "(20260101T001501Z - 15 min.)"
    )
    sigv4.check_clock("20260101T000001Z", now_s=now)
    with pytest.raises(sigv4.SignatureProblem) as early:
        sigv4.check_clock("20260101T003002Z", now_s=now)
    assert early.value.detail == (
        "Signature not yet current: 20260101T003002Z is still later than 20260101T003001Z "
        "(20260101T001501Z + 15 min.)"
    )
