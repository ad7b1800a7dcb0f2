"""The HTTP API of a running fake server, and the live page at `/`. Documented in
docs/http-api.md.

The app runs in the server's own event loop, so a handler sees the ledger between two SMTP
commands, never in the middle of one.
"""

from __future__ import annotations

import collections
import dataclasses
import hmac
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from harness.core.errors import PlanError
from harness.core.plan import Plan
from harness.serve.livelog import describe_limits, describe_rule
from harness.serve.store import Store
from harness.serve.views import fault_json, iso, message_json, session_json
from harness.server.fake_ses import FakeSES

WEB_DIR = Path(__file__).resolve().parent / "web"

SES_KEY = web.AppKey("ses", FakeSES)
STORE_KEY = web.AppKey("store", Store | None)
STARTED_KEY = web.AppKey("started", float)
TOKEN_KEY = web.AppKey("token", str | None)
#: What a client without the token is told to send.
TOKEN_HEADERS = "'Authorization: Bearer TOKEN' or 'X-Api-Token: TOKEN'"


class ApiError(Exception):
    """An error answered as JSON: ``{"status": 404, "error": "...", ...details}``."""

    def __init__(self, status: int, error: str, **details: Any) -> None:
        super().__init__(error)
        self.status = status
        self.body = {"status": status, "error": error, **details}


def reply(data: Any, status: int = 200) -> web.Response:
    """Every JSON answer of the API goes through here."""
    return web.json_response(data, status=status, dumps=lambda value: json.dumps(value, indent=1))


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        return reply(error.body, error.status)
    except web.HTTPException as error:  # aiohttp's own: unknown path, wrong method
        if error.status < 400:
            raise
        return reply({"status": error.status, "error": error.reason}, error.status)
    except Exception as error:  # a bug of ours: one line on stderr, JSON to the client
        problem = f"{type(error).__name__}: {error}"
        print(
            f"ses-harness: API error on {request.method} {request.path}: {problem}", file=sys.stderr
        )
        return reply({"status": 500, "error": f"internal error: {problem}"}, 500)


@web.middleware
async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    """With a token set, every /api/ request must carry it. The page and its static files carry
    no data and load without it (the page takes the token from its URL, `/?token=...`)."""
    token = request.app[TOKEN_KEY]
    if token is None or not request.path.startswith("/api/"):
        return await handler(request)
    given = request.headers.get("X-Api-Token")
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        given = credentials.strip()
    if given is not None and hmac.compare_digest(given.encode(), token.encode()):
        return await handler(request)
    problem = "wrong API token" if given else "this server wants an API token"
    response = reply({"status": 401, "error": f"{problem}: send {TOKEN_HEADERS}"}, 401)
    response.headers["WWW-Authenticate"] = 'Bearer realm="ses-harness"'
    return response


def create_app(
    ses: FakeSES, store: Store | None = None, *, token: str | None = None
) -> web.Application:
    """The API over `ses` (started or not); `store` is the `--store` folder, if any; with a
    `token`, /api/ requests without it get a 401.

    >>> app = create_app(FakeSES(profile="plain"))
    """
    app = web.Application(middlewares=[json_errors, require_token])
    app[SES_KEY] = ses
    app[STORE_KEY] = store
    app[TOKEN_KEY] = token or None
    app[STARTED_KEY] = time.time()
    app.add_routes(
        [
            web.get("/", index),
            web.static("/web", WEB_DIR),
            web.get("/api/messages", list_messages),
            web.get("/api/messages/{sequence}", get_message),
            web.get("/api/messages/{sequence}/raw", get_raw),
            web.get("/api/sessions", list_sessions),
            web.get("/api/sessions/{number}", get_session),
            web.get("/api/faults", list_faults),
            web.get("/api/stats", stats),
            web.post("/api/reset", reset),
            web.get("/api/plan", get_plan),
            web.put("/api/plan", put_plan),
        ]
    )
    return app


async def index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(WEB_DIR / "index.html")


# --- messages -----------------------------------------------------------------------------


def _restored(request: web.Request) -> int:
    store = request.app[STORE_KEY]
    return store.restored if store is not None else 0


async def list_messages(request: web.Request) -> web.Response:
    """Oldest first; `?since=N` after sequence N, `?limit=N` the newest N."""
    restored = _restored(request)
    messages = request.app[SES_KEY].ledger.messages
    since = _int_param(request, "since")
    if since is not None:
        messages = [m for m in messages if m.sequence > since]
    messages = _newest(request, messages)
    return reply([message_json(m, restored=m.sequence <= restored) for m in messages])


def _message(request: web.Request) -> Any:
    sequence = _int_path(request, "sequence")
    messages = request.app[SES_KEY].ledger.messages
    if not 1 <= sequence <= len(messages):
        raise ApiError(404, f"no message {sequence}", messages=len(messages))
    return messages[sequence - 1]


