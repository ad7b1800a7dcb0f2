"""AWS Signature Version 4 on incoming requests: the header, the credential scope and the clock
checked on every request; the signature itself verified when credentials are configured.

The checks run in the order DynamoDB's answers show them (quoted in mhart/dynalite's server):
the date's format, the clock-skew window, ``host`` signed, the credential scope (every mismatch
in one message), the access key, the signature. The expected signature comes from botocore's own
signer (:class:`botocore.auth.SigV4Auth`) fed the request as it arrived, so the fake checks
exactly what the SDKs compute. botocore is only needed when a secret is configured (the ``aws``
extra).

A signed request may be sent again: AWS accepts a replay inside the skew window (SigV4 has no
nonce; the timestamp is its protection against replays, IAM's SigV4 guide), and so does the fake.
"""

from __future__ import annotations

import datetime
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

_AUTH = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/,\s]+)/(?P<date>[^/,\s]*)/(?P<region>[^/,\s]*)/"
    r"(?P<service>[^/,\s]*)/(?P<terminator>[^/,\s]*)\s*,\s*SignedHeaders=(?P<headers>[a-z0-9;_.-]+)"
    r"\s*,\s*Signature=(?P<signature>[0-9a-f]{64})\s*"
)
#: How far X-Amz-Date may be from the server's clock, either way: 15 minutes in the answers of
#: AWS's Query services (SNS, SQS, STS: aws-sdk-js#265, #401, aws-cli#6676) and DynamoDB.
SKEW_S = 15 * 60
#: The credential scope's service: botocore signs both SES models as "ses" (their
#: `signingName`); "email" is their endpoint prefix, which a hand-made Query client signs with
#: when it follows the older SigV4 guide ("the service name that is part of the endpoint").
SERVICES = ("ses", "email")
TERMINATOR = "aws4_request"
_ISO_BASIC = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class Signature:
    """What an Authorization header says."""

    key: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    terminator: str = "aws4_request"


class SignatureProblem(Exception):
    """Why a request's signature is refused: `kind` names the error in api_errors."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(detail or kind)
        self.kind = kind
        self.detail = detail


def parse(headers: Mapping[str, str]) -> tuple[Signature, str]:
    """The signature and X-Amz-Date of a request, or SignatureProblem when malformed."""
    header = headers.get("Authorization")
    if header is None:
        raise SignatureProblem("missing_auth")
    found = _AUTH.fullmatch(header.strip())
    if found is None:
        raise SignatureProblem(
            "incomplete_signature",
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' "
            "parameters (AWS4-HMAC-SHA256).",
        )
    amz_date = headers.get("X-Amz-Date")
    if amz_date is None:
        raise SignatureProblem(
            "incomplete_signature", "Authorization header requires existence of a valid X-Amz-Date."
        )
    signature = Signature(
        found["key"],
        found["date"],
        found["region"],
        found["service"],
        tuple(found["headers"].split(";")),
        found["signature"],
        found["terminator"],
    )
    return signature, amz_date


def signed_at(amz_date: str) -> datetime.datetime:
    """X-Amz-Date as a UTC time; IncompleteSignature when it is not ISO 8601's basic format."""
    try:
        if len(amz_date) != 16:
            raise ValueError(amz_date)
        return datetime.datetime.strptime(amz_date, _ISO_BASIC).replace(tzinfo=datetime.UTC)
    except ValueError:
        raise SignatureProblem(
            "incomplete_signature",
            f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'. "
            "See http://en.wikipedia.org/wiki/ISO_8601",
        ) from None


