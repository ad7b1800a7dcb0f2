"""SES HTTP API errors as data: status, code and message for v2 (JSON) and v1 (Query/XML).

Each error carries its evidence, like the SMTP lines in :mod:`harness.core.profiles`. The sources
disagree on throttling: the developer guide says the API "produces a ThrottlingException error"
whose message is "Daily message quota exceeded" or "Maximum sending rate exceeded" (DG-QERR),
while the v2 service model lists ``TooManyRequestsException`` (HTTP 429) for SendEmail and
applications that hit the rate limit in production got exactly that: ``429 Too Many Requests``,
body ``{"message":"Maximum sending rate exceeded."}`` (pm-pmaas/etailors_amazon_ses#117, 2025;
alphagov/notifications-api#4310, 2024). v1 answers ``400`` with ``<Code>Throttling</Code>`` and
``Maximum sending rate exceeded.`` (awsdocs/amazon-ses-developer-guide#60, 2022). The default is
what applications saw; ``api_throttle = "ThrottlingException"`` selects the guide's wording for v2.

>>> error_for("rate_per_s", "v2").code, error_for("rate_per_s", "v2").status
('TooManyRequestsException', 429)
>>> error_for("rate_per_s", "v1").code
'Throttling'
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from harness.core.profiles import DOC, INFER, USER, Evidence

V1, V2 = "v1", "v2"
#: The v2 throttling styles `Limits.api_throttle` selects from.
THROTTLE_STYLES = ("TooManyRequestsException", "ThrottlingException")
V1_MAX_MESSAGE_BYTES = 10 * 1024 * 1024  # DOC (knowledge center): 10 MB after MIME encoding


@dataclass(frozen=True)
class SesApiError:
    """One error answer of the SES HTTP API (v1 or v2), and why we believe it.

    `message` may hold ``{}``, filled with the detail (the identities that failed, a size).
    `sender_fault` is v1's ``<Type>Sender</Type>`` (else ``Receiver``).
    """

    status: int
    code: str
    message: str
    evidence: Evidence
    source: str = ""
    sender_fault: bool = True

    def filled(self, detail: str = "", region: str = "us-east-1") -> SesApiError:
        """The error with `detail` in its message's ``{}`` and `region` in its ``{region}``."""
        if not detail:
            return self
        return dataclasses.replace(self, message=self.message.format(detail, region=region.upper()))

    @property
    def line(self) -> str:
        """One line for the ledger's fault log: ``429 TooManyRequestsException: ...``."""
        return f"{self.status} {self.code}: {self.message}"


# {region}: the server's, upper case as SES writes it (EU-WEST-1: opensupplyhub/
# open-apparel-registry#298; US-WEST-2: danilop/LambdAuth#64, mettle/sendportal#94).
_NOT_VERIFIED = (
    "Email address is not verified. The following identities failed the check in region "
    "{region}: {}"
)

