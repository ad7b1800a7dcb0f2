"""Long-polls: `GET /api/messages?wait=N` held until N messages match its search.

A wait costs nothing while nothing it waits for happens, and nothing once its client is gone:

- Waits are grouped by their search. A new message is matched once per distinct search (never by
  searching every message again), and only the waits whose count it completes are woken; each
  then reads the real answer (see harness.console.inbox), and waits again if deletions or a
  reset left it short. A session opening or a fault firing wakes no one.
- The server cancels a request's handler when its connection is lost (see
  harness.console.http), and a cancelled wait leaves its group at once: 500 abandoned waits are
  500 cancellations, not 500 searches on every message until their timeouts.
- At most `max_waits` waits and `max_searches` distinct searches at a time; one more is refused
  with a 503 that says so.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from typing import Any

from harness.base.ledger import MessageRecord
from harness.console.api import ConsoleError
from harness.console.search import MessageQuery

#: Waits a server holds at most (see harness.console.app.page_caps), and distinct searches
#: among them: each search costs a match on every new message while it is waited on.
MAX_WAITS = 1000
MAX_SEARCHES = 100

Matcher = Callable[[MessageQuery, MessageRecord], bool]


class _Group:
    """The waits of one search, and how many new messages matched it since the group began."""

    __slots__ = ("heap", "live", "matched", "query")

    def __init__(self, query: MessageQuery) -> None:
        self.query = query
        self.matched = 0
        self.heap: list[tuple[int, int, asyncio.Future[bool]]] = []  # (wake at, order, future)
        self.live = 0

    def wake_due(self) -> None:
        heap = self.heap
        while heap and heap[0][0] <= self.matched:
            _wake(heapq.heappop(heap)[2])

    def wake_all(self) -> None:
        for entry in self.heap:
            _wake(entry[2])
        self.heap.clear()


class Waits:
    """The waits of one server, fed the ledger's changes by the event hub."""

    def __init__(
        self, matches: Matcher, *, max_waits: int = MAX_WAITS, max_searches: int = MAX_SEARCHES
    ) -> None:
        self.matches = matches
        self.max_waits = max_waits
        self.max_searches = max_searches
        self.groups: dict[MessageQuery, _Group] = {}
        self.waiting = 0
        self.refused = 0
        self._order = itertools.count()

    def on_ledger(self, kind: str, record: Any) -> None:
        """A hub listener: a new message may complete some waits; a restore may complete any."""
        if not self.groups:
            return
        if kind == "message":
            for group in list(self.groups.values()):
                if group.query.empty or self.matches(group.query, record):
                    group.matched += 1
                    group.wake_due()
        elif kind == "restored":  # many messages at once (only ever before serving): recount
            for group in list(self.groups.values()):
                group.wake_all()

    def _refuse(self, what: str) -> None:
        self.refused += 1
        raise ConsoleError(503, f"{what}: try again when one has answered", retry_after_s=1)

    async def wait(self, query: MessageQuery, need: int, timeout_s: float) -> bool:
        """Sleep until `need` more messages matching `query` may have come (True), or the
        timeout (False). True is a reason to look again, not a promise: deletions count not."""
        group = self.groups.get(query)
        if self.waiting >= self.max_waits:
            self._refuse(f"{self.waiting:,} requests are waiting (?wait=), this server's most")
        if group is None and len(self.groups) >= self.max_searches:
            self._refuse(f"{len(self.groups):,} searches are waited on, this server's most")
        if group is None:
            group = self.groups[query] = _Group(query)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        heapq.heappush(group.heap, (group.matched + need, next(self._order), future))
        group.live += 1
        self.waiting += 1
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            return False
        finally:  # answered, timed out or cancelled (its client left): out of the group now
            self.waiting -= 1
            group.live -= 1
            if group.live == 0:
                if self.groups.get(query) is group:
                    del self.groups[query]
            elif len(group.heap) > 2 * group.live + 8:  # left behind by cancelled waits
                group.heap = [entry for entry in group.heap if not entry[2].done()]
                heapq.heapify(group.heap)


def _wake(future: asyncio.Future[bool]) -> None:
    if not future.done():  # a cancelled wait's future stays in the heap until popped
        future.set_result(True)
