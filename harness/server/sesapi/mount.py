"""Where the SES API answers: its routes, as an app of its own (FakeSES's API port) or mounted
beside another app's (``serve``'s HTTP port)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from harness.core import api_errors
from harness.core.api_errors import V2
from harness.server.sesapi import configsets, responses, suppression, v2
from harness.server.sesapi.app import ApiService
from harness.server.sesapi.connection import MAX_BODY_BYTES

TEMPLATES = "/v2/email/templates"
TEMPLATE = "/v2/email/templates/{TemplateName}"
#: Every route: method, path and the operation it answers (v1's is read from its Action).
ROUTES = (
    ("POST", v2.SEND_EMAIL, "SendEmail"),
    ("POST", v2.SEND_BULK_EMAIL, "SendBulkEmail"),
    ("GET", v2.GET_ACCOUNT, "GetAccount"),
    ("POST", TEMPLATES, "CreateEmailTemplate"),
    ("GET", TEMPLATES, "ListEmailTemplates"),
    ("GET", TEMPLATE, "GetEmailTemplate"),
    ("PUT", TEMPLATE, "UpdateEmailTemplate"),
    ("DELETE", TEMPLATE, "DeleteEmailTemplate"),
    *configsets.ROUTES,
    *suppression.ROUTES,
    ("POST", "/", "v1"),
)


def serves(path: str) -> bool:
    """Whether the SES API answers at `path` (``serve`` mounts it beside its page and /api/)."""
    return path == "/" or path.startswith("/v2/email/")


def make_app(service: ApiService) -> web.Application:
    """An app that serves only the SES API (FakeSES runs it on a port of its own)."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.add_routes(
        [
            web.route(method, path, service.answering(service.handler(operation)))
            for method, path, operation in ROUTES
        ]
    )
    return app


def add_routes(app: web.Application, service: Callable[[], ApiService | None]) -> None:
    """Mount the SES API on an existing app (``serve``'s): /v2/email/... and POST /.

    `service` is asked at each request, so the app can be built before the server starts;
    until then the API answers 503.
    """

    def route(method: str, path: str, operation: str) -> web.RouteDef:
        async def handle(request: web.Request) -> web.StreamResponse:
            current = service()
            if current is None:
                error = api_errors.error_for("unavailable", V2, "The fake SES is not running.")
                return responses.v2_error(error, "")
            return await current.handler(operation)(request)

        return web.route(method, path, handle)

    app.add_routes([route(method, path, operation) for method, path, operation in ROUTES])