V2_ERRORS: dict[str, SesApiError] = {
    "rate_per_s": SesApiError(
        429,
        "TooManyRequestsException",
        "Maximum sending rate exceeded.",
        USER,
        "etailors_amazon_ses#117 (429, body and text); notifications-api#4310; sesv2 model",
    ),
    "daily_quota": SesApiError(
        429,
        "TooManyRequestsException",
        "Daily message quota exceeded.",
        INFER,
        "text: DG-QERR; code and status as the rate limit's (no report found)",
    ),
    "verified": SesApiError(
        400, "MessageRejected", _NOT_VERIFIED, INFER, "text: DG + LambdAuth#64; code: sesv2 model"
    ),
    "max_recipients": SesApiError(
        400,
        "BadRequestException",
        "Recipient count exceeds 50.",
        INFER,
        "limit: DG-QUOTAS; code inferred from the model",
    ),
    "max_message_bytes": SesApiError(
        400,
        "MessageRejected",
        "Message length is more than {} bytes long.",
        INFER,
        "limit: DG-QUOTAS (40 MB for v2); code and text inferred",
    ),
    "bad_request": SesApiError(400, "BadRequestException", "{}", DOC, "sesv2 model"),
    "not_found": SesApiError(404, "NotFoundException", "{}", DOC, "sesv2 model"),
    "already_exists": SesApiError(400, "AlreadyExistsException", "{}", DOC, "sesv2 model"),
    "invalid_next_token": SesApiError(400, "InvalidNextTokenException", "{}", DOC, "sesv2 model"),
    "missing_auth": SesApiError(
        403, "MissingAuthenticationTokenException", "Missing Authentication Token", INFER, "AWS"
    ),
    "incomplete_signature": SesApiError(
        403,
        "IncompleteSignatureException",
        "{}",
        INFER,
        "AWS common errors (IncompleteSignature); v2 name inferred",
    ),
    "unknown_key": SesApiError(
        403,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
        INFER,
        "AWS JSON services' wording; not seen from SES v2",
    ),
    "bad_signature": SesApiError(
        403,
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided. Check "
        "your AWS Secret Access Key and signing method. Consult the service documentation for "
        "details.",
        INFER,
        "AWS JSON services' wording; not seen from SES v2",
    ),
    "credential_scope": SesApiError(
        403,
        "InvalidSignatureException",
        "{}",
        INFER,
        'texts: DynamoDB\'s answers quoted in mhart/dynalite, {"message": ...} bodies of restJson '
        "services (joona/aws-es-curl#15, cllunsford/aws-signing-proxy#25); not seen from SES v2",
    ),
    "clock_skew": SesApiError(
        403,
        "InvalidSignatureException",
        "{}",
        INFER,
        "text and 15 min: aws-sdk-js#254, #527 (InvalidSignatureException), DynamoDB via "
        "mhart/dynalite; 'not yet current': scratchstack-aws-signature's docs; not seen from SES",
    ),
    "template_missing": SesApiError(
        404,
        "NotFoundException",
        "{}",
        DOC,
        "sesv2 model (Get/Update/DeleteEmailTemplate); text inferred",
    ),
    "template_exists": SesApiError(
        400, "AlreadyExistsException", "{}", DOC, "sesv2 model (CreateEmailTemplate); text inferred"
    ),
    "template_limit": SesApiError(
        400,
        "LimitExceededException",
        "{}",
        DOC,
        "sesv2 model (CreateEmailTemplate); 20,000 templates a region: DG-QUOTAS",
    ),
    "internal": SesApiError(500, "InternalFailure", "{}", DOC, "AWS common errors", False),
    "unavailable": SesApiError(503, "ServiceUnavailable", "{}", DOC, "AWS common errors", False),
}

#: The developer guide's wording for v2 throttling (`api_throttle = "ThrottlingException"`).
V2_GUIDE_THROTTLING: dict[str, SesApiError] = {
    "rate_per_s": SesApiError(
        400, "ThrottlingException", "Maximum sending rate exceeded.", DOC, "DG-QERR, BLOG-LIM"
    ),
    "daily_quota": SesApiError(
        400, "ThrottlingException", "Daily message quota exceeded.", DOC, "DG-QERR, BLOG-LIM"
    ),
}

