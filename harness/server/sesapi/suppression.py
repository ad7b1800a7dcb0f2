"""The v2 API's account-level suppression list: Put/Get/List/DeleteSuppressedDestination and
PutAccountSuppressionAttributes (paths, fields, errors: the sesv2 model, botocore's
data/sesv2: documented). The list is the engine's (`harness.core.suppression`), read and
changed on the server's clock.

Texts of our own where SES's are not known (inferred): a missing address's NotFoundException,
a bad Reason's BadRequestException, a bad NextToken's InvalidNextTokenException. Tenants
(TenantName) are not kept: a request naming one is answered as for a tenant that does not
exist (NotFoundException, which the model lists for each of these operations).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from harness.core.suppression import REASONS, SuppressedDestination, SuppressionList
from harness.server.sesapi import responses, v2
from harness.server.sesapi.requests import BadRequest, address
from harness.server.state import ServerState

ADDRESSES = "/v2/email/suppression/addresses"
ADDRESS = ADDRESSES + "/{EmailAddress}"
ACCOUNT = "/v2/email/account/suppression"
#: ListSuppressedDestinations' page when PageSize is not given, and the most it may ask for
#: (inferred: the model states no range).
PAGE_SIZE = 1000

Operation = Callable[[SuppressionList, dict[str, Any], web.Request, float], dict[str, Any]]


def _reason(value: object) -> str:
    if value not in REASONS:
        raise BadRequest(f"Reason {value!r} is not valid: use BOUNCE or COMPLAINT.")
    assert isinstance(value, str)
    return value


def _no_tenant(where: Mapping[str, Any]) -> None:
    tenant = where.get("TenantName")
    if tenant is not None:
        raise BadRequest(f"Tenant {tenant} does not exist.", kind="not_found")


def _address(request: web.Request) -> str:
    return address(unquote(request.match_info["EmailAddress"]), "EmailAddress")


def _summary(entry: SuppressedDestination) -> dict[str, Any]:
    return {"EmailAddress": entry.address, "Reason": entry.reason, "LastUpdateTime": entry.at}


def put(
    book: SuppressionList, body: dict[str, Any], request: web.Request, now: float
) -> dict[str, Any]:
    _no_tenant(body)
    if "EmailAddress" not in body or "Reason" not in body:
        raise BadRequest("EmailAddress and Reason are required.")
    book.put(address(body["EmailAddress"], "EmailAddress"), _reason(body["Reason"]), now=now)
    return {}


def get(
    book: SuppressionList, body: dict[str, Any], request: web.Request, now: float
) -> dict[str, Any]:
    _no_tenant(request.query)
    wanted = _address(request)
    entry = book.get(wanted, now=now)
    if entry is None:
        raise BadRequest(f"{wanted} is not on the suppression list.", kind="not_found")
    out = _summary(entry)
    if entry.by_event:
        out["Attributes"] = {"MessageId": entry.message_id, "FeedbackId": entry.feedback_id}
    return {"SuppressedDestination": out}


def delete(
    book: SuppressionList, body: dict[str, Any], request: web.Request, now: float
) -> dict[str, Any]:
    _no_tenant(request.query)
    wanted = _address(request)
    if not book.delete(wanted, now=now):
        raise BadRequest(f"{wanted} is not on the suppression list.", kind="not_found")
    return {}


def list_(
    book: SuppressionList, body: dict[str, Any], request: web.Request, now: float
) -> dict[str, Any]:
    """Oldest update first; a page ends where PageSize says, and its NextToken names the last
    entry given, so the next page goes on after it however the list changed meanwhile."""
    query = request.query
    _no_tenant(query)
    reasons = {_reason(r) for r in query.getall("Reason", [])} or set(REASONS)
    start, end = _date(query.get("StartDate")), _date(query.get("EndDate"))
    size = _page_size(query.get("PageSize"))
    after = _token(query["NextToken"]) if "NextToken" in query else None
    chosen = [
        e
        for e in book.entries(now=now)
        if e.reason in reasons
        and (start is None or e.at >= start)
        and (end is None or e.at <= end)
        and (after is None or (e.at, e.address) > after)
    ]
    out: dict[str, Any] = {"SuppressedDestinationSummaries": [_summary(e) for e in chosen[:size]]}
    if len(chosen) > size:
        last = chosen[size - 1]
        text = json.dumps([last.at, last.address]).encode()
        out["NextToken"] = base64.urlsafe_b64encode(text).decode()
    return out


def put_attributes(
    book: SuppressionList, body: dict[str, Any], request: web.Request, now: float
) -> dict[str, Any]:
    reasons = body.get("SuppressedReasons", [])
    if not isinstance(reasons, list):
        raise BadRequest("SuppressedReasons must be a list.")
    book.set_reasons(tuple(_reason(r) for r in reasons), now=now)
    return {}


def _date(value: str | None) -> float | None:
    """A query's timestamp: ISO 8601 (botocore's form) or seconds since the epoch."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{value!r} is not a date (ISO 8601 or Unix time).") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.timestamp()


def _page_size(value: str | None) -> int:
    if value is None:
        return PAGE_SIZE
    if not value.isdigit() or not 1 <= int(value) <= PAGE_SIZE:
        raise BadRequest(f"PageSize must be an integer from 1 to {PAGE_SIZE}.")
    return int(value)


def _token(value: str) -> tuple[float, str]:
    try:
        at, where = json.loads(base64.urlsafe_b64decode(value.encode()))
        return float(at), str(where)
    except (ValueError, TypeError, binascii.Error):
        raise BadRequest("The NextToken is not valid.", kind="invalid_next_token") from None


#: Each operation by its name (sesv2 model).
OPERATIONS: dict[str, Operation] = {
    "PutSuppressedDestination": put,
    "GetSuppressedDestination": get,
    "ListSuppressedDestinations": list_,
    "DeleteSuppressedDestination": delete,
    "PutAccountSuppressionAttributes": put_attributes,
}
#: Their routes: method, path, operation (`harness.server.sesapi.mount`).
ROUTES = (
    ("PUT", ADDRESSES, "PutSuppressedDestination"),
    ("GET", ADDRESSES, "ListSuppressedDestinations"),
    ("GET", ADDRESS, "GetSuppressedDestination"),
    ("DELETE", ADDRESS, "DeleteSuppressedDestination"),
    ("PUT", ACCOUNT, "PutAccountSuppressionAttributes"),
)


def handler(
    operation: Operation, state: ServerState
) -> Callable[[bytes, str, web.Request], Awaitable[web.StreamResponse]]:
    """`operation` as the v2 handler wrapper calls it (which answers a BadRequest in v2's
    error format): the body's bytes in, its answer out."""

    async def run(body: bytes, request_id: str, request: web.Request) -> web.StreamResponse:
        data = v2.loads(body) if body.strip() else {}
        with state.lock:
            answer = operation(state.engine.suppression, data, request, state.clock.now())
        return responses.json_answer(answer, request_id)

    return run
