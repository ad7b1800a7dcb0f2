"""Stored email templates: the account's book of them, and its operations in both versions.

v2 (REST): CreateEmailTemplate ``POST /v2/email/templates``, ListEmailTemplates ``GET`` there,
Get/Update/DeleteEmailTemplate ``GET``/``PUT``/``DELETE /v2/email/templates/{TemplateName}``.
v1 (Query): CreateTemplate, GetTemplate, ListTemplates, UpdateTemplate, DeleteTemplate (and
SendTemplatedEmail, in v1_templated). Shapes and error codes are the service models' (botocore
``ses/2010-12-01``, ``sesv2/2019-09-27``); the error texts are inferred. A stored template is
what a v2 ``Template`` content names by ``TemplateName``, so a message sent with one renders
exactly as in the messages the fake builds from an inline template.

The book is the account's, not a run's: a reset of messages and faults keeps it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape

from harness.server.sesapi.requests import BadRequest

#: The most templates an account holds in a region (DG-QUOTAS: 20,000).
MAX_TEMPLATES = 20_000
#: The most a template's parts may hold together (DG-QUOTAS: 500 KB).
MAX_TEMPLATE_BYTES = 500 * 1024
#: A name longer than this is refused (ours: SES documents no length; a bound for the book).
MAX_NAME_CHARS = 1024
#: Page sizes of ListEmailTemplates / ListTemplates (the models: 1 to 100, 10 by default).
PAGE_DEFAULT, PAGE_MAX = 10, 100
#: A template's parts, as v2 names them and as v1 does.
PARTS = (("Subject", "SubjectPart"), ("Text", "TextPart"), ("Html", "HtmlPart"))


class TemplateBook:
    """The account's templates by name, in order of creation, each with when it was made.

    `content` is what sends read: ``{name: {"Subject": ..., "Text": ..., "Html": ...}}``.

    >>> book = TemplateBook({"welcome": {"Subject": "Hi {{name}}", "Text": "Hello"}})
    >>> book.get("welcome")["Subject"]
    'Hi {{name}}'
    """

    def __init__(self, templates: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.content: dict[str, dict[str, str]] = {}
        self.created: dict[str, float] = {}
        for name, parts in (templates or {}).items():
            self.create(name, parts, time.time())

    def __len__(self) -> int:
        return len(self.content)

    def create(self, name: Any, parts: Mapping[str, Any], now: float) -> None:
        _check_name(name)
        if name in self.content:
            raise BadRequest(f"Template {name} already exists.", kind="template_exists")
        if len(self.content) >= MAX_TEMPLATES:
            raise BadRequest(
                f"The account holds {MAX_TEMPLATES} templates, its most.", kind="template_limit"
            )
        self.content[name] = _checked(parts)
        self.created[name] = now

    def get(self, name: str) -> dict[str, str]:
        if name not in self.content:
            raise BadRequest(f"Template {name} does not exist.", kind="template_missing")
        return self.content[name]

    def update(self, name: str, parts: Mapping[str, Any]) -> None:
        self.get(name)
        self.content[name] = _checked(parts)

    def delete(self, name: str, *, missing_ok: bool = False) -> None:
        if not missing_ok:
            self.get(name)
        self.content.pop(name, None)
        self.created.pop(name, None)

    def page(self, token: str | None, size: int) -> tuple[list[str], str | None]:
        """A page of names from `token` (None: the first), and the next page's token."""
        names = list(self.content)
        start = 0
        if token:
            if not token.isdigit() or int(token) > len(names):
                raise BadRequest("Invalid NextToken.")
            start = int(token)
        end = start + size
        return names[start:end], str(end) if end < len(names) else None

    def listing(self) -> list[dict[str, Any]]:
        """Every template with its parts and creation time (the live page's list)."""
        return [
            {"name": name, "created": self.created[name], **parts}
            for name, parts in self.content.items()
        ]


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise BadRequest("TemplateName is required and must be a non-empty string.")
    if len(name) > MAX_NAME_CHARS or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise BadRequest(
            f"TemplateName must be at most {MAX_NAME_CHARS} characters, without control characters."
        )


def _checked(parts: Mapping[str, Any]) -> dict[str, str]:
    """The parts a template holds (Subject, Text, Html), each a string when given."""
    out = {}
    for key, _ in PARTS:
        value = parts.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise BadRequest(f"TemplateContent.{key} must be a string.")
        out[key] = value
    if sum(len(v.encode("utf-8", "surrogatepass")) for v in out.values()) > MAX_TEMPLATE_BYTES:
        raise BadRequest(f"The template is over {MAX_TEMPLATE_BYTES // 1024} KB.")
    return out


