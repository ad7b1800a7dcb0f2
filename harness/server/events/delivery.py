"""Posting SNS messages to one HTTP(S) subscriber, retrying as SNS's delivery policy says, with
the plan's NOTIFY faults on each attempt.

The policy (`harness.core.snspolicy`, documented): after a failed attempt SNS retries, by
default three times 20 seconds apart; an attempt fails when the endpoint answers outside
200-4xx or not within 15 seconds (a refused or cut connection too: inferred); when the policy
is exhausted SNS discards the message (no dead-letter queue here): its last attempt is recorded
`gave_up`. Every wait is on the server's clock, so a ``ScaledClock`` runs the 20 s retries
fast; on a virtual clock the deliverer looks every few milliseconds whether its time has come
(it never moves the clock).

Messages fall due in order; each attempt asks the plan's NOTIFY rules (`harness.core.notify`)
when it falls due, and carries their answer out: held back (`delay`), failed without a post
(`drop`, retried as any failure), or posted again (`duplicate`, same MessageId). A
notification's posts run side by side, so a slow or failing one holds no later one back; a
SubscriptionConfirmation is posted before anything after it (inferred: SNS posts nothing to an
endpoint before it confirmed).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import aiohttp

from harness.base.clock import Clock, wall_until
from harness.core.notify import Post, PostFaults
from harness.core.snspolicy import DeliveryPolicy, delivered
from harness.server.events import sns
from harness.server.events.sns import Subscription

__all__ = ["Attempt", "Deliverer", "DeliveryPolicy", "Outgoing"]


@dataclass(frozen=True)
class Attempt:
    """One POST to a subscriber and how it went (`status` None: no HTTP answer).

    `fault` names the NOTIFY rules that fired on it; `copy` is 2 or more for a duplicate's
    post; `gave_up` marks the last failed attempt, after which SNS discards the message."""

    url: str
    topic_arn: str
    type: str  # SubscriptionConfirmation or Notification
    sns_message_id: str
    kind: str | None  # the SES event's kind (Notification)
    ses_id: str | None  # the SES message it is about (Notification)
    attempt: int  # 1 for the first try
    at: float  # server clock, when the post was sent
    status: int | None
    error: str | None
    delivered: bool  # as SNS counts it: answered 200-4xx in time
    fault: str | None = None
    copy: int = 1
    gave_up: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Outgoing:
    body: dict[str, Any]
    kind: str | None = None
    ses_id: str | None = None
    post: Post | None = None  # what the NOTIFY rules see (attempt and age set when asked)
    published_at: float = 0.0


#: How often a deliverer on a virtual clock looks whether its next message is due.
VIRTUAL_POLL_S = 0.005


class Deliverer:
    """The queue and the task that post a subscription's messages."""

    def __init__(
        self,
        sub: Subscription,
        clock: Clock,
        policy: DeliveryPolicy,
        record: Callable[..., None],  # takes the Attempts of one try at once
        decide: Callable[[Post], PostFaults] | None = None,
    ) -> None:
        self.sub = sub
        self.clock = clock
        self.policy = policy
        self._record = record
        self._decide = decide
        # (due, order, attempt, message, the faults decided for this attempt or None)
        self._queue: list[tuple[float, int, int, Outgoing, PostFaults | None]] = []
        self._order = itertools.count()
        self._added = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._posting: set[asyncio.Task[None]] = set()
        self._in_flight = 0  # attempts begun whose outcome is not recorded yet
        self._session: aiohttp.ClientSession | None = None

    def push(self, message: Outgoing, due: float, attempt: int = 1) -> None:
        """Queue `message` to post once the clock reads `due` (call on the loop)."""
        self._push(due, attempt, message, None)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def _push(self, due: float, attempt: int, message: Outgoing, faults: PostFaults | None) -> None:
        heapq.heappush(self._queue, (due, next(self._order), attempt, message, faults))
        self._added.set()

    def pending(self) -> int:
        """Messages waiting for their time or their answer."""
        return len(self._queue) + self._in_flight

    async def close(self) -> None:
        tasks = [t for t in (self._task, *self._posting) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
        self._posting.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.policy.timeout_s)
        self._session = aiohttp.ClientSession(timeout=timeout)
        while True:
            due, _, attempt, message, faults = await self._next()
            if faults is None:
                faults = self._faults(message, attempt, due)
                if faults.delay_s > 0:  # held back: carried out when the delay is over
                    self._push(due + faults.delay_s, attempt, message, faults)
                    continue
            self._in_flight += 1
            if message.body["Type"] != "Notification":
                await self._attempt(message, attempt, due, faults)
                continue
            task = asyncio.get_running_loop().create_task(
                self._attempt(message, attempt, due, faults)
            )
            self._posting.add(task)
            task.add_done_callback(self._posting.discard)

    def _faults(self, message: Outgoing, attempt: int, due: float) -> PostFaults:
        if self._decide is None or message.post is None:
            return PostFaults()
        age_s = max(0.0, due - message.published_at)
        return self._decide(replace(message.post, attempt=attempt, age_s=age_s))

    async def _attempt(
        self, message: Outgoing, attempt: int, due: float, faults: PostFaults
    ) -> None:
        answers: list[tuple[float, tuple[int | None, str | None]]] = []
        try:
            if faults.drop:
                fault = ", ".join(faults.fired)
                error = f"dropped by rule {fault} (as if the endpoint were unreachable)"
                answers.append((self.clock.now(), (None, error)))
            for _ in range(0 if faults.drop else faults.copies):  # a duplicate after the first
                sent_at = self.clock.now()
                answers.append((sent_at, await self._post(message)))
        finally:
            self._in_flight -= 1
        ok = any(delivered(status) for _, (status, _) in answers)
        last = attempt > self.policy.retries
        if not ok and not last:  # queued before it is recorded: a waiter sees it pending
            retry_at = max(due, self.clock.now()) + self.policy.delay_before(attempt + 1)
            self._push(retry_at, attempt + 1, message, None)
        gave_up = last and not ok  # SNS discards it after this try: its last post says so
        self._record(
            *(
                self._note(
                    message, attempt, at, answer, faults, copy, gave_up and copy == len(answers)
                )
                for copy, (at, answer) in enumerate(answers, 1)
            )
        )

    async def _next(self) -> tuple[float, int, int, Outgoing, PostFaults | None]:
        while True:
            if self._queue:
                due = self._queue[0][0]
                if self.clock.now() >= due:
                    return heapq.heappop(self._queue)
                wait = VIRTUAL_POLL_S if self.clock.virtual else wall_until(self.clock, due)
            else:
                wait = None
            self._added.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._added.wait(), wait)

    async def _post(self, message: Outgoing) -> tuple[int | None, str | None]:
        assert self._session is not None
        body = message.body
        try:
            async with self._session.post(
                self.sub.url,
                data=sns.payload(self.sub, body),
                headers=sns.headers(self.sub, body),
                ssl=False,  # the application's test server; SNS would check its certificate
            ) as response:
                await response.read()
                return response.status, None
        except (aiohttp.ClientError, TimeoutError, OSError) as failure:
            return None, f"{type(failure).__name__}: {failure}"

    def _note(
        self,
        message: Outgoing,
        attempt: int,
        at: float,
        answer: tuple[int | None, str | None],
        faults: PostFaults,
        copy: int,
        gave_up: bool,
    ) -> Attempt:
        body = message.body
        status, error = answer
        return Attempt(
            url=self.sub.url,
            topic_arn=self.sub.topic_arn,
            type=body["Type"],
            sns_message_id=body["MessageId"],
            kind=message.kind,
            ses_id=message.ses_id,
            attempt=attempt,
            at=at,
            status=status,
            error=error,
            delivered=delivered(status),
            fault=", ".join(faults.fired) or None,
            copy=copy,
            gave_up=gave_up,
        )
