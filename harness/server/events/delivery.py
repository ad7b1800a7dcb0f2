"""Posting SNS messages to one HTTP(S) subscriber, retrying as SNS's default policy does.

SNS's default delivery policy for HTTP/S: after a failed first attempt, up to three retries
20 seconds apart (AWS SNS DG, "Set the delivery policy for the Amazon SNS subscription":
documented). What counts as failed here: a status outside 2xx, a refused or cut connection,
or no answer within 15 seconds (the codes and the timeout are inferred). Every wait is on the
server's clock, so a ``ScaledClock`` runs the 20 s retries fast; on a virtual clock the
deliverer looks every few milliseconds whether its time has come (it never moves the clock).

Messages are posted one at a time, in the order they fall due; a retry waits its turn with the
rest, so a failed message arrives after later ones, as with SNS.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from harness.base.clock import Clock, wall_until
from harness.server.events import sns
from harness.server.events.sns import Subscription


@dataclass(frozen=True)
class DeliveryPolicy:
    """SNS's retry policy for HTTP/S; the default is SNS's own."""

    retries: int = 3
    retry_delay_s: float = 20.0
    timeout_s: float = 15.0

    def __post_init__(self) -> None:
        if not 0 <= self.retries <= 100:
            raise ValueError(f"retries must be 0..100, got {self.retries}")
        if not 0 <= self.retry_delay_s <= 3600 or not 0 < self.timeout_s <= 3600:
            raise ValueError("retry_delay_s must be 0..3600 and timeout_s in (0, 3600]")


@dataclass(frozen=True)
class Attempt:
    """One POST to a subscriber and how it went (`status` None: no HTTP answer)."""

    url: str
    topic_arn: str
    type: str  # SubscriptionConfirmation or Notification
    sns_message_id: str
    kind: str | None  # the SES event's kind (Notification)
    ses_id: str | None  # the SES message it is about (Notification)
    attempt: int  # 1 for the first try
    at: float  # server clock
    status: int | None
    error: str | None
    delivered: bool

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Outgoing:
    body: dict[str, Any]
    kind: str | None = None
    ses_id: str | None = None


#: How often a deliverer on a virtual clock looks whether its next message is due.
VIRTUAL_POLL_S = 0.005


class Deliverer:
    """The queue and the one task that post a subscription's messages."""

    def __init__(
        self,
        sub: Subscription,
        clock: Clock,
        policy: DeliveryPolicy,
        record: Callable[[Attempt], None],
    ) -> None:
        self.sub = sub
        self.clock = clock
        self.policy = policy
        self._record = record
        self._queue: list[tuple[float, int, int, Outgoing]] = []
        self._order = itertools.count()
        self._added = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    def push(self, message: Outgoing, due: float, attempt: int = 1) -> None:
        """Queue `message` to post once the clock reads `due` (call on the loop)."""
        heapq.heappush(self._queue, (due, next(self._order), attempt, message))
        self._added.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def pending(self) -> int:
        return len(self._queue)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.policy.timeout_s)
        self._session = aiohttp.ClientSession(timeout=timeout)
        while True:
            due, _, attempt, message = await self._next()
            delivered = await self._post(message, attempt)
            if not delivered and attempt <= self.policy.retries:
                retry_at = max(due, self.clock.now()) + self.policy.retry_delay_s
                heapq.heappush(self._queue, (retry_at, next(self._order), attempt + 1, message))

    async def _next(self) -> tuple[float, int, int, Outgoing]:
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

    async def _post(self, message: Outgoing, attempt: int) -> bool:
        assert self._session is not None
        body = message.body
        status: int | None = None
        error: str | None = None
        try:
            async with self._session.post(
                self.sub.url,
                data=sns.payload(self.sub, body),
                headers=sns.headers(self.sub, body),
                ssl=False,  # the application's test server; SNS would check its certificate
            ) as response:
                status = response.status
                await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as failure:
            error = f"{type(failure).__name__}: {failure}"
        delivered = status is not None and 200 <= status < 300
        self._record(
            Attempt(
                url=self.sub.url,
                topic_arn=self.sub.topic_arn,
                type=body["Type"],
                sns_message_id=body["MessageId"],
                kind=message.kind,
                ses_id=message.ses_id,
                attempt=attempt,
                at=self.clock.now(),
                status=status,
                error=error,
                delivered=delivered,
            )
        )
        return delivered
