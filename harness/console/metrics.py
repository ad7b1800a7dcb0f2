"""`GET /metrics`: the server's counters in Prometheus' text format (prometheus_client).

Each server has a registry of its own (tests run several servers in one process) with one
collector that reads the ledger when scraped, so the counters are the ledger's own numbers, not
a second count that could drift from it: sessions, messages (by how they came), faults fired
(by rule or limit), the SES API's requests (by operation and status), the page's requests (by
route and status), and what is held open now (sessions, event streams, waits).

A reset (`POST /api/reset`) empties the ledger, so its counters start again from 0: Prometheus
reads a counter that went down as a restart, which is what a reset is.
"""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from harness.console import inbox
from harness.console.events import EventHub
from harness.server.sesapi import mount

#: The SES API's routes, mounted beside the page's: counted by operation, not here.
SES_API_ROUTES = frozenset((method, path) for method, path, _ in mount.ROUTES)
REGISTRY_KEY = web.AppKey("metrics", CollectorRegistry)
REQUESTS_KEY = web.AppKey("requests", collections.Counter)
PREFIX = "ses_harness"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Tally:
    """Records counted by `key`, each once: a scrape counts only those new since the last one.
    Counted whole at each scrape, 100,000 messages took 118 ms of the loop SMTP shares; now
    the first scrape does (about 150 ms), and the next take 3 to 16 ms."""

    def __init__(self, key: Callable[[Any], tuple[str, ...]]) -> None:
        self.key = key
        self.seen = 0
        self.counts: collections.Counter[tuple[str, ...]] = collections.Counter()

    def update(self, records: list[Any]) -> list[tuple[tuple[str, ...], int]]:
        if len(records) < self.seen:  # a reset the hub did not report: count afresh
            self.clear()
        self.counts.update(self.key(r) for r in records[self.seen :])
        self.seen = len(records)
        return sorted(self.counts.items())

    def clear(self) -> None:
        self.seen = 0
        self.counts.clear()


class LedgerCollector(Collector):
    """What one server's ledger, SES API and page hold, read at each scrape."""

    def __init__(
        self, app: web.Application, ses_key: Any, hub: EventHub, restored: Callable[[], int]
    ) -> None:
        self.app = app
        self.ses_key = ses_key
        self.hub = hub
        self.restored = restored
        self.messages = Tally(lambda m: (m.via, str(m.acknowledged).lower()))
        self.faults = Tally(lambda f: (f.source, f.name, f.stage))
        hub.on_cleared.append(self.cleared)

    def cleared(self) -> None:
        """The ledger was reset: its records are new ones."""
        self.messages.clear()
        self.faults.clear()

    def collect(self) -> Iterator[Any]:
        ses = self.app[self.ses_key]
        ledger = ses.ledger
        sessions = ledger.sessions
        yield InfoMetricFamily(
            f"{PREFIX}_server",
            "The server's profile and seed.",
            value={"profile": ses.plan.profile, "seed": str(ses.plan.seed)},
        )
        yield _counter("sessions", "SMTP sessions opened.", [((), len(sessions))])
        yield _gauge("sessions_open", "SMTP sessions open now.", sum(s.open for s in sessions))
        by_via = self.messages.update(ledger.messages[self.restored() :])
        yield _counter(
            "messages",
            "Messages accepted, by how they came (smtp, api-v1, api-v2) and whether the client "
            "heard the acceptance (false: a drop_after_accept fault cut it).",
            by_via,
            ("via", "acknowledged"),
        )
        yield _counter(
            "faults",
            "Fault rules and limits that fired, by source (rule, limit), name and stage.",
            self.faults.update(ledger.faults),
            ("source", "name", "stage"),
        )
        service = ses.api_service
        answered = sorted(service.answered.items()) if service is not None else []
        yield _counter(
            "ses_api_requests",
            "SES API requests answered, by operation and HTTP status (cut: no answer).",
            answered,
            ("operation", "status"),
        )
        yield _counter(
            "http_requests",
            "Requests to the HTTP API and page (not the SES API), by route and status.",
            sorted(self.app[REQUESTS_KEY].items()),
            ("method", "route", "status"),
        )
        yield from self._page()

    def _page(self) -> Iterator[Any]:
        streams, waits = len(self.hub.streams), self.app[inbox.INBOX_KEY].waits
        yield _gauge("event_streams_open", "Event streams (/api/events) open now.", streams)
        yield _gauge("waits_open", "Requests waiting for messages (?wait=) now.", waits.waiting)


def _counter(
    name: str, doc: str, samples: list[tuple[tuple[str, ...], int]], labels: tuple[str, ...] = ()
) -> CounterMetricFamily:
    family = CounterMetricFamily(f"{PREFIX}_{name}", doc, labels=list(labels))
    for values, count in samples:
        family.add_metric(list(values), count)
    return family


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", doc, value=value)


def install(app: web.Application, ses_key: Any, hub: EventHub, restored: Callable[[], int]) -> None:
    """Give `app` a registry of its own, the `/metrics` route and the count of its requests.
    `restored`: how many of the ledger's first messages came from the store, not this run."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LedgerCollector(app, ses_key, hub, restored))
    app[REGISTRY_KEY] = registry
    app[REQUESTS_KEY] = collections.Counter()
    app.middlewares.insert(0, count_requests)  # outermost: it sees every refusal too
    app.router.add_get("/metrics", metrics)


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[REGISTRY_KEY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@web.middleware
async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count each request of the page and its API by route (its pattern, so the labels stay
    few: `/api/messages/{sequence}`, not each sequence) and status. The SES API counts its own
    (by operation); `/metrics` itself is not counted."""
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    if route == "/metrics" or (request.method, route) in SES_API_ROUTES:
        return await handler(request)
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as error:
        status = error.status
        raise
    finally:
        request.app[REQUESTS_KEY][(request.method, route, str(status))] += 1
