"""SES API v2 (``sesv2``, JSON over REST): requests into sends, results into JSON answers.

Routes: ``POST /v2/email/outbound-emails`` (SendEmail: Simple, Raw or Template content),
``POST /v2/email/outbound-bulk-emails`` (SendBulkEmail), ``GET /v2/email/account`` (GetAccount).
Errors are answered as restJson services do: the HTTP status, the code in ``x-amzn-ErrorType``
and ``{"message": ...}`` as the body (the shape applications logged, etailors_amazon_ses#117).

Every field the fake reads is checked for its type and content before anything is built, and a
bad one is SES's ``BadRequestException`` (the sesv2 model's error for "the input you provided is
invalid"), never a 500. Constraints the model states (at most 15 headers; a header's name and
value, their lengths and patterns; TemplateData's 262,144 characters) are refused in the words
of AWS's validation errors ("1 validation error detected: ..."); type errors and line breaks in
words of ours (inferred: no SES answer to such a request was found).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from harness.core.api_errors import SesApiError
from harness.server.sesapi import mime
from harness.server.sesapi.requests import (
    BadRequest,
    Send,
    address,
    addresses,
    count_recipients,
    header_text,
    in_configuration_set,
    raw_send,
    recipients_of,
)

SEND_EMAIL = "/v2/email/outbound-emails"
SEND_BULK_EMAIL = "/v2/email/outbound-bulk-emails"
GET_ACCOUNT = "/v2/email/account"
#: SES v2's message cap (DG-QUOTAS): a rendered template may not pass it.
MAX_MESSAGE_BYTES = 40 * 1024 * 1024
MAX_BULK_ENTRIES = 50

# The sesv2 model's constraints (botocore/data/sesv2/2019-09-27/service-2.json).
MAX_HEADERS = 15  # MessageHeaderList
HEADER_NAME = re.compile(r"[!-9;-@A-~]{1,126}")  # MessageHeaderName: ^[!-9;-@A-~]+$, 1-126
HEADER_VALUE = re.compile(r"[ -~]{1,995}")  # MessageHeaderValue: [ -~]*, 1-995
MAX_TEMPLATE_DATA = 262_144  # EmailTemplateData
#: Headers SES writes itself from the request's other fields (a custom one would be a second).
WRITTEN = frozenset(
    [
        "from",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "subject",
        "date",
        "content-type",
        "content-transfer-encoding",
    ]
)

Templates = Mapping[str, Mapping[str, str]]


def loads(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body or b"{}")
    except RecursionError:
        raise BadRequest("The request body is nested too deeply.") from None
    except ValueError:
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(parsed, dict):
        raise BadRequest("The request body must be a JSON object.")
    return parsed


# --- fields, checked -------------------------------------------------------------------------


def _table(data: Mapping[str, Any], key: str, where: str = "") -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"{where}{key} must be an object.")
    return value


def _string(data: Mapping[str, Any], key: str, where: str = "") -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{where}{key} must be a string.")
    return value


def _list(data: Mapping[str, Any], key: str, where: str = "") -> list[Any]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest(f"{where}{key} must be a list.")
    return value


def _destination(data: Mapping[str, Any], where: str = "") -> tuple[list[str], ...]:
    """(to, cc, bcc), counted before any address is looked at."""
    destination = _table(data, "Destination", where)
    where = f"{where}Destination."
    keys = ("ToAddresses", "CcAddresses", "BccAddresses")
    lists = [_list(destination, key, where) for key in keys]
    count_recipients(*lists)
    pairs = zip(keys, lists, strict=True)
    return tuple(addresses(values, f"{where}{key}") for key, values in pairs)


def _text(part: Mapping[str, Any], key: str, where: str) -> str | None:
    """A Content's Data (its Charset checked and left: the fake writes UTF-8), or None."""
    if part.get(key) is None:
        return None
    value = _table(part, key, where)
    data = value.get("Data")
    if not isinstance(data, str):
        raise BadRequest(f"{where}{key}.Data is required and must be a string.")
    _string(value, "Charset", f"{where}{key}.")
    return data


def _invalid(path: str, constraint: str) -> BadRequest:
    """AWS's wording for a model constraint (the value itself is left out: it may be huge)."""
    return BadRequest(
        f"1 validation error detected: Value at '{path}' failed to satisfy constraint: "
        f"Member must {constraint}"
    )