async def get_message(request: web.Request) -> web.Response:
    record = _message(request)
    return reply(message_json(record, restored=record.sequence <= _restored(request), headers=True))


async def get_raw(request: web.Request) -> web.Response:
    record = _message(request)
    store = request.app[STORE_KEY]
    data = record.data
    if data is None and store is not None:
        data = store.read_eml(record.sequence)
    if data is None:
        raise ApiError(
            410,
            f"the body of message {record.sequence} is not kept: the in-memory budget was spent",
            hint="start the server with --store DIR to keep every body on disk",
        )
    return web.Response(
        body=data,
        content_type="message/rfc822",
        headers={"Content-Disposition": f'inline; filename="{record.sequence:06d}.eml"'},
    )


# --- sessions and faults ------------------------------------------------------------------


async def list_sessions(request: web.Request) -> web.Response:
    """In order of connection, with transcripts unless `?transcript=0`; `?limit=N` the newest N."""
    transcript = request.query.get("transcript", "1") not in ("0", "false", "no")
    sessions = _newest(request, request.app[SES_KEY].ledger.sessions)
    return reply([session_json(s, transcript=transcript) for s in sessions])


async def get_session(request: web.Request) -> web.Response:
    number = _int_path(request, "number")
    for session in request.app[SES_KEY].ledger.sessions:
        if session.number == number:
            return reply(session_json(session))
    raise ApiError(404, f"no session {number}")


async def list_faults(request: web.Request) -> web.Response:
    """In order of firing; `?since=N` after index N, `?limit=N` the newest N."""
    faults = [fault_json(f, i) for i, f in enumerate(request.app[SES_KEY].ledger.faults, 1)]
    since = _int_param(request, "since")
    if since is not None:
        faults = faults[since:]
    return reply(_newest(request, faults))


# --- stats, reset, plan -------------------------------------------------------------------


async def stats(request: web.Request) -> web.Response:
    ses = request.app[SES_KEY]
    ledger = ses.ledger
    sessions, messages, faults = ledger.sessions, ledger.messages, ledger.faults
    restored = _restored(request)
    limits = ses.plan.resolved_limits()
    endpoint = ses.endpoint
    by_name = collections.Counter(f"{f.source}:{f.name}" for f in faults)
    started = request.app[STARTED_KEY]
    return reply(
        {
            "smtp": {
                "host": endpoint.host,
                "port": endpoint.port,
                "url": endpoint.url,
                "tls": endpoint.tls.value,
                "ca_file": endpoint.ca_file,
                "auth": endpoint.username is not None,
            },
            "profile": ses.plan.profile,
            "seed": ses.plan.seed,
            "behaviours": describe_limits(limits),
            "limits": {
                k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(limits).items()
            },
            "fault_rules": [describe_rule(rule) for rule in ses.plan.faults],
            "sessions": {"total": len(sessions), "open": sum(1 for s in sessions if s.open)},
            "messages": {
                "total": len(messages),
                "this_run": len(messages) - restored,
                "restored": restored,
                "unacknowledged": sum(1 for m in messages if not m.acknowledged),
            },
            "faults": {"total": len(faults), "by_name": dict(by_name.most_common())},
            "started": iso(started),
            "uptime_s": round(time.time() - started, 3),
        }
    )


async def reset(request: web.Request) -> web.Response:
    """Forget messages, sessions and faults; restart rule counters. The store is archived."""
    ses = request.app[SES_KEY]
    ses.reset()
    store = request.app[STORE_KEY]
    archive = store.reset() if store is not None else None
    return reply({"status": 200, "reset": True, "archived_to": str(archive) if archive else None})


async def get_plan(request: web.Request) -> web.Response:
    return reply(request.app[SES_KEY].plan.to_dict())


async def put_plan(request: web.Request) -> web.Response:
    """Replace the whole plan (profile, seed, limits, faults); effective for the next commands."""
    try:
        data = json.loads(await request.read())
    except UnicodeDecodeError as error:
        raise ApiError(400, f"the body is not UTF-8 JSON: {error.reason}") from None
    except json.JSONDecodeError as error:
        raise ApiError(400, f"the body is not JSON: {error}") from None
    try:
        plan = Plan.from_dict(data, source="PUT /api/plan")
    except PlanError as error:
        raise ApiError(
            400, str(error), key=error.key, problem=error.problem, allowed=error.allowed
        ) from None
    request.app[SES_KEY].set_plan(plan)
    return reply(plan.to_dict())


# --- query parameters ---------------------------------------------------------------------


def _int_param(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise ApiError(400, f"query parameter {name!r} must be a whole number >= 0, got {raw!r}")
    return int(raw)


def _int_path(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    if not raw.isdigit():
        raise ApiError(404, f"{name} must be a whole number, got {raw!r}")
    return int(raw)


def _newest(request: web.Request, items: list[Any]) -> list[Any]:
    limit = _int_param(request, "limit")
    return items if limit is None else items[max(0, len(items) - limit) :]
