"""FakeSES's asynchronous side: its events, their SNS subscribers, and the configuration sets.

A part of `FakeSES` kept in its own module (`fake_ses` holds the SMTP and API ports).
"""

from __future__ import annotations

from typing import Any

from harness.base.event_plan import joins
from harness.base.ledger import Ledger, MessageRecord
from harness.base.sesevents import FeedFaults, SesEvent
from harness.core.plan import Plan
from harness.core.suppression import REASONS, SuppressedDestination
from harness.server.events import sns
from harness.server.events.delivery import Attempt, DeliveryPolicy
from harness.server.events.endpoint import SnsEndpoint
from harness.server.events.hub import EventHub
from harness.server.events.signing import signing_key
from harness.server.events.sns import Subscription
from harness.server.state import ServerState
from harness.server.tls import shared_certificates


class EventsSide:
    """What `FakeSES` offers of SES's events (mixed into it)."""

    events_hub: EventHub
    _sns_endpoint: SnsEndpoint | None
    _events_feed: FeedFaults | None
    ledger: Ledger
    bind_host: str
    region: str
    plan: Plan
    clock: Any
    _state: ServerState | None
    _unwatch_joins: Any = None

    def _init_events(
        self,
        events_url: str | None,
        signature_version: str | None,
        policy: DeliveryPolicy | None,
        clock: Any,
        feed: bool | FeedFaults,
    ) -> None:
        self.events_hub = EventHub(
            self.ledger, clock, region=self.region, policy=policy, plan=lambda: self.plan
        )
        self._sns_endpoint = None
        self._events_feed = FeedFaults() if feed is True else feed or None
        if events_url is not None:
            self.events_hub.subscribe(
                Subscription(events_url, self.events_hub.default_topic, signature_version)
            )

    async def _start_events(self) -> None:
        self._sns_endpoint = SnsEndpoint(self.events_hub, self.bind_host, feed=self._events_feed)
        await self._sns_endpoint.start()
        self.events_hub.start(self._sns_endpoint.url)
        self._note_joins(self.ledger.messages)  # a store's earlier runs' messages
        self._unwatch_joins = self.ledger.watch(self._on_ledger)

    async def _stop_events(self) -> None:
        if self._unwatch_joins is not None:
            self._unwatch_joins()
            self._unwatch_joins = None
        await self.events_hub.stop()
        if self._sns_endpoint is not None:
            await self._sns_endpoint.stop()

    @property
    def events(self) -> list[SesEvent]:
        """The events SES has published so far, by the server's clock, oldest first: one
        `SesEvent` each (kind, the message's SES id, recipients, time, its JSON)."""
        return self.events_hub.events()

    @property
    def events_feed_url(self) -> str | None:
        """With `events_feed`: where a client reads the published events (JSON), else None."""
        return self._sns_endpoint.feed_url if self._sns_endpoint is not None else None

    @property
    def event_deliveries(self) -> list[Attempt]:
        """Every POST to an SNS subscriber (the events URL included), with its answer."""
        return self.events_hub.attempts

    @property
    def sns_url(self) -> str:
        """Where the SNS signing certificate and SubscribeURLs answer (HTTPS, the test CA)."""
        return self.events_hub.sns_url

    @property
    def sns_ca_file(self) -> str:
        """The CA file that trusts `sns_url` (the run's test CA): give it to the application's
        HTTPS client that fetches SigningCertURL (``REQUESTS_CA_BUNDLE`` for requests)."""
        return shared_certificates().ca_file

    @property
    def signing_certificate_pem(self) -> bytes:
        """The certificate whose key signs every SNS message (what SigningCertURL serves)."""
        return signing_key().certificate_pem

    def subscribe(
        self,
        url: str,
        topic: str = sns.DEFAULT_TOPIC,
        *,
        signature_version: str | None = "1",
        form: str = "event",
        raw: bool = False,
    ) -> Subscription:
        """Subscribe `url` (HTTP) to an SNS topic (a name or an ARN) as SNS would: a
        SubscriptionConfirmation, then a Notification for each event published to the topic
        (a configuration set's SNS destination names the topic; the default topic gets every
        event). `signature_version` "1", "2" or None (unsigned); `form` "event" (publishing) or
        "notification" (feedback notifications: Bounce, Complaint, Delivery)."""
        arn = topic if topic.startswith("arn:") else sns.topic_arn(self.region, topic)
        return self.events_hub.subscribe(Subscription(url, arn, signature_version, form, raw))

    def wait_for_deliveries(self, count: int, timeout_s: float = 10.0) -> list[Attempt]:
        """Block until `count` posts to subscribers were delivered as SNS counts it (answered
        200-4xx in time); return every attempt."""
        return self.events_hub.wait_for_attempts(
            lambda attempts: sum(a.delivered for a in attempts) >= count, timeout_s
        )

    # --- the account's suppression list (harness.core.suppression) ---------------------------

    def _on_ledger(self, kind: str, record: Any) -> None:
        if kind == "message":
            self._note_joins([record])
        elif kind == "restored":
            self._note_joins(self.ledger.messages[-record:])

    def _note_joins(self, records: list[MessageRecord]) -> None:
        """SES adds a message's hard-bounced and complaining addresses when it publishes those
        events: known now, with their time (`harness.base.event_plan.joins`)."""
        state = self._state
        found = [(record, joins(record)) for record in records]
        if state is None or not any(j for _, j in found):
            return
        with state.lock:
            for record, joined in found:
                for address, reason, at, feedback in joined:
                    state.engine.suppression.join(
                        address, reason, at=at, message_id=record.ses_id, feedback_id=feedback
                    )

    @property
    def suppressed(self) -> list[SuppressedDestination]:
        """The account-level suppression list now: a `SuppressedDestination` (address, reason,
        since when, the message that put it there) for each address SES will not send to."""
        state = self._running()
        with state.lock:
            return state.engine.suppression.entries(now=self.clock.now())

    @property
    def suppression_reasons(self) -> tuple[str, ...]:
        """The account's SuppressedReasons now: why SES adds addresses itself."""
        state = self._running()
        with state.lock:
            return state.engine.suppression.reasons

    def suppress(self, address: str, reason: str = "BOUNCE") -> SuppressedDestination:
        """Put `address` on the account's suppression list now, as ``PutSuppressedDestination``
        does: a later send to it is accepted and bounces (``OnAccountSuppressionList``)."""
        if reason not in REASONS:
            raise ValueError(f"reason {reason!r} is not one of {', '.join(REASONS)}")
        state = self._running()
        with state.lock:
            return state.engine.suppression.put(address, reason, now=self.clock.now())

    def _running(self) -> ServerState:
        if self._state is None:
            raise RuntimeError("the suppression list is the running server's: start it first")
        return self._state
