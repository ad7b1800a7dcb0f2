"""A provider's profile as a table (TOML, JSON): a user's own provider, checked like a plan.

::

    name = "acme-relay"
    description = "Our relay: 100 messages a connection, 5 a second refused at MAIL FROM"
    base = "plain"                  # the built-in whose limits and lines fill in the rest

    [limits]                        # any key of harness.Limits
    session_limit = 100
    rate_per_s = 5.0
    quota_stage = "MAIL"

    [replies]                       # a line: a table, or "code text" (then: inferred)
    host = "smtp.acme.example"
    session_cap = { code = 421, text = "4.7.0 Too many messages", evidence = "user-reported" }
    rate_exceeded = "452 4.4.5 Slow down"

    [evidence]                      # why each limit has its value
    session_limit = { evidence = "documented", source = "https://acme.example/docs/smtp" }

Every mistake is a :class:`harness.PlanError` naming the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from harness.core import schema
from harness.core.errors import PlanError
from harness.core.evidence import INFER, LINE_FIELDS, TEXT_FIELDS, Cite, Evidence, Line, Profile
from harness.core.limits import Limits

TOP_KEYS = ("name", "description", "base", "limits", "replies", "evidence", "unknown")
LIMIT_KEYS = tuple(f.name for f in dataclasses.fields(Limits))
EVIDENCE = [e.value for e in Evidence]
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def from_table(data: Any, builtins: Mapping[str, Profile]) -> Profile:
    """The profile a table describes, over its `base` (one of `builtins`, default "plain")."""
    if not isinstance(data, Mapping):
        raise PlanError("", f"a profile is a table of keys, got {data!r}", allowed=TOP_KEYS)
    unknown = sorted(set(data) - set(TOP_KEYS), key=str)
    if unknown:
        raise PlanError(unknown[0], "unknown key", allowed=TOP_KEYS)
    name = _text(data.get("name"), "name", required=True)
    if not _NAME.fullmatch(name):
        raise PlanError("name", f"{name!r} is not a profile name", allowed="letters, digits, ._-")
    base_name = _text(data.get("base", "plain"), "base")
    base = builtins.get(base_name)
    if base is None:
        raise PlanError("base", f"{base_name!r} is not a built-in profile", allowed=list(builtins))
    limits = _table(data.get("limits", {}), "limits")
    for key in limits:
        if key not in LIMIT_KEYS:
            raise PlanError(f"limits.{key}", "unknown key", allowed=LIMIT_KEYS)
    try:
        merged = base.limits.updated(**dict(limits))
    except PlanError as error:
        raise error.within(prefix="limits") from None
    replies = _table(data.get("replies", {}), "replies")
    changes: dict[str, Any] = {}
    for key, value in replies.items():
        if key in TEXT_FIELDS:
            # A server may end its EHLO with a bare "250 " (Postfix's smtp-sink does).
            changes[key] = _text(value, f"replies.{key}", required=key != "ehlo_last")
        elif key == "advertise_size":
            changes[key] = schema.coerce(value, bool, f"replies.{key}")
        elif key in LINE_FIELDS:
            changes[key] = _line(value, f"replies.{key}")
        else:
            allowed = [*TEXT_FIELDS, "advertise_size", *LINE_FIELDS]
            raise PlanError(f"replies.{key}", "unknown key", allowed=allowed)
    evidence = dict(base.evidence)
    for key, value in _table(data.get("evidence", {}), "evidence").items():
        if key not in LIMIT_KEYS:
            raise PlanError(f"evidence.{key}", "is not a limit", allowed=LIMIT_KEYS)
        evidence[key] = _cite(value, f"evidence.{key}")
    gaps = data.get("unknown", [])
    if not isinstance(gaps, list) or not all(isinstance(g, str) for g in gaps):
        raise PlanError("unknown", f"{gaps!r} is not a list of strings")
    return Profile(
        name=name,
        description=_text(data.get("description", ""), "description"),
        limits=merged,
        replies=dataclasses.replace(base.replies, **changes),
        evidence=evidence,
        unknown=tuple(gaps),
    )


def to_table(profile: Profile) -> dict[str, Any]:
    """The table form of `profile`, whole (base "plain"): `from_table` reads it back."""
    replies: dict[str, Any] = {key: getattr(profile.replies, key) for key in TEXT_FIELDS}
    replies["advertise_size"] = profile.replies.advertise_size
    for key in LINE_FIELDS:
        line: Line = getattr(profile.replies, key)
        replies[key] = {"code": line.code, "text": line.text, "evidence": line.evidence.value}
        if line.source:
            replies[key]["source"] = line.source
    out: dict[str, Any] = {"name": profile.name, "description": profile.description}
    out["limits"] = schema.dump(profile.limits)  # what differs from Limits(), plain's
    out["replies"] = replies
    out["evidence"] = {
        key: {"evidence": cite.evidence.value, "source": cite.source}
        for key, cite in profile.evidence.items()
    }
    if profile.unknown:
        out["unknown"] = list(profile.unknown)
    return out


def _line(value: Any, key: str) -> Line:
    if isinstance(value, str):
        code, _, text = value.partition(" ")
        if not code.isdigit():
            raise PlanError(key, f"{value!r} is not a reply line", allowed='"421 text" or a table')
        value = {"code": int(code), "text": text}
    table = _table(value, key)
    allowed = ("code", "text", "evidence", "source")
    unknown = sorted(set(table) - set(allowed), key=str)
    if unknown:
        raise PlanError(f"{key}.{unknown[0]}", "unknown key", allowed=allowed)
    if "code" not in table:
        raise PlanError(f"{key}.code", "is required", allowed="200-599")
    code = schema.coerce(table["code"], int, f"{key}.code")
    schema.check_number(code, "code", int)
    text = _text(table.get("text", ""), f"{key}.text")
    if "\r" in text or "\n" in text:
        raise PlanError(f"{key}.text", "must be one line")
    cite = _cite({k: v for k, v in table.items() if k in ("evidence", "source")}, key)
    return Line(code, text, cite.evidence, cite.source)


def _cite(value: Any, key: str) -> Cite:
    if isinstance(value, str):  # "documented: https://..."
        kind, _, source = value.partition(":")
        value = {"evidence": kind.strip(), "source": source.strip()}
    table = _table(value, key)
    unknown = sorted(set(table) - {"evidence", "source"}, key=str)
    if unknown:
        raise PlanError(f"{key}.{unknown[0]}", "unknown key", allowed=["evidence", "source"])
    kind = table.get("evidence", INFER.value)
    if kind not in EVIDENCE:
        raise PlanError(f"{key}.evidence", f"{kind!r} is not allowed", allowed=EVIDENCE)
    return Cite(Evidence(kind), _text(table.get("source", ""), f"{key}.source"))


def _table(value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PlanError(key, f"{value!r} is not a table")
    return value


def _text(value: Any, key: str, *, required: bool = False) -> str:
    if value is None and required:
        raise PlanError(key, "is required", allowed="a string")
    if not isinstance(value, str):
        raise PlanError(key, f"{value!r} is not a string")
    if required and not value:
        raise PlanError(key, "is empty", allowed="a string")
    return value