def page_size(value: str | None, *, v1: bool) -> int:
    """PageSize (v2: 1 to 100, else refused) or MaxItems (v1: past 100 is 100)."""
    if value is None or value == "":
        return PAGE_DEFAULT
    if not value.isdigit() or int(value) < 1 or (not v1 and int(value) > PAGE_MAX):
        name = "MaxItems" if v1 else "PageSize"
        raise BadRequest(f"{name} must be a whole number from 1 to {PAGE_MAX}.")
    return min(int(value), PAGE_MAX)


# --- v2 (JSON) -------------------------------------------------------------------------------


V2_OPERATIONS = (
    "CreateEmailTemplate",
    "ListEmailTemplates",
    "GetEmailTemplate",
    "UpdateEmailTemplate",
    "DeleteEmailTemplate",
)


def v2_operation(
    book: TemplateBook,
    operation: str,
    body: Mapping[str, Any],
    name: str,
    query: Mapping[str, str],
    now: float,
) -> dict[str, Any]:
    """Carry out a v2 template operation; its JSON answer. `name` is the path's TemplateName
    (Create's is in the body), `query` the query string (List's paging)."""
    if operation == "CreateEmailTemplate":
        book.create(body.get("TemplateName"), _v2_content(body), now)
    elif operation == "UpdateEmailTemplate":
        book.update(name, _v2_content(body))
    elif operation == "DeleteEmailTemplate":
        book.delete(name)
    elif operation == "GetEmailTemplate":
        return {"TemplateName": name, "TemplateContent": dict(book.get(name))}
    elif operation == "ListEmailTemplates":
        return _v2_list(book, query)
    return {}


def _v2_content(body: Mapping[str, Any]) -> Mapping[str, Any]:
    content = body.get("TemplateContent")
    if not isinstance(content, dict):
        raise BadRequest("TemplateContent is required and must be an object.")
    return content


def _v2_list(book: TemplateBook, query: Mapping[str, str]) -> dict[str, Any]:
    names, token = book.page(query.get("NextToken"), page_size(query.get("PageSize"), v1=False))
    answer: dict[str, Any] = {
        "TemplatesMetadata": [
            {"TemplateName": name, "CreatedTimestamp": book.created[name]} for name in names
        ]
    }
    if token is not None:
        answer["NextToken"] = token
    return answer


# --- v1 (Query/XML) --------------------------------------------------------------------------

V1_ACTIONS = ("CreateTemplate", "GetTemplate", "ListTemplates", "UpdateTemplate", "DeleteTemplate")


def v1_operation(book: TemplateBook, action: str, params: Mapping[str, str], now: float) -> str:
    """Carry out a v1 template action; the XML inside its ``<ActionResult>``."""
    if action in ("CreateTemplate", "UpdateTemplate"):
        name = params.get("Template.TemplateName")
        if not name:
            raise BadRequest(
                "1 validation error detected: Value null at 'template.templateName' failed to "
                "satisfy constraint: Member must not be null"
            )
        parts = {key: params[f"Template.{v1}"] for key, v1 in PARTS if f"Template.{v1}" in params}
        if action == "CreateTemplate":
            book.create(name, parts, now)
        else:
            book.update(name, parts)
        return ""
    if action == "ListTemplates":
        size = page_size(params.get("MaxItems"), v1=True)
        names, token = book.page(params.get("NextToken"), size)
        members = "".join(
            f"<member><Name>{escape(n)}</Name>"
            f"<CreatedTimestamp>{iso(book.created[n])}</CreatedTimestamp></member>"
            for n in names
        )
        more = f"<NextToken>{token}</NextToken>" if token else ""
        return f"<TemplatesMetadata>{members}</TemplatesMetadata>{more}"
    name = params.get("TemplateName", "")
    if action == "DeleteTemplate":  # the model names no error: an unknown name is no error
        book.delete(name, missing_ok=True)
        return ""
    parts = book.get(name)
    return f"<Template><TemplateName>{escape(name)}</TemplateName>{_v1_parts(parts)}</Template>"


def _v1_parts(parts: Mapping[str, str]) -> str:
    return "".join(f"<{v1}>{escape(parts[key])}</{v1}>" for key, v1 in PARTS if key in parts)


def iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at * 1000) % 1000:03d}Z"
