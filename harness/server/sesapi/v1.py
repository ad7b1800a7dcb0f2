"""SES API v1 (``ses``, the Query API of 2010-12-01): form requests in, XML answers out.

Actions: SendEmail, SendRawEmail, GetSendQuota, all ``POST /`` with ``Action=...``. Errors are
``<ErrorResponse>`` with Type, Code and Message, the body users logged from SES
(awsdocs/amazon-ses-developer-guide#60, mettle/sendportal#94). Every field the fake reads is
checked before anything is built; a bad one is ``InvalidParameterValue`` in that body (the
code SES answers bad addresses with, boto/boto#351), never a 500.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from harness.core.api_errors import SesApiError
from harness.server.sesapi import mime
from harness.server.sesapi.requests import (
    MAX_RECIPIENTS,
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

NAMESPACE = "http://ses.amazonaws.com/doc/2010-12-01/"
ACTIONS = ("SendEmail", "SendRawEmail", "SendTemplatedEmail", "GetSendQuota")
#: What a rendered template may hold (a bound for the work; the engine's size cap decides).
MAX_RENDERED_BYTES = 40 * 1024 * 1024
#: Parameters one request may have: every recipient the fake reads, and room for the rest
#: (ours: parsing a form costs per field, and SES's own limit is not known).
MAX_FIELDS = MAX_RECIPIENTS + 1000


def form(body: bytes, query: str = "") -> dict[str, str]:
    """The request's parameters: the query string and the form body together."""
    try:
        pairs = parse_qsl(query, keep_blank_values=True, max_num_fields=MAX_FIELDS)
        pairs += parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=bool(body),
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("The request body is not a valid form.") from None
    return dict(pairs)


def members(params: Mapping[str, str], prefix: str) -> list[str]:
    """``Prefix.member.1``, ``Prefix.member.2``... in order."""
    out = []
    index = 1
    while f"{prefix}.member.{index}" in params:
        out.append(params[f"{prefix}.member.{index}"])
        index += 1
    return out


def _addresses(params: Mapping[str, str], prefix: str) -> list[str]:
    return addresses(members(params, prefix), prefix)


def send_email(params: Mapping[str, str], now: float) -> Send:
    """The message a SendEmail asks for, checked; built when its `build` is called."""
    sender = params.get("Source")
    if not sender:
        raise BadRequest("Missing required parameter Source", kind="bad_request")
    address(sender, "Source")
    keys = ("ToAddresses", "CcAddresses", "BccAddresses")
    count_recipients(*(members(params, f"Destination.{key}") for key in keys))
    to = _addresses(params, "Destination.ToAddresses")
    cc = _addresses(params, "Destination.CcAddresses")
    recipients = recipients_of(to, cc, _addresses(params, "Destination.BccAddresses"))
    subject = params.get("Message.Subject.Data")
    if subject is None:
        raise BadRequest("Missing required parameter Message.Subject.Data")
    header_text(subject, "Message.Subject.Data")
    text, html = params.get("Message.Body.Text.Data"), params.get("Message.Body.Html.Data")
    reply_to = _addresses(params, "ReplyToAddresses")
    key = mime.content_key("v1", sender, recipients, subject, text, html)

    def build() -> bytes:
        return mime.compose(
            sender=sender,
            to=to,
            cc=cc,
            subject=subject,
            text=text,
            html=html,
            reply_to=reply_to,
            date_s=now,
        )

    work = sum(len(part or "") for part in (subject, text, html)) + 40 * len(recipients)
    return in_configuration_set(
        Send(sender, recipients, key, build, work), params.get("ConfigurationSetName")
    )


