"""AWS Signature Version 4 on incoming requests: always well-formed, verified with credentials.

The expected signature comes from botocore's own signer (:class:`botocore.auth.SigV4Auth`) fed
the request as it arrived, so the fake checks exactly what the SDKs compute. botocore is only
needed when credentials are configured (the ``aws`` extra).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

_AUTH = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/"
    r"(?P<service>[^/,\s]+)/aws4_request\s*,\s*SignedHeaders=(?P<headers>[a-z0-9;_.-]+)\s*,\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})\s*"
)
_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")


@dataclass(frozen=True)
class Signature:
    """What an Authorization header says."""

    key: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


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
    amz_date = headers.get("X-Amz-Date", "")
    if not _AMZ_DATE.fullmatch(amz_date) or not amz_date.startswith(found["date"]):
        raise SignatureProblem(
            "incomplete_signature", "Authorization header requires existence of a valid X-Amz-Date."
        )
    signed = tuple(found["headers"].split(";"))
    if "host" not in signed:
        raise SignatureProblem("incomplete_signature", "'Host' must be a signed header.")
    signature = Signature(
        found["key"], found["date"], found["region"], found["service"], signed, found["signature"]
    )
    return signature, amz_date


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


def check(
    headers: Mapping[str, str],
    *,
    credentials: Mapping[str, str] | None,
    method: str,
    url: str,
    body: bytes,
) -> Signature:
    """Refuse a malformed signature; with `credentials` (key -> secret) a wrong one too."""
    signature, amz_date = parse(headers)
    if credentials is None:
        return signature
    secret = credentials.get(signature.key)
    if secret is None:
        raise SignatureProblem("unknown_key")
    want = expected(
        signature, amz_date, secret=secret, method=method, url=url, headers=headers, body=body
    )
    if not hmac.compare_digest(want, signature.signature):
        raise SignatureProblem("bad_signature")
    return signature


def require_botocore() -> None:
    """Fail at start, not at the first request, when verification cannot run."""
    try:
        import botocore.auth  # noqa: F401
    except ImportError as missing:
        raise RuntimeError(
            "verifying AWS signatures needs botocore: pip install 'ses-fault-harness[aws]'"
        ) from missing
