"""The HTTP API of a running fake server, and the live page at `/`. Documented in
docs/http-api.md.

The app runs in the server's own event loop, so a handler sees the ledger between two SMTP
commands, never in the middle of one.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hmac
import json
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from harness.console import guard, health, inbox, metrics, sesevents, sessions, steering
from harness.console.api import SES_KEY, STORE_KEY, ConsoleError, json_body, plan_from, reply, whole
from harness.console.events import MAX_STREAMS, EventHub
from harness.console.livelog import LiveLog, describe_limits, describe_rule
from harness.console.store import Store
from harness.console.views import fault_json, iso, session_json
from harness.console.waits import MAX_WAITS
from harness.server.fake_ses import FakeSES

WEB_DIR = Path(__file__).resolve().parent / "web"

HUB_KEY = web.AppKey("hub", EventHub)
STARTED_KEY = web.AppKey("started", float)
TOKEN_KEY = web.AppKey("token", str | None)
LOG_KEY = web.AppKey("log", LiveLog | None)
#: What a client without the token is told to send.
TOKEN_HEADERS = "'Authorization: Bearer TOKEN' or 'X-Api-Token: TOKEN'"


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ConsoleError as error:
        return reply(error.body, error.status, headers=error.headers)
    except web.HTTPException as error:  # aiohttp's own: unknown path, wrong method
        if error.status < 400:
            raise
        return reply({"status": error.status, "error": error.reason}, error.status)
    except Exception as error:  # a bug of ours: one line on stderr, JSON to the client
        problem = f"{type(error).__name__}: {error}"
        with contextlib.suppress(OSError, ValueError):  # a closed stderr changes no answer
            print(
                f"ses-harness: API error on {request.method} {request.path[:200]}: {problem[:500]}",
                file=sys.stderr,
            )
        return reply({"status": 500, "error": f"internal error: {problem}"}, 500)


@web.middleware
async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    """With a token set, every /api/ request and /metrics (counts and fault names are data)
    must carry it. The page and its static files carry no data and load without it (the page
    takes the token from its URL, `/?token=...`)."""
    token = request.app[TOKEN_KEY]
    if token is None or not (request.path.startswith("/api/") or request.path == "/metrics"):
        return await handler(request)
    given = request.headers.get("X-Api-Token")
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        given = credentials.strip()
    # Header bytes that are not UTF-8 arrive as surrogates; they are a wrong token, not a 500.
    given_bytes = None if given is None else given.encode("utf-8", "surrogateescape")
    if given_bytes is not None and hmac.compare_digest(given_bytes, token.encode()):
        return await handler(request)
    problem = "wrong API token" if given else "this server wants an API token"
    response = reply({"status": 401, "error": f"{problem}: send {TOKEN_HEADERS}"}, 401)
    response.headers["WWW-Authenticate"] = 'Bearer realm="ses-harness"'
    return response


def page_caps(streams: int = MAX_STREAMS, waits: int = MAX_WAITS) -> tuple[int, int]:
    """The most event streams and long-polls a server holds: `streams` and `waits`, fewer when
    the process may open few files (a quarter of the limit each), so that page clients never
    take the descriptors SMTP's connections need."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return streams, waits
    if soft == resource.RLIM_INFINITY:
        return streams, waits
    share = max(8, soft // 4)
    return min(streams, share), min(waits, share)


def create_app(
    ses: FakeSES,
    store: Store | None = None,
    *,
    token: str | None = None,
    allowed_hosts: tuple[str, ...] = (),
    log: LiveLog | None = None,
    caps: tuple[int, int] | None = None,
) -> web.Application:
    """The API over `ses` (started or not); `store` is the `--store` folder, if any; with a
    `token`, /api/ requests without it get a 401. Every route is guarded against other web
    pages (see harness.console.guard); `allowed_hosts` are names it answers to besides IP
    addresses and localhost. Plan changes and resets are noted in `log`. `caps`: the most event
    streams and long-polls held at once (default: `page_caps()`); more are refused with a 503.

    >>> app = create_app(FakeSES(profile="plain"))
    """
    app = web.Application(middlewares=[json_errors, require_token])
    guard.install(app, allowed_hosts)
    app[LOG_KEY] = log
    app[SES_KEY] = ses
    app[STORE_KEY] = store
    app[TOKEN_KEY] = token or None
    app[STARTED_KEY] = time.time()
    _add_live_parts(app, ses, caps or page_caps())
    metrics.install(app, SES_KEY, app[HUB_KEY], lambda: store.restored if store else 0)
    app.add_routes(
        [
            web.get("/", index),
            web.get("/favicon.ico", favicon),
            web.static("/web", WEB_DIR),
            *inbox.routes(),
            *sessions.routes(),
            *steering.routes(),
            *sesevents.routes(),
            *health.routes(),
            web.get("/api/events", events),
            web.get("/api/sessions", list_sessions),
            web.get("/api/faults", list_faults),
            web.get("/api/templates", list_templates),
            web.get("/api/stats", stats),
            web.post("/api/reset", reset),
            web.get("/api/plan", get_plan),
            web.put("/api/plan", put_plan),
        ]
    )
    return app


def _add_live_parts(app: web.Application, ses: FakeSES, caps: tuple[int, int]) -> None:
    """The event hub (push and `?wait=`), the inbox (search, delete) and the plan panel; the hub
    watches the ledger from the app's start to its shutdown, which also ends every stream."""
    max_streams, max_waits = caps
    hub = EventHub(max_streams=max_streams)
    app[HUB_KEY] = hub
    app[inbox.INBOX_KEY] = inbox.Inbox(app, hub, max_waits=max_waits)
    app[steering.STEERING_KEY] = steering.Steering(ses, hub)
    hub.on_cleared += [app[inbox.INBOX_KEY].cleared, app[steering.STEERING_KEY].cleared]

    async def start(app: web.Application) -> None:
        hub.start(app[SES_KEY].ledger)

    async def stop(app: web.Application) -> None:
        hub.stop()

    app.on_startup.append(start)
    app.on_shutdown.append(stop)


#: The page's policy: its own script, style and API only; it frames a message's HTML body from
#: its own origin (that frame is sandboxed twice: by the iframe's `sandbox` and by the part's
#: own CSP, see harness.console.inbox). Set here because the page is the one thing that frames.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


async def index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(WEB_DIR / "index.html", headers={"Content-Security-Policy": PAGE_CSP})


async def favicon(request: web.Request) -> web.StreamResponse:
    """Browsers ask for /favicon.ico whatever the page links: the page's icon (SVG)."""
    return web.FileResponse(WEB_DIR / "favicon.svg", headers={"Content-Type": "image/svg+xml"})


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: one per new session, closed session, message, fault, plan change."""
    return await request.app[HUB_KEY].stream(request)


# --- messages: harness.console.inbox -----------------------------------------------------


def _restored(request: web.Request) -> int:
    store = request.app[STORE_KEY]
    return store.restored if store is not None else 0


# --- sessions and faults ------------------------------------------------------------------


async def list_sessions(request: web.Request) -> web.Response:
    """In order of connection, with transcripts unless `?transcript=0`; `?limit=N` the newest N."""
    transcript = request.query.get("transcript", "1") not in ("0", "false", "no")
    sessions = _newest(request, request.app[SES_KEY].ledger.sessions)
    return reply([session_json(s, transcript=transcript) for s in sessions])


async def list_faults(request: web.Request) -> web.Response:
    """In order of firing; `?since=N` after index N, `?limit=N` the newest N."""
    faults = [fault_json(f, i) for i, f in enumerate(request.app[SES_KEY].ledger.faults, 1)]
    since = whole(request, "since")
    if since is not None:
        faults = faults[since:]
    return reply(_newest(request, faults))


async def list_templates(request: web.Request) -> web.Response:
    """The SES API's stored templates, in order of creation (serve --templates, and those the
    API's Create(Email)Template made)."""
    service = request.app[SES_KEY].api_service
    return reply(service.templates.listing() if service is not None else [])


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
            "profile": ses.plan.profile_name,
            "seed": ses.plan.seed,
            "behaviours": describe_limits(limits, ses.plan.resolved_profile().replies),
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
                "deleted": len(messages) - len(request.app[inbox.INBOX_KEY].visible()),
            },
            "faults": {"total": len(faults), "by_name": dict(by_name.most_common())},
            "page": _page_clients(request),
            "started": iso(started),
            "uptime_s": round(time.time() - started, 3),
        }
    )


