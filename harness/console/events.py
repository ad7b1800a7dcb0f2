"""Push: the ledger's changes as server-sent events (`GET /api/events`), and the signal that
`?wait=N` sleeps on instead of polling.

The ledger is written from the SMTP server's thread, which in `ses-harness serve` is the API's
own loop but in other uses (a `FakeSES` started with `start()`) is not. Its watcher therefore
never touches asyncio state directly: from another thread it hands the event over with
`call_soon_threadsafe`, from the loop's own thread it publishes at once.

Each browser gets a bounded queue. A client that reads too slowly (a tab in the background, a
stalled proxy) does not make the server hold more: its queue is emptied and replaced by one
`resync` event, after which the page reloads what it shows from the API.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web

from harness.base.ledger import Ledger
from harness.console.views import fault_json, message_json, session_json

#: Events a browser may fall behind by before it is told to resync instead.
QUEUE_EVENTS = 256
#: A comment line this often keeps proxies from closing an idle stream, and shows a dead peer.
HEARTBEAT_S = 15.0
#: How long the browser waits before reconnecting after it lost the stream.
RETRY_MS = 1000


class Subscriber:
    """One open `/api/events` stream."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(QUEUE_EVENTS)
        self.resyncs = 0

    def put(self, event: dict[str, Any] | None) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            while not self.queue.empty():
                self.queue.get_nowait()
            self.resyncs += 1
            self.queue.put_nowait(event if event is None else {"type": "resync"})


class EventHub:
    """Fans the ledger's changes out to subscribers and wakes whoever waits for a change."""

    def __init__(self) -> None:
        self.subscribers: set[Subscriber] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self._changed: asyncio.Event | None = None
        self._unwatch: Callable[[], None] | None = None
        #: Called (in the loop) when the ledger was cleared, before the page hears of it.
        self.on_cleared: list[Callable[[], None]] = []

    # --- lifecycle (the app's startup and shutdown) --------------------------------------

    def start(self, ledger: Ledger) -> None:
        self.loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._changed = asyncio.Event()
        self._unwatch = ledger.watch(self._on_ledger)

    def stop(self) -> None:
        """Stop watching, and end every open stream (so the server can shut down at once)."""
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        for subscriber in list(self.subscribers):
            subscriber.put(None)

    # --- in ---------------------------------------------------------------------------------

    def _on_ledger(self, kind: str, record: Any) -> None:
        """The ledger's watcher: in the writer's thread."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        if threading.get_ident() == self._thread:
            self._publish(kind, record)
        else:
            loop.call_soon_threadsafe(self._publish, kind, record)

    def publish(self, event: dict[str, Any]) -> None:
        """An event that does not come from the ledger (plan changed, messages deleted)."""
        self._send(event)

    def _publish(self, kind: str, record: Any) -> None:
        if kind == "message":
            event = {"type": "message", "message": message_json(record, restored=False)}
        elif kind in ("session", "closed"):
            event = {"type": kind, "session": session_json(record, transcript=False)}
        elif kind == "fault":
            event = {"type": "fault", "fault": fault_json(record, 0)}
        else:  # restored, cleared: the page reloads
            if kind == "cleared":
                for callback in self.on_cleared:
                    callback()
            event = {"type": "resync", "reason": kind}
        self._send(event)

    def _send(self, event: dict[str, Any]) -> None:
        for subscriber in self.subscribers:
            subscriber.put(event)
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    # --- out --------------------------------------------------------------------------------

    async def changed(self, timeout_s: float) -> bool:
        """Sleep until the next change (True) or the timeout (False)."""
        assert self._changed is not None, "the hub has not started"
        try:
            await asyncio.wait_for(self._changed.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """`GET /api/events`: one `data:` line of JSON per event, `hello` first."""
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        subscriber = Subscriber()
        self.subscribers.add(subscriber)
        try:
            await response.write(f"retry: {RETRY_MS}\n".encode())
            await response.write(_frame({"type": "hello"}))
            while True:
                try:
                    event = await asyncio.wait_for(subscriber.queue.get(), HEARTBEAT_S)
                except TimeoutError:
                    await response.write(b": heartbeat\n\n")
                    continue
                if event is None:
                    break
                await response.write(_frame(event))
        except ConnectionResetError:
            pass  # the browser went away
        finally:
            self.subscribers.discard(subscriber)
        return response


def _frame(event: dict[str, Any]) -> bytes:
    # No `event:` field: every event reaches EventSource's `onmessage`, its type is in the JSON.
    return f"data: {json.dumps(event)}\n\n".encode()
