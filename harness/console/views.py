"""The JSON shapes of the HTTP API: one function per ledger record type."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from harness.base.ledger import FaultRecord, MessageRecord, SessionRecord
from harness.base.records import line_json


def iso(seconds: float | None) -> str | None:
    """Seconds since the epoch as ISO 8601 UTC, to the millisecond."""
    if seconds is None:
        return None
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def message_json(record: MessageRecord, *, restored: bool, headers: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "sequence": record.sequence,
        "session": record.session,
        "ses_id": record.ses_id,
        "message_id": record.message_id,
        "subject": record.subject,
        "mail_from": record.mail_from,
        "rcpt_tos": list(record.rcpt_tos),
        "size": record.size,
        "sha256": record.sha256,
        "at": record.at,
        "received": iso(record.wall_at),
        "acknowledged": record.acknowledged,
        "via": getattr(record, "via", "smtp"),  # how it came: SMTP or the SES HTTP API
        "tenant": getattr(record, "tenant", None),  # the SES tenant it named
        "restored": restored,
        "command": record.command,  # its end of data's number in the session's conversation
        "raw_url": f"/api/messages/{record.sequence}/raw",
    }
    if headers:
        out["headers"] = [[key, value] for key, value in record.headers]
    return out


def session_json(record: SessionRecord, *, transcript: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        **record.summary(),
        "open": record.open,
        "opened": iso(record.opened_wall),
    }
    if transcript:
        out["transcript"] = [line_json(line) for line in record.transcript]
    return out


def fault_json(record: FaultRecord, index: int) -> dict[str, Any]:
    """`index` is 1-based, in order of firing."""
    return {"index": index, **dataclasses.asdict(record)}