def _page_clients(request: web.Request) -> dict[str, int]:
    """The live page's clients held now, their caps, and what the caps and the sweep did."""
    hub, waits = request.app[HUB_KEY], request.app[inbox.INBOX_KEY].waits
    return {
        "event_streams": len(hub.streams),
        "event_streams_max": hub.max_streams,
        "waits": waits.waiting,
        "waits_max": waits.max_waits,
        "searches_waited_on": len(waits.groups),
        "refused": hub.refused + waits.refused,
        "streams_closed_not_reading": hub.closed_stalled,
    }


async def reset(request: web.Request) -> web.Response:
    """Forget messages, sessions and faults; restart rule counters. The store is archived."""
    ses = request.app[SES_KEY]
    ses.reset()
    store = request.app[STORE_KEY]
    archive = store.reset() if store is not None else None
    archived = f", store archived to {archive}" if archive else ""
    _note(request, f"reset by POST /api/reset{archived}")
    return reply({"status": 200, "reset": True, "archived_to": str(archive) if archive else None})


async def get_plan(request: web.Request) -> web.Response:
    return reply(request.app[SES_KEY].plan.to_dict())


async def put_plan(request: web.Request) -> web.Response:
    """Replace the whole plan (profile, seed, limits, faults); effective for the next commands."""
    plan = plan_from(await json_body(request), "PUT /api/plan")
    ses = request.app[SES_KEY]
    request.app[steering.STEERING_KEY].adopt(plan)
    _note(request, f"plan changed by PUT /api/plan: {json.dumps(ses.plan.to_dict())}")
    return reply(ses.plan.to_dict())


def _note(request: web.Request, text: str) -> None:
    log = request.app[LOG_KEY]
    if log is not None:
        log.note(text)


def _newest(request: web.Request, items: list[Any]) -> list[Any]:
    limit = whole(request, "limit")
    return items if limit is None else items[max(0, len(items) - limit) :]
