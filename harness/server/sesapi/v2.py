"""SES API v2 (``sesv2``, JSON over REST): requests into sends, results into JSON answers.

Routes: ``POST /v2/email/outbound-emails`` (SendEmail: Simple, Raw or Template content),
``POST /v2/email/outbound-bulk-emails`` (SendBulkEmail), ``GET /v2/email/account`` (GetAccount).
Errors are answered as restJson services do: the HTTP status, the code in ``x-amzn-ErrorType``
and ``{"message": ...}`` as the body (the shape applications logged, etailors_amazon_ses#117).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from harness.core.api_errors import SesApiError
from harness.server.sesapi import mime
from harness.server.sesapi.requests import BadRequest, Send, raw_send, recipients_of

SEND_EMAIL = "/v2/email/outbound-emails"
SEND_BULK_EMAIL = "/v2/email/outbound-bulk-emails"
GET_ACCOUNT = "/v2/email/account"

Templates = Mapping[str, Mapping[str, str]]


def loads(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(parsed, dict):
        raise BadRequest("The request body must be a JSON object.")
    return parsed


def _table(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise BadRequest(f"{key} must be an object.")
    return value


def _addresses(destination: Mapping[str, Any], key: str) -> list[str]:
    value = destination.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"Destination.{key} must be a list of strings.")
    return value


def _text(part: Mapping[str, Any], key: str) -> str | None:
    value = part.get(key)
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("Data"), str):
        raise BadRequest(f"{key}.Data is required.")
    return value["Data"]


def _headers(content: Mapping[str, Any]) -> list[tuple[str, str]]:
    out = []
    for item in content.get("Headers") or []:
        if not isinstance(item, dict) or not {"Name", "Value"} <= set(item):
            raise BadRequest("Each header needs a Name and a Value.")
        out.append((str(item["Name"]), str(item["Value"])))
    return out


def _template(
    template: Mapping[str, Any], data_json: str | None, templates: Templates
) -> tuple[str, str | None, str | None]:
    """(subject, text, html) of a template with its data substituted."""
    content = template.get("TemplateContent")
    if content is None:
        name = (
            template.get("TemplateName") or str(template.get("TemplateArn", "")).rpartition("/")[2]
        )
        if name not in templates:
            raise BadRequest(f"Template {name} does not exist.", kind="not_found")
        content = templates[name]
    try:
        data = mime.template_data(data_json)
    except ValueError as error:
        raise BadRequest(f"Invalid TemplateData: {error}") from None
    subject = mime.render(str(content.get("Subject", "")), data)
    text = mime.render(content["Text"], data) if content.get("Text") is not None else None
    html = mime.render(content["Html"], data) if content.get("Html") is not None else None
    return subject, text, html


def send_email(body: Mapping[str, Any], templates: Templates, now: float) -> Send:
    """The one message a SendEmail asks for."""
    content = _table(body, "Content")
    destination = _table(body, "Destination")
    to, cc = _addresses(destination, "ToAddresses"), _addresses(destination, "CcAddresses")
    bcc = _addresses(destination, "BccAddresses")
    sender = body.get("FromEmailAddress")
    reply_to = body.get("ReplyToAddresses") or []
    if "Raw" in content:
        try:
            data = base64.b64decode(_table(content, "Raw").get("Data", ""), validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("Raw.Data must be base64.") from None
        given = (*to, *cc, *bcc)
        return raw_send(data, sender, tuple(given) or None)
    if not sender:
        raise BadRequest("Missing required parameter FromEmailAddress.")
    recipients = recipients_of(to, cc, bcc)
    if "Simple" in content:
        simple = _table(content, "Simple")
        subject = _text(simple, "Subject")
        body_part = _table(simple, "Body")
        text, html = _text(body_part, "Text"), _text(body_part, "Html")
        headers = _headers(simple)
    elif "Template" in content:
        template = _table(content, "Template")
        subject, text, html = _template(template, template.get("TemplateData"), templates)
        headers = _headers(template)
    else:
        raise BadRequest("Content must have one of Simple, Raw or Template.")
    if subject is None:
        raise BadRequest("Subject is required.")
    data = mime.compose(
        sender=sender,
        to=to,
        cc=cc,
        subject=subject,
        text=text,
        html=html,
        reply_to=reply_to,
        headers=headers,
        date_s=now,
    )
    message_id = next((v for k, v in headers if k.lower() == "message-id"), None)
    key = message_id or mime.content_key(
        "v2", sender, recipients, subject, text, html, headers, content.get("Template")
    )
    return Send(sender, recipients, data, key)


def send_bulk_email(body: Mapping[str, Any], templates: Templates, now: float) -> list[Send]:
    """One message per entry: the default template with the entry's replacement data."""
    sender = body.get("FromEmailAddress")
    if not sender:
        raise BadRequest("Missing required parameter FromEmailAddress.")
    template = _table(_table(body, "DefaultContent"), "Template")
    entries = body.get("BulkEmailEntries")
    if not isinstance(entries, list) or not entries:
        raise BadRequest("BulkEmailEntries must be a non-empty list.")
    if len(entries) > 50:
        raise BadRequest("BulkEmailEntries can have at most 50 entries.")
    sends = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise BadRequest(f"BulkEmailEntries[{index}] must be an object.")
        destination = _table(entry, "Destination")
        to, cc = _addresses(destination, "ToAddresses"), _addresses(destination, "CcAddresses")
        recipients = recipients_of(to, cc, _addresses(destination, "BccAddresses"))
        replacement = _table(_table(entry, "ReplacementEmailContent"), "ReplacementTemplate")
        data_json = replacement.get("ReplacementTemplateData") or template.get("TemplateData")
        subject, text, html = _template(template, data_json, templates)
        data = mime.compose(
            sender=sender, to=to, cc=cc, subject=subject, text=text, html=html, date_s=now
        )
        key = mime.content_key("v2-bulk", sender, recipients, subject, text, html, index)
        sends.append(Send(sender, recipients, data, key))
    return sends


