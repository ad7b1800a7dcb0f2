"""The event hub of one fake server: the events SES publishes, and their SNS subscribers.

Events are not stored: they follow from the ledger's messages (`harness.base.sesevents.plan`),
so reading them costs nothing until asked and a reset clears them with the ledger. Delivery is
the one stateful part: when a message is accepted, each of its events is queued, for the time it
falls due on the server's clock, to every subscriber of a topic it is published to: the
`events_url` topic gets every event, a configuration set's SNS destinations the kinds they match.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from typing import Any

from harness.base import sesevents
from harness.base.clock import Clock
from harness.base.ledger import FaultRecord, Ledger, MessageRecord
from harness.base.sesevents import SesEvent
from harness.core.notify import CONFIRMATION, NotifyBook, Post, PostFaults, arrival
from harness.core.plan import Plan, Rule
from harness.server.events import sns
from harness.server.events.configsets import ConfigurationSets
from harness.server.events.delivery import Attempt, Deliverer, DeliveryPolicy, Outgoing
from harness.server.events.sns import Subscription


class EventHub:
    """Events of one server and where they go. Start it on the server's loop."""

    def __init__(
        self,
        ledger: Ledger,
        clock: Clock,
        *,
        region: str = "us-east-1",
        policy: DeliveryPolicy | None = None,
        plan: Callable[[], Plan] | None = None,
    ) -> None:
        self.ledger = ledger
        self.clock = clock
        self.region = region
        self.policy = policy or DeliveryPolicy()
        self.configuration_sets = ConfigurationSets()
        self.default_topic = sns.topic_arn(region)
        self.sns_url = ""  # where the signing certificate and SubscribeURL answer (endpoint)
        self._lock = threading.Condition()  # waiters wait on it for new attempts
        self._subscriptions: list[Subscription] = []
        self._deliverers: dict[str, Deliverer] = {}
        self._attempts: list[Attempt] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unwatch: Any = None
        self._plan = plan  # the server's plan now: its NOTIFY rules fault the posts
        self._books: dict[str, NotifyBook] = {}  # one a subscriber, for the plan in _books_of
        self._books_of: Plan | None = None

    # --- reading ---------------------------------------------------------------------------

    def events(self, *, pending: bool = False) -> list[SesEvent]:
        """Every event published so far (by the server's clock), oldest first; with `pending`,
        those still to come too."""
        now = self.clock.now()
        planned = []
        for record in self.ledger.messages:
            for index, event in enumerate(self._planned(record)):
                planned.append((record.at + event.after_s, record.sequence, index, record, event))
        planned.sort(key=lambda item: item[:3])
        out = []
        for at, _, _, record, event in planned:
            if at > now and not pending:
                continue
            config = sesevents.configuration_set_of(record)
            body = sesevents.body(event, record, config, self.region)
            out.append(
                SesEvent(
                    len(out) + 1, event.kind, record.ses_id, event.recipients, at, config, body
                )
            )
        return out

    @property
    def attempts(self) -> list[Attempt]:
        """Every POST to a subscriber so far, in order."""
        with self._lock:
            return list(self._attempts)

    @property
    def subscriptions(self) -> list[Subscription]:
        with self._lock:
            return list(self._subscriptions)

    # --- subscribing -----------------------------------------------------------------------

    def subscribe(self, sub: Subscription) -> Subscription:
        """Add an HTTP(S) subscriber; its SubscriptionConfirmation is posted at once."""
        with self._lock:
            self._subscriptions.append(sub)
        if self._loop is not None:
            self._call(self._confirm, sub)
        return sub

    def confirm(self, topic_arn: str, token: str) -> Subscription | None:
        """The application visited a SubscribeURL: mark its subscription confirmed."""
        with self._lock:
            for sub in self._subscriptions:
                if sub.topic_arn == topic_arn and sub.token == token:
                    sub.confirmed = True
                    return sub
        return None

    def unsubscribe(self, subscription_arn: str) -> bool:
        with self._lock:
            kept = [s for s in self._subscriptions if s.arn != subscription_arn]
            removed = len(kept) != len(self._subscriptions)
            self._subscriptions = kept
        return removed

    # --- running ---------------------------------------------------------------------------

    def start(self, sns_url: str) -> None:
        """On the server's loop: watch the ledger, confirm the subscribers known already."""
        self._loop = asyncio.get_running_loop()
        self.sns_url = sns_url
        self._unwatch = self.ledger.watch(self._on_ledger)
        for sub in self.subscriptions:
            self._confirm(sub)

    async def stop(self) -> None:
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        deliverers, self._deliverers = list(self._deliverers.values()), {}
        for deliverer in deliverers:
            await deliverer.close()
        self._loop = None

    def pending(self) -> int:
        """Messages waiting to be posted (first tries and retries)."""
        return sum(d.pending() for d in list(self._deliverers.values()))

    def _on_ledger(self, kind: str, record: Any) -> None:
        if kind == "message":
            self._call(self._publish, record)
        elif kind == "cleared":
            with self._lock:
                self._attempts.clear()
                self._books = {}  # rule counters restart with the ledger

    def _call(self, function: Any, argument: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            function(argument)
        else:
            loop.call_soon_threadsafe(function, argument)

    def _confirm(self, sub: Subscription) -> None:
        now = self.clock.now()
        body = sns.confirmation(sub, now, self.sns_url)
        post = Post(CONFIRMATION, body["MessageId"])
        self._deliverer(sub).push(Outgoing(body, post=post, published_at=now), now)

    def _publish(self, record: MessageRecord) -> None:
        subscriptions = self.subscriptions
        if not subscriptions:
            return
        config = sesevents.configuration_set_of(record)
        for index, event in enumerate(self._planned(record)):
            topics = {self.default_topic}
            topics |= self.configuration_sets.topics_for(config, event.kind)
            at = record.at + event.after_s
            body = sesevents.body(event, record, config, self.region)
            for sub in subscriptions:
                if sub.topic_arn not in topics:
                    continue
                message = _message_for(sub, event.kind, body)
                if message is None:
                    continue
                sns_id = sns.message_id(sub.arn, record.ses_id, index)
                envelope = sns.notification(sub, message, sns_id, at, self.sns_url)
                post = Post(
                    event.kind, sns_id, sender=record.mail_from, recipients=event.recipients
                )
                outgoing = Outgoing(envelope, event.kind, record.ses_id, post, at)
                self._deliverer(sub).push(outgoing, at)

    def _deliverer(self, sub: Subscription) -> Deliverer:
        deliverer = self._deliverers.get(sub.arn)
        if deliverer is None:
            decide = functools.partial(self._decide, sub.arn)
            deliverer = Deliverer(sub, self.clock, self.policy, self._record, decide)
            self._deliverers[sub.arn] = deliverer
        return deliverer

    def _decide(self, arn: str, post: Post) -> PostFaults:
        """The plan's NOTIFY rules on one post to subscriber `arn` (on the loop)."""
        plan = self._plan() if self._plan is not None else None
        if plan is None:
            return PostFaults()
        if plan is not self._books_of:  # a new plan: its rules count afresh
            self._books, self._books_of = {}, plan
        book = self._books.get(arn)
        if book is None:
            book = self._books[arn] = NotifyBook(plan.faults, plan.seed)
        faults = book.decide(post)
        for index in faults.rules:  # in the ledger as every rule's firing (session 0: no SMTP)
            rule = plan.faults[index]
            self.ledger.fault(
                FaultRecord(
                    0,
                    0,
                    "NOTIFY",
                    "rule",
                    rule.label,
                    rule.action.kind,
                    None,
                    self.clock.now(),
                    rule_index=index,
                    sender=post.sender,
                    recipient=post.recipients[0] if post.recipients else None,
                )
            )
        return faults

    def feed(self, extra: tuple[Rule, ...] = ()) -> list[tuple[float, int, SesEvent]]:
        """The events as they reach a reader of the events feed, through the plan's NOTIFY rules
        and `extra` (SNS's policy retrying what they drop): (when it arrives, copies, event),
        in order of arrival, given-up ones left out. Counted in the order SES published them."""
        plan = self._plan() if self._plan is not None else None
        rules = (plan.faults if plan is not None else ()) + extra
        book = NotifyBook(rules, plan.seed if plan is not None else 0)
        events = self.events(pending=True)
        if not book:
            return [(e.at, 1, e) for e in events]
        order = {record.ses_id: record.sequence for record in self.ledger.messages}
        delays_s = self.policy.delays_s()
        out = []
        for event in sorted(events, key=lambda e: order.get(e.ses_id, 0)):
            # Keyed by what stays the same as more mail comes: not the event's sequence.
            key = f"{event.ses_id}:{event.kind}:{','.join(event.recipients)}"
            sender = event.body["mail"].get("source")
            post = Post(event.kind, key, sender=sender, recipients=event.recipients)
            way = arrival(book, delays_s, event.at, post)
            if way.at is not None:
                out.append((way.at, way.copies, event))
        out.sort(key=lambda item: (item[0], item[2].sequence))
        return out

    def _record(self, *attempts: Attempt) -> None:
        with self._lock:
            self._attempts.extend(attempts)
            self._lock.notify_all()

    def wait_for_attempts(self, condition: Any, timeout_s: float = 10.0) -> list[Attempt]:
        """Block until `condition(attempts)` holds; return the attempts. Raises TimeoutError."""
        with self._lock:
            if not self._lock.wait_for(lambda: condition(self._attempts), timeout=timeout_s):
                raise TimeoutError(f"event deliveries not as expected within {timeout_s}s")
            return list(self._attempts)

    @staticmethod
    def _planned(record: MessageRecord) -> list[sesevents.Planned]:
        return sesevents.plan(record, record.at)


def _message_for(sub: Subscription, kind: str, body: dict[str, Any]) -> dict[str, Any] | None:
    if sub.form == "event":
        return body
    mail = {k: v for k, v in body["mail"].items() if k != "tags"}
    if kind not in sesevents.NOTIFICATION_KINDS:
        return None
    key = kind[0].lower() + kind[1:]
    return {"notificationType": kind, "mail": mail, key: body[key]}
