"""The fake's stand-in for ``sns.<region>.amazonaws.com``: an HTTPS port on loopback that serves
the signing certificate (the messages' SigningCertURL) and answers SubscribeURL and
UnsubscribeURL visits. With `feed`, a plain-HTTP port beside it serves the published events as
JSON (``GET /ses-events``, like serve's ``/api/ses-events``): what a scenario's client
reconciles from, as an application reads the queue its SNS topic fills. The plan's NOTIFY rules
(late, dropped and retried, twice) and the feed's own `delay_s`/`duplicates` decide when each
event arrives there, as they do for the posts to a webhook.

The HTTPS port's certificate is the run's test CA's (`harness.server.tls`), so a
verifier that fetches the certificate trusts it with that CA file (``REQUESTS_CA_BUNDLE`` for
requests, as django-ses uses).
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from aiohttp import web

from harness.base.sesevents import FeedFaults
from harness.core import notify
from harness.server.events.hub import EventHub
from harness.server.events.signing import signing_key
from harness.server.events.sns import CERTIFICATE_PATH
from harness.server.tls import deferred_server_context

_XMLNS = "http://sns.amazonaws.com/doc/2010-03-31/"


class SnsEndpoint:
    def __init__(self, hub: EventHub, host: str, *, feed: FeedFaults | None = None) -> None:
        self.hub = hub
        self.host = host
        self.port = 0
        self.feed_port = 0
        self.feed = feed
        self._runner: web.AppRunner | None = None

    @property
    def feed_url(self) -> str | None:
        return f"http://{self.host}:{self.feed_port}/ses-events" if self.feed_port else None

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.add_routes(
            [
                web.get(f"/{CERTIFICATE_PATH}", self._certificate),
                web.get("/", self._action),
                web.get("/ses-events", self._events),
            ]
        )
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        # The certificates are made at the first handshake: most servers are never visited here.
        site = web.TCPSite(runner, self.host, 0, ssl_context=deferred_server_context())
        await site.start()
        self._runner = runner
        self.port = runner.addresses[0][1]
        if self.feed is not None:
            plain = web.TCPSite(runner, self.host, 0)
            await plain.start()
            self.feed_port = runner.addresses[1][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _certificate(self, request: web.Request) -> web.Response:
        return web.Response(
            body=signing_key().certificate_pem, content_type="application/x-pem-file"
        )

    async def _events(self, request: web.Request) -> web.Response:
        faults = self.feed
        if request.url.scheme == "https" or faults is None:
            return _error("NotFound", "The events feed is on the feed port.", 404)
        now = self.hub.clock.now()
        # The scenario's `events = { delay_s, duplicates }` is sugar for NOTIFY rules; the
        # plan's own NOTIFY rules apply as well (harness.core.notify).
        extra = notify.feed_rules(faults.delay_s, faults.duplicates)
        events = [
            event.to_dict()
            for at, copies, event in self.hub.feed(extra)
            if at <= now
            for _ in range(copies)
        ]
        return web.json_response({"events": events, "count": len(events)})

    async def _action(self, request: web.Request) -> web.Response:
        action = request.query.get("Action")
        if action == "ConfirmSubscription":
            sub = self.hub.confirm(
                request.query.get("TopicArn", ""), request.query.get("Token", "")
            )
            if sub is None:
                return _error("NotFound", "Subscription not found or the token is wrong.", 404)
            result = f"<SubscriptionArn>{escape(sub.arn)}</SubscriptionArn>"
            return _xml("ConfirmSubscription", result)
        if action == "Unsubscribe":
            if not self.hub.unsubscribe(request.query.get("SubscriptionArn", "")):
                return _error("NotFound", "Subscription does not exist.", 404)
            return _xml("Unsubscribe", "")
        return _error("InvalidAction", f"Unsupported action: {action!r}.", 400)


def _xml(action: str, result: str) -> web.Response:
    body = (
        f'<{action}Response xmlns="{_XMLNS}"><{action}Result>{result}</{action}Result>'
        f"<ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000</RequestId>"
        f"</ResponseMetadata></{action}Response>"
    )
    return web.Response(text=body, content_type="text/xml")


def _error(code: str, message: str, status: int) -> web.Response:
    body = (
        f'<ErrorResponse xmlns="{_XMLNS}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{escape(message)}</Message></Error></ErrorResponse>"
    )
    return web.Response(text=body, content_type="text/xml", status=status)