def _headers(content: Mapping[str, Any], where: str, path: str) -> list[tuple[str, str]]:
    items = _list(content, "Headers", where)
    if len(items) > MAX_HEADERS:
        raise _invalid(f"{path}.headers", f"have length less than or equal to {MAX_HEADERS}")
    out = []
    for n, item in enumerate(items, 1):
        if not isinstance(item, dict) or not isinstance(item.get("Name"), str):
            raise BadRequest(f"{where}Headers.{n} needs a Name and a Value, both strings.")
        name, value = item["Name"], item.get("Value")
        if not isinstance(value, str):
            raise BadRequest(f"{where}Headers.{n} needs a Name and a Value, both strings.")
        member = f"{path}.headers.{n}.member"
        if not HEADER_NAME.fullmatch(name):
            raise _invalid(f"{member}.name", "satisfy regular expression pattern: ^[!-9;-@A-~]+$")
        if not HEADER_VALUE.fullmatch(value):
            raise _invalid(f"{member}.value", "satisfy regular expression pattern: [ -~]*")
        if name.lower() in WRITTEN:
            raise BadRequest(f"{where}Headers.{n}: SES writes the {name} header itself.")
        out.append((name, value))
    return out


def _template_data(data: Mapping[str, Any], key: str, where: str, path: str) -> dict[str, Any]:
    raw = _string(data, key, where)
    if raw is not None and len(raw) > MAX_TEMPLATE_DATA:
        raise _invalid(path, f"have length less than or equal to {MAX_TEMPLATE_DATA}")
    try:
        return mime.template_data(raw)
    except ValueError as error:
        raise BadRequest(f"Invalid {where}{key}: {error}") from None


class _Template:
    """A Template content, checked: its subject, text and html, and the data for them."""

    def __init__(self, template: Mapping[str, Any], templates: Templates, where: str) -> None:
        content = _table(template, "TemplateContent", where)
        if "TemplateContent" not in template or template["TemplateContent"] is None:
            name = _string(template, "TemplateName", where)
            arn = _string(template, "TemplateArn", where)
            name = name or (arn or "").rpartition("/")[2]
            if name not in templates:
                raise BadRequest(f"Template {name} does not exist.", kind="not_found")
            content = dict(templates[name])
        self.name = _string(template, "TemplateName", where)
        inner = f"{where}TemplateContent."
        self.subject = header_text(_string(content, "Subject", inner) or "", f"{inner}Subject")
        self.text = _string(content, "Text", inner)
        self.html = _string(content, "Html", inner)
        self.data_json = _string(template, "TemplateData", where)
        self.data = _template_data(template, "TemplateData", where, "content.template.templateData")

    def rendered(self, data: Mapping[str, Any]) -> tuple[str, str | None, str | None]:
        """(subject, text, html) with `data` substituted, together under SES's message cap."""
        try:
            subject = mime.render(self.subject, data, MAX_MESSAGE_BYTES)
            budget = MAX_MESSAGE_BYTES - len(subject)
            text = None if self.text is None else mime.render(self.text, data, budget)
            budget -= len(text or "")
            html = None if self.html is None else mime.render(self.html, data, budget)
        except mime.TooLarge:
            raise BadRequest(str(MAX_MESSAGE_BYTES), kind="max_message_bytes") from None
        # A value may hold a line break: the subject would end there, so it is refused.
        header_text(subject, "the rendered Subject")
        return subject, text, html

    def identity(self) -> list[Any]:
        return [self.name, self.subject, self.text, self.html, self.data_json]


def send_email(body: Mapping[str, Any], templates: Templates, now: float) -> Send:
    """The one message a SendEmail asks for, checked; built when its `build` is called."""
    send = _send_email(body, templates, now)
    return in_configuration_set(send, body.get("ConfigurationSetName"))