def check_clock(amz_date: str, now_s: float, skew_s: float = SKEW_S) -> None:
    """Refuse a request signed more than `skew_s` before or after `now_s` (the server's clock),
    in AWS's words: "Signature expired: 20260101T000000Z is now earlier than 20260101T000001Z
    (20260101T001501Z - 15 min.)", or "Signature not yet current: ... is still later than ...
    (... + 15 min.)"."""
    when = signed_at(amz_date).timestamp()
    minutes = f"{skew_s / 60:g} min."
    if when < now_s - skew_s:
        raise SignatureProblem(
            "clock_skew",
            f"Signature expired: {amz_date} is now earlier than {_basic(now_s - skew_s)} "
            f"({_basic(now_s)} - {minutes})",
        )
    if when > now_s + skew_s:
        raise SignatureProblem(
            "clock_skew",
            f"Signature not yet current: {amz_date} is still later than {_basic(now_s + skew_s)} "
            f"({_basic(now_s)} + {minutes})",
        )


def scope_problems(signature: Signature, amz_date: str, region: str) -> list[str]:
    """What is wrong with the credential scope for this server, in AWS's words (all at once)."""
    problems = []
    if signature.region != region:
        problems.append(f"Credential should be scoped to a valid region, not '{signature.region}'.")
    if signature.service not in SERVICES:
        problems.append(f"Credential should be scoped to correct service: '{SERVICES[0]}'.")
    if signature.terminator != TERMINATOR:
        problems.append(
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', "
            f"not '{signature.terminator}'."
        )
    if signature.date != amz_date[:8]:
        problems.append(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{signature.date}' != '{amz_date[:8]}', from '{amz_date}'."
        )
    return problems


def expected(
    signature: Signature,
    amz_date: str,
    *,
    secret: str,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
) -> str:
    """The signature botocore computes for this request with `secret`."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    signed = {name: headers.get(name, "") for name in signature.signed_headers}
    request = AWSRequest(method=method, url=url, data=body, headers=signed)
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(signature.key, secret), signature.service, signature.region)
    canonical = signer.canonical_request(request)
    return signer.signature(signer.string_to_sign(request, canonical), request)


@dataclass(frozen=True)
class Verifier:
    """What the server checks signatures against.

    `credentials` maps access key ids to secrets; `any_key_secret` is a secret any key id may
    sign with (``serve --api-token``: the token is the secret key). With neither, any
    well-formed signature in scope and in the window passes. `region` is the server's.
    """

    region: str = "us-east-1"
    credentials: Mapping[str, str] | None = None
    any_key_secret: str | None = None

    @property
    def verifies(self) -> bool:
        return self.credentials is not None or self.any_key_secret is not None

    def secret_for(self, key: str) -> str | None:
        if self.credentials is not None:
            return self.credentials.get(key)
        return self.any_key_secret


def check(
    headers: Mapping[str, str],
    *,
    verifier: Verifier,
    now_s: float,
    method: str,
    url: str,
    body: bytes,
) -> Signature:
    """Refuse a malformed, out-of-window or out-of-scope signature; a wrong one too when the
    verifier has secrets. `now_s` is the server's clock (see ApiService)."""
    signature, amz_date = parse(headers)
    check_clock(amz_date, now_s)
    if "host" not in signature.signed_headers:
        raise SignatureProblem("incomplete_signature", "'Host' must be a signed header.")
    problems = scope_problems(signature, amz_date, verifier.region)
    if problems:
        raise SignatureProblem("credential_scope", " ".join(problems) + " ")
    if not verifier.verifies:
        return signature
    secret = verifier.secret_for(signature.key)
    if secret is None:
        raise SignatureProblem("unknown_key")
    want = expected(
        signature, amz_date, secret=secret, method=method, url=url, headers=headers, body=body
    )
    if not hmac.compare_digest(want, signature.signature):
        raise SignatureProblem("bad_signature")
    return signature


def _basic(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime(_ISO_BASIC)


def require_botocore() -> None:
    """Fail at start, not at the first request, when verification cannot run."""
    try:
        import botocore.auth  # noqa: F401
    except ImportError as missing:
        raise RuntimeError(
            "verifying AWS signatures needs botocore: pip install 'ses-fault-harness[aws]'"
        ) from missing
