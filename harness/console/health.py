"""`GET /readyz` and `GET /livez`: whether a container, an orchestrator or a test may use this
server yet (docs/http-api.md, "Readiness").

- `/livez` answers 200 while the process runs and its event loop turns: a probe that gets no
  answer should restart it.
- `/readyz` answers 200 only once SMTP, the HTTP API and the SES API all accept, and 503 (with
  which of the three does not) before that and while shutting down.

Both answer without the API token, as Mailpit's `/readyz` does: probes (a HEALTHCHECK, a
Kubernetes probe, a Testcontainers wait strategy) are set up where the token is not to be had,
and the answers carry no mail, no plan and nothing else a token protects, only three booleans.
"""

from __future__ import annotations

from aiohttp import web

from harness.console.api import SES_KEY, reply

#: Probes must see the state now, never a cached answer.
NO_STORE = {"Cache-Control": "no-store"}


def routes() -> list[web.AbstractRouteDef]:
    return [web.get("/readyz", readyz), web.get("/livez", livez)]


async def readyz(request: web.Request) -> web.Response:
    """200 with ``{"ready": true, "smtp": true, "http_api": true, "ses_api": true}``, else 503
    naming what does not accept yet."""
    ses = request.app[SES_KEY]
    smtp = ses.smtp_accepting
    # The SES API answers on its own port once that is bound (`api_port`), or, mounted on this
    # app (serve), once the server has made its service: its routes answer 503 until then.
    own_port_or_mounted = ses.api_port != 0 or not ses.api_enabled
    ses_api = smtp and ses.api_service is not None and own_port_or_mounted
    # This answer comes over the HTTP API's own listener, so that one accepts.
    listeners = {"smtp": smtp, "http_api": True, "ses_api": ses_api}
    if all(listeners.values()):
        return reply({"status": 200, "ready": True, **listeners}, headers=NO_STORE)
    waiting = ", ".join(name for name, up in listeners.items() if not up)
    body = {"status": 503, "ready": False, **listeners, "error": f"not accepting yet: {waiting}"}
    return reply(body, 503, headers=NO_STORE)


async def livez(request: web.Request) -> web.Response:
    return reply({"status": 200, "live": True}, headers=NO_STORE)
