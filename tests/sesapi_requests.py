"""Raw requests to the fake's SES API, signed with botocore's own signer at a chosen time,
region and service: what an SDK would send, with the parts a test wants wrong made wrong."""

from __future__ import annotations

import datetime
import json
import urllib.error
import urllib.request
from typing import Any
from unittest import mock

KEY, SECRET = "AKIAFAKESES000000000", "fake-ses-secret"  # FakeSES's dummy pair
V2_SEND = "/v2/email/outbound-emails"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded; charset=utf-8"


def sign(
    url: str,
    body: bytes,
    *,
    method: str = "POST",
    content_type: str = JSON,
    key: str = KEY,
    secret: str = SECRET,
    region: str = "us-east-1",
    service: str = "ses",
    at: datetime.datetime | None = None,
) -> dict[str, str]:
    """The headers botocore sends for this request, signed at `at` (default now)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method=method, url=url, data=body, headers={"Content-Type": content_type})
    when = at or datetime.datetime.now(datetime.UTC)
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        SigV4Auth(Credentials(key, secret), service, region).add_auth(request)
    return dict(request.headers.items())


def send(
    url: str, body: bytes, headers: dict[str, str], method: str = "POST"
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one request; an HTTP error is an answer, not an exception."""
    request = urllib.request.Request(url, data=body or None, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def v2_send(api_url: str, payload: Any, **signing: Any) -> tuple[int, dict[str, str], bytes]:
    """A signed v2 SendEmail with `payload` as its JSON body (bytes are sent as they are)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    url = api_url + V2_SEND
    return send(url, body, sign(url, body, **signing))


def v1_send(api_url: str, form: bytes, **signing: Any) -> tuple[int, dict[str, str], bytes]:
    """A signed v1 Query request with `form` as its body."""
    url = api_url + "/"
    return send(url, form, sign(url, form, content_type=FORM, **signing))


SIMPLE = {
    "FromEmailAddress": "app@example.com",
    "Destination": {"ToAddresses": ["user@example.com"]},
    "Content": {"Simple": {"Subject": {"Data": "Hi"}, "Body": {"Text": {"Data": "Hello"}}}},
}