V1_ERRORS: dict[str, SesApiError] = {
    "rate_per_s": SesApiError(
        400,
        "Throttling",
        "Maximum sending rate exceeded.",
        USER,
        "amazon-ses-developer-guide#60 (PHP SDK, whole XML body); aws-sdk#76 (Go SDK)",
    ),
    "daily_quota": SesApiError(
        400,
        "Throttling",
        "Daily message quota exceeded.",
        INFER,
        "text: DG-QERR; code and status as the rate limit's",
    ),
    "verified": SesApiError(
        400,
        "MessageRejected",
        _NOT_VERIFIED,
        USER,
        "sendportal#94 (whole XML body); fluent-smtp#74",
    ),
    "max_recipients": SesApiError(
        400, "InvalidParameterValue", "Recipient count exceeds 50.", INFER, "limit: DG-QUOTAS"
    ),
    "max_message_bytes": SesApiError(
        400,
        "InvalidParameterValue",
        "Message length is more than {} bytes long.",
        INFER,
        "limit: DG-QUOTAS (10 MB for v1); text inferred",
    ),
    "bad_request": SesApiError(400, "InvalidParameterValue", "{}", DOC, "ses model, common errors"),
    "not_found": SesApiError(400, "InvalidAction", "{}", DOC, "AWS common errors"),
    "missing_auth": SesApiError(
        403,
        "MissingAuthenticationToken",
        "Request is missing Authentication Token",
        DOC,
        "AWS common errors",
    ),
    "incomplete_signature": SesApiError(400, "IncompleteSignature", "{}", DOC, "AWS common errors"),
    "unknown_key": SesApiError(
        403,
        "InvalidClientTokenId",
        "The security token included in the request is invalid.",
        DOC,
        "AWS common errors",
    ),
    "bad_signature": SesApiError(
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. Check "
        "your AWS Secret Access Key and signing method. Consult the service documentation for "
        "details.",
        DOC,
        "AWS common errors",
    ),
    "credential_scope": SesApiError(
        403,
        "SignatureDoesNotMatch",
        "{}",
        USER,
        "SQS (Query): 403 SignatureDoesNotMatch 'Credential should be scoped to a valid region, "
        "not ...' (a user's log); SES's text in aws/aws-sdk-java#1097's title; STS's service text",
    ),
    "clock_skew": SesApiError(
        403,
        "SignatureDoesNotMatch",
        "{}",
        USER,
        "Query services' SignatureDoesNotMatch 'Signature expired: ... (... - 15 min.)': SNS "
        "aws-sdk-js#265, SQS #401, STS aws-cli#6676; SES itself inferred (aws-sdk-js#2105)",
    ),
    "template_missing": SesApiError(
        400,
        "TemplateDoesNotExist",
        "{}",
        DOC,
        "ses model (GetTemplate, UpdateTemplate); text inferred",
    ),
    "template_exists": SesApiError(
        400, "AlreadyExists", "{}", DOC, "ses model (CreateTemplate); text inferred"
    ),
    "template_limit": SesApiError(
        400, "LimitExceeded", "{}", DOC, "ses model (CreateTemplate); 20,000 a region: DG-QUOTAS"
    ),
    "internal": SesApiError(500, "InternalFailure", "{}", DOC, "AWS common errors", False),
    "unavailable": SesApiError(503, "ServiceUnavailable", "{}", DOC, "AWS common errors", False),
}

#: The refusals that hold only for now (a throttle, an outage): any other refusal of a message
#: (MessageRejected, a bad parameter) is for good, and a client that reports it is right.
TRANSIENT = frozenset({"rate_per_s", "daily_quota", "internal", "unavailable"})

# What a fault rule's bare HTTP status means when it names no error code.
_BY_STATUS = {400: "bad_request", 404: "not_found", 429: "rate_per_s", 500: "internal"}


def error_for(
    name: str,
    version: str,
    detail: str = "",
    throttle: str = THROTTLE_STYLES[0],
    region: str = "us-east-1",
) -> SesApiError:
    """The error SES answers for `name` (a limit's field name or an error kind) in `version`,
    from a server in `region`."""
    if version == V2 and throttle == "ThrottlingException" and name in V2_GUIDE_THROTTLING:
        return V2_GUIDE_THROTTLING[name].filled(detail, region)
    table = V2_ERRORS if version == V2 else V1_ERRORS
    return table[name].filled(detail, region)


def for_rule(status: int, code: str | None, message: str, version: str) -> SesApiError:
    """The error a fault rule asks for: its status, its code or SES's code for that status."""
    if code is None:
        kind = _BY_STATUS.get(status, "unavailable" if status >= 500 else "bad_request")
        code = (V2_ERRORS if version == V2 else V1_ERRORS)[kind].code
    return SesApiError(status, code, message, INFER, "fault rule", status < 500)