# --- answers ---------------------------------------------------------------------------------

# What a bulk entry's Status is when the account's limits refuse it.
BULK_STATUS = {
    "rate_per_s": "ACCOUNT_THROTTLED",
    "daily_quota": "ACCOUNT_DAILY_QUOTA_EXCEEDED",
    "verified": "MESSAGE_REJECTED",
    "max_message_bytes": "MESSAGE_REJECTED",
    "max_recipients": "INVALID_PARAMETER",
}


def sent(message_id: str) -> dict[str, Any]:
    return {"MessageId": message_id}


def bulk_result(results: list[tuple[str | None, str | None, SesApiError | None]]) -> dict[str, Any]:
    """Entries as (message id, refusing limit, error): SUCCESS or the status for the limit."""
    out = []
    for message_id, limit, error in results:
        if error is None:
            out.append({"Status": "SUCCESS", "MessageId": message_id})
        else:
            status = BULK_STATUS.get(limit or "", "FAILED")
            out.append({"Status": status, "Error": error.message})
    return {"BulkEmailEntryResults": out}


def account(
    quota: tuple[float, float, float], *, sandbox: bool, sending: bool = True
) -> dict[str, Any]:
    max_24h, rate, used = quota
    return {
        "DedicatedIpAutoWarmupEnabled": False,
        "EnforcementStatus": "HEALTHY",
        "ProductionAccessEnabled": not sandbox,
        "SendQuota": {"Max24HourSend": max_24h, "MaxSendRate": rate, "SentLast24Hours": used},
        "SendingEnabled": sending,
    }


def error_headers(error: SesApiError, request_id: str) -> dict[str, str]:
    return {
        "x-amzn-ErrorType": error.code,
        "x-amzn-RequestId": request_id,
        "Content-Type": "application/json",
    }


def error_body(error: SesApiError) -> bytes:
    return json.dumps({"message": error.message}).encode()