def _send_email(body: Mapping[str, Any], templates: Templates, now: float) -> Send:
    content = _table(body, "Content")
    to, cc, bcc = _destination(body)
    sender = _string(body, "FromEmailAddress")
    reply_to = addresses(_list(body, "ReplyToAddresses"), "ReplyToAddresses")
    if "Raw" in content:
        raw = _table(content, "Raw", "Content.")
        encoded = _string(raw, "Data", "Content.Raw.") or ""
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("Content.Raw.Data must be base64.") from None
        given = (*to, *cc, *bcc)
        if sender:
            address(sender, "FromEmailAddress")
        return raw_send(data, sender, tuple(given) or None)
    if not sender:
        raise BadRequest("Missing required parameter FromEmailAddress.")
    address(sender, "FromEmailAddress")
    recipients = recipients_of(to, cc, bcc)
    build: Callable[[], tuple[str, str | None, str | None]]
    if "Simple" in content:
        simple = _table(content, "Simple", "Content.")
        where = "Content.Simple."
        subject_part = _table(simple, "Subject", where)
        if "Subject" not in simple:
            raise BadRequest("Subject is required.")
        subject = header_text(_text(simple, "Subject", where), f"{where}Subject.Data")
        body_part = _table(simple, "Body", where)
        text = _text(body_part, "Text", f"{where}Body.")
        html = _text(body_part, "Html", f"{where}Body.")
        _string(subject_part, "Charset", f"{where}Subject.")
        headers = _headers(simple, where, "content.simple")
        identity: list[Any] = [subject, text, html]
        build = lambda: (subject, text, html)  # noqa: E731
        work: int | None = sum(len(part or "") for part in (subject, text, html))
    elif "Template" in content:
        where = "Content.Template."
        table = _table(content, "Template", "Content.")
        template = _Template(table, templates, where)
        headers = _headers(table, where, "content.template")
        identity = template.identity()
        build = lambda: template.rendered(template.data)  # noqa: E731
        work = None
    else:
        raise BadRequest("Content must have one of Simple, Raw or Template.")
    message_id = next((v for k, v in headers if k.lower() == "message-id"), None)
    key = message_id or mime.content_key("v2", sender, recipients, identity, headers)

    def compose() -> bytes:
        subject, text, html = build()
        return mime.compose(
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

    if work is not None:
        work += 40 * len(recipients) + sum(len(name) + len(value) for name, value in headers)
    return Send(sender, recipients, key, compose, work)


def with_tenant(sends: list[Send], body: Mapping[str, Any]) -> list[Send]:
    """The sends of a request that names its SES tenant (TenantName, 2025), named so."""
    tenant = _string(body, "TenantName")
    return [dataclasses.replace(send, tenant=tenant) for send in sends] if tenant else sends


def send_bulk_email(body: Mapping[str, Any], templates: Templates, now: float) -> list[Send]:
    """One message per entry: the default template with the entry's replacement data."""
    sender = _string(body, "FromEmailAddress")
    if not sender:
        raise BadRequest("Missing required parameter FromEmailAddress.")
    address(sender, "FromEmailAddress")
    default = _table(_table(body, "DefaultContent"), "Template", "DefaultContent.")
    template = _Template(default, templates, "DefaultContent.Template.")
    entries = body.get("BulkEmailEntries")
    if not isinstance(entries, list) or not entries:
        raise BadRequest("BulkEmailEntries must be a non-empty list.")
    if len(entries) > MAX_BULK_ENTRIES:
        raise BadRequest(f"BulkEmailEntries can have at most {MAX_BULK_ENTRIES} entries.")
    sends = []
    for index, entry in enumerate(entries):
        where = f"BulkEmailEntries.{index + 1}."
        if not isinstance(entry, dict):
            raise BadRequest(f"BulkEmailEntries.{index + 1} must be an object.")
        to, cc, bcc = _destination(entry, where)
        recipients = recipients_of(to, cc, bcc)
        replacement = _table(
            _table(entry, "ReplacementEmailContent", where),
            "ReplacementTemplate",
            f"{where}ReplacementEmailContent.",
        )
        own = _string(replacement, "ReplacementTemplateData", where)
        data = (
            _template_data(
                replacement,
                "ReplacementTemplateData",
                f"{where}ReplacementEmailContent.ReplacementTemplate.",
                "bulkEmailEntries.member.replacementEmailContent.replacementTemplate",
            )
            if own
            else template.data
        )
        key = mime.content_key("v2-bulk", sender, recipients, template.identity(), own, index)
        compose = _bulk_compose(template, data, sender, to, cc, now)
        sends.append(Send(sender, recipients, key, compose, None))
    return [in_configuration_set(s, body.get("ConfigurationSetName")) for s in sends]


def _bulk_compose(
    template: _Template,
    data: Mapping[str, Any],
    sender: str,
    to: list[str],
    cc: list[str],
    now: float,
) -> Callable[[], bytes]:
    def compose() -> bytes:
        subject, text, html = template.rendered(data)
        return mime.compose(
            sender=sender, to=to, cc=cc, subject=subject, text=text, html=html, date_s=now
        )

    return compose


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
    quota: tuple[float, float, float],
    *,
    sandbox: bool,
    sending: bool = True,
    suppressed_reasons: tuple[str, ...] = (),
) -> dict[str, Any]:
    max_24h, rate, used = quota
    return {
        "DedicatedIpAutoWarmupEnabled": False,
        "EnforcementStatus": "HEALTHY",
        "ProductionAccessEnabled": not sandbox,
        "SendQuota": {"Max24HourSend": max_24h, "MaxSendRate": rate, "SentLast24Hours": used},
        "SendingEnabled": sending,
        "SuppressionAttributes": {"SuppressedReasons": list(suppressed_reasons)},
    }


def error_headers(error: SesApiError, request_id: str) -> dict[str, str]:
    return {
        "x-amzn-ErrorType": error.code,
        "x-amzn-RequestId": request_id,
        "Content-Type": "application/json",
    }


def error_body(error: SesApiError) -> bytes:
    return json.dumps({"message": error.message}).encode()