def send_templated_email(
    params: Mapping[str, str], templates: Mapping[str, Mapping[str, str]], now: float
) -> Send:
    """A SendTemplatedEmail: a stored template (by name or ARN) rendered with TemplateData."""
    sender = params.get("Source")
    if not sender:
        raise BadRequest("Missing required parameter Source", kind="bad_request")
    address(sender, "Source")
    keys = ("ToAddresses", "CcAddresses", "BccAddresses")
    count_recipients(*(members(params, f"Destination.{key}") for key in keys))
    to = _addresses(params, "Destination.ToAddresses")
    cc = _addresses(params, "Destination.CcAddresses")
    recipients = recipients_of(to, cc, _addresses(params, "Destination.BccAddresses"))
    name = params.get("Template") or params.get("TemplateArn", "").rpartition("/")[2]
    if name not in templates:
        raise BadRequest(f"Template {name} does not exist.", kind="template_missing")
    raw_data = params.get("TemplateData")
    if raw_data is None:
        raise BadRequest("Missing required parameter TemplateData")
    try:
        data = mime.template_data(raw_data)
    except ValueError as error:
        raise BadRequest(f"Invalid TemplateData: {error}") from None
    parts = dict(templates[name])
    reply_to = _addresses(params, "ReplyToAddresses")
    key = mime.content_key("v1-templated", sender, recipients, name, raw_data)

    def build() -> bytes:
        try:
            subject, text, html = (
                None
                if parts.get(part) is None
                else mime.render(parts[part], data, MAX_RENDERED_BYTES)
                for part in ("Subject", "Text", "Html")
            )
        except mime.TooLarge:
            raise BadRequest(str(MAX_RENDERED_BYTES), kind="max_message_bytes") from None
        header_text(subject or "", "the rendered Subject")
        return mime.compose(
            sender=sender,
            to=to,
            cc=cc,
            subject=subject or "",
            text=text,
            html=html,
            reply_to=reply_to,
            date_s=now,
        )

    return Send(sender, recipients, key, build, None)


def send_raw_email(params: Mapping[str, str]) -> Send:
    try:
        data = base64.b64decode(params.get("RawMessage.Data", ""), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("RawMessage.Data must be base64") from None
    if not data:
        raise BadRequest("Missing required parameter RawMessage.Data")
    count_recipients(members(params, "Destinations"))
    destinations = tuple(_addresses(params, "Destinations"))
    sender = params.get("Source")
    if sender:
        address(sender, "Source")
    send = raw_send(data, sender, destinations or None)
    return in_configuration_set(send, params.get("ConfigurationSetName"))


# --- answers ---------------------------------------------------------------------------------


def answer(action: str, result: str, request_id: str) -> bytes:
    return (
        f'<{action}Response xmlns="{NAMESPACE}">\n'
        f"  <{action}Result>{result}</{action}Result>\n"
        f"  <ResponseMetadata>\n    <RequestId>{request_id}</RequestId>\n  </ResponseMetadata>\n"
        f"</{action}Response>\n"
    ).encode()


def sent(action: str, message_id: str, request_id: str) -> bytes:
    return answer(action, f"\n    <MessageId>{escape(message_id)}</MessageId>\n  ", request_id)


def send_quota(quota: tuple[float, float, float], request_id: str) -> bytes:
    max_24h, rate, used = quota
    result = (
        f"\n    <Max24HourSend>{max_24h}</Max24HourSend>\n"
        f"    <MaxSendRate>{rate}</MaxSendRate>\n"
        f"    <SentLast24Hours>{used}</SentLast24Hours>\n  "
    )
    return answer("GetSendQuota", result, request_id)


def error_body(error: SesApiError, request_id: str) -> bytes:
    kind = "Sender" if error.sender_fault else "Receiver"
    return (
        f'<ErrorResponse xmlns="{NAMESPACE}">\n'
        f"  <Error>\n    <Type>{kind}</Type>\n    <Code>{escape(error.code)}</Code>\n"
        f"    <Message>{escape(error.message)}</Message>\n  </Error>\n"
        f"  <RequestId>{request_id}</RequestId>\n"
        f"</ErrorResponse>\n"
    ).encode()
