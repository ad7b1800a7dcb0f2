"""The message SES would build from a v2 "Simple" or "Template" content, or v1 SendEmail.

The ledger records messages as bytes with headers, whatever door they came through, so the
scorer and the page read an API message like an SMTP one.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")


def compose(
    *,
    sender: str,
    to: Sequence[str],
    cc: Sequence[str],
    subject: str,
    text: str | None,
    html: str | None,
    reply_to: Sequence[str] = (),
    headers: Sequence[tuple[str, str]] = (),
    date_s: float | None = None,
) -> bytes:
    """A MIME message with the given parts (Bcc is never written, as SES does not)."""
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    if to:
        message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    if reply_to:
        message["Reply-To"] = ", ".join(reply_to)
    message["Subject"] = subject
    if date_s is not None:
        message["Date"] = email.utils.formatdate(date_s)
    for name, value in headers:
        message[name] = value
    if "MIME-Version" not in message:
        message["MIME-Version"] = "1.0"
    if text is not None:
        message.set_content(text)
    if html is not None:
        if text is None:
            message.set_content(html, subtype="html")
        else:
            message.add_alternative(html, subtype="html")
    if text is None and html is None:
        message.set_content("")
    return message.as_bytes()


def render(template: str, data: Mapping[str, Any]) -> str:
    """SES's simple substitution: ``{{name}}`` (dotted names reach into objects)."""

    def value(found: re.Match[str]) -> str:
        current: Any = data
        for part in found.group(1).split("."):
            if not isinstance(current, Mapping) or part not in current:
                return ""
            current = current[part]
        return str(current)

    return _PLACEHOLDER.sub(value, template)


def template_data(raw: str | None) -> dict[str, Any]:
    """TemplateData is a JSON object in a string; anything else is a bad request."""
    if not raw:
        return {}
    parsed = json.loads(raw)
    if not isinstance(parsed, dict):
        raise ValueError("TemplateData must be a JSON object")
    return parsed


def content_key(*parts: object) -> str:
    """The logical identity of a message without a Message-ID: a hash of what was asked.

    An SDK's retry sends the same request again, so its attempts share the key.
    """
    return "sha256:" + hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
