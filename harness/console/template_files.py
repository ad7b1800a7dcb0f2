"""`serve --templates FILE_OR_DIR`: stored templates from the files the AWS CLI takes.

A file is JSON, the input of ``aws sesv2 create-email-template --cli-input-json`` or of
``aws ses create-template --cli-input-json``, or a list of them::

    {"TemplateName": "welcome",
     "TemplateContent": {"Subject": "Hi {{name}}", "Text": "Hello {{name}}", "Html": "<p>Hi</p>"}}
    {"Template": {"TemplateName": "welcome", "SubjectPart": "Hi {{name}}", "TextPart": "..."}}

A directory: every ``*.json`` file in it, in name order. A file that is not one of these is an
error naming the file and the key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.core.errors import PlanError

#: A template file larger than this is refused unread (20 templates of SES's 500 KB, with room).
MAX_FILE_BYTES = 16 * 1024 * 1024
_V1_PARTS = {"SubjectPart": "Subject", "TextPart": "Text", "HtmlPart": "Html"}
_V2_PARTS = ("Subject", "Text", "Html")


def load_templates(path: str) -> dict[str, dict[str, str]]:
    """Templates by name, from a file or every ``*.json`` in a directory."""
    where = Path(path)
    if where.is_dir():
        files = sorted(where.glob("*.json"))
        if not files:
            raise PlanError("", "holds no *.json template files", source=path)
    elif where.exists():
        files = [where]
    else:
        raise PlanError("", "no such file or directory", source=path)
    templates: dict[str, dict[str, str]] = {}
    for file in files:
        for name, parts in _read(file):
            if name in templates:
                raise PlanError("TemplateName", f"{name!r} is defined twice", source=str(file))
            templates[name] = parts
    return templates


def _read(file: Path) -> list[tuple[str, dict[str, str]]]:
    try:
        if file.stat().st_size > MAX_FILE_BYTES:
            raise PlanError("", f"over {MAX_FILE_BYTES // 2**20} MiB", source=str(file))
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as error:
        raise PlanError("", f"cannot read: {error.strerror}", source=str(file)) from None
    except UnicodeDecodeError as error:
        raise PlanError("", f"not UTF-8 text: {error.reason}", source=str(file)) from None
    except (ValueError, RecursionError) as error:
        raise PlanError("", f"not valid JSON: {error}", source=str(file)) from None
    items = data if isinstance(data, list) else [data]
    out = []
    for index, item in enumerate(items):
        prefix = f"[{index}]" if isinstance(data, list) else ""
        try:
            out.append(_template(item))
        except PlanError as error:
            raise error.within(source=str(file), prefix=prefix or None) from None
    return out


def _template(item: Any) -> tuple[str, dict[str, str]]:
    allowed = "TemplateName and TemplateContent (sesv2), or Template (ses)"
    if not isinstance(item, dict):
        raise PlanError("", "a template must be a JSON object", allowed=allowed)
    if "Template" in item:
        inner = item["Template"]
        if not isinstance(inner, dict):
            raise PlanError("Template", "must be an object", allowed=", ".join(_V1_PARTS))
        name = _name(inner, "Template.TemplateName")
        return name, _parts(inner, _V1_PARTS, "Template")
    if "TemplateContent" in item:
        name = _name(item, "TemplateName")
        content = item["TemplateContent"]
        if not isinstance(content, dict):
            raise PlanError("TemplateContent", "must be an object", allowed=", ".join(_V2_PARTS))
        return name, _parts(content, {k: k for k in _V2_PARTS}, "TemplateContent")
    raise PlanError("", f"keys {sorted(item)[:5]} are not a template", allowed=allowed)


def _name(item: dict[str, Any], key: str) -> str:
    name = item.get("TemplateName")
    if not isinstance(name, str) or not name:
        raise PlanError(key, "is required: a non-empty string")
    return name


def _parts(item: dict[str, Any], keys: dict[str, str], where: str) -> dict[str, str]:
    parts = {}
    for key, part in keys.items():
        value = item.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise PlanError(f"{where}.{key}", "must be a string")
        parts[part] = value
    unknown = sorted(set(item) - set(keys) - {"TemplateName"})
    if unknown:
        raise PlanError(f"{where}.{unknown[0]}", "is not a template part", allowed=", ".join(keys))
    return parts
