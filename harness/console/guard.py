"""What keeps a web page in the user's browser from driving the API of a local server.

The API binds loopback and, by default, has no token, so two browser tricks reach it:

- a page on another origin sends a *simple* request (a form-like `POST`, no preflight) and the
  browser delivers it: `POST /api/reset` wiped the ledger from any web page;
- DNS rebinding: a name the attacker controls resolves to 127.0.0.1, the page is then
  same-origin with the API and reads all mail and changes the plan.

So, as careful local dev servers do, every request must name this server in its `Host` (an IP
address, `localhost`, or a name the user listed), a state-changing request that comes from a
page must come from the page's own origin, and it must say it sends JSON (which a page on
another origin cannot do without a preflight this server never grants) or go to the SES API,
which takes only requests signed in a header (no such page can send one either). Every
response tells the browser not to sniff content types, not to frame it, and to run only the
page's own files.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

from harness.server import sesapi

#: Methods that only read; everything else changes state and gets the stricter checks.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
JSON_TYPE = "application/json"
#: The live page loads its own script and style sheet and talks to its own API; nothing else.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # the page's URL may carry the API token
    "Cross-Origin-Resource-Policy": "same-origin",
}
ALLOWED_HOSTS_KEY = web.AppKey("allowed_hosts", frozenset)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def install(app: web.Application, allowed_hosts: Iterable[str] = ()) -> None:
    """Guard every route of `app`, those added later included.

    `allowed_hosts`: host names (besides IP addresses and `localhost`) that may appear in
    `Host`, e.g. the name of a machine the API is bound on.
    """
    app[ALLOWED_HOSTS_KEY] = frozenset(h.lower().rstrip(".") for h in allowed_hosts)
    app.middlewares.insert(0, guard)
    app.on_response_prepare.append(_add_headers)


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    host = request.headers.get("Host", "")
    if not host_allowed(host, request.app[ALLOWED_HOSTS_KEY]):
        return _refuse(
            421 if host else 400,
            f"this server does not answer for Host {host[:100]!r}",
            hint="open it by IP address or localhost, or list the name with --allow-host",
        )
    if request.method not in SAFE_METHODS:
        problem = cross_origin(request)
        if problem:
            return _refuse(403, problem)
        if request.content_type != JSON_TYPE and not ses_api(request):
            return _refuse(
                415,
                f"a {request.method} needs 'Content-Type: {JSON_TYPE}', got "
                f"{request.headers.get('Content-Type', 'none')[:100]!r}",
            )
    return await handler(request)


def ses_api(request: web.Request) -> bool:
    """A request to the SES API mounted beside /api/ (v1 posts a form). It answers only a
    request signed in its `Authorization` header, which a page on another origin cannot send
    without a preflight either, and it refuses any other in SES's own words and format (a 403
    in XML for v1, in JSON for v2), not in the page's."""
    return sesapi.serves(request.path)


def host_allowed(host: str, allowed: frozenset[str]) -> bool:
    """Whether a `Host` header names this server rather than a name pointed at it.

    An IP address cannot be rebound, and `localhost` (with its subdomains) always resolves to
    loopback in browsers; any other name only when the user listed it.
    """
    name = _host_name(host)
    if not name:
        return False
    if name == "localhost" or name.endswith(".localhost") or name in allowed:
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def cross_origin(request: web.Request) -> str | None:
    """Why a state-changing request comes from another page's origin, or None.

    No `Origin` (curl, scripts, the plugin) is fine: browsers send it on every such request.
    """
    origin = request.headers.get("Origin")
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return f"a {request.method} from a {site} page is refused (Sec-Fetch-Site)"
    if origin is None:
        return None
    own = f"{request.scheme}://{request.headers.get('Host', '')}".lower()
    if origin.lower().rstrip("/") != own:
        return f"a {request.method} from another origin ({origin[:100]!r}) is refused"
    return None


def _host_name(host: str) -> str:
    """`Host` without its port, lower case: ``[::1]:8025`` -> ``::1``."""
    host = host.strip().lower()
    if host.startswith("["):
        name, bracket, rest = host[1:].partition("]")
        return name if bracket and (not rest or rest.startswith(":")) else ""
    name, _, port = host.partition(":")
    if (port and not port.isascii()) or (port and not port.isdigit()):
        return ""
    return name.rstrip(".")


def _refuse(status: int, error: str, **details: str) -> web.Response:
    body = {"status": status, "error": error, **details}
    return web.json_response(body, status=status, dumps=lambda value: json.dumps(value, indent=1))


async def _add_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
