"""Push: the ledger's changes as server-sent events (`GET /api/events`), and the hook through
which the long-polls (harness.console.waits) hear of them.

The ledger is written from the SMTP server's thread, which in `ses-harness serve` is the API's
own loop but in other uses (a `FakeSES` started with `start()`) is not. Its watcher therefore
never touches asyncio state directly: from another thread it hands the event over with
`call_soon_threadsafe`, from the loop's own thread it publishes at once.

The loop is SMTP's too, so a stream costs per flush, never per event: each event is encoded
once (and only while someone listens) into the current window; the window is flushed at most
every `FLUSH_S` (the first event at once), waking each stream once to write it in one piece.
A window of more than `WINDOW_EVENTS` events goes out as one `resync` (the page then reloads
what it shows; it treats events as reasons to reload anyway). A stream that was still writing
when a window went out has missed it and gets a `resync` too. So a client that reads slowly,
or not at all, costs the server one blocked write: it holds no queue, and a stream whose client
has taken nothing for `STALLED_S` is closed. Streams are capped per server (`max_streams`);
one more is refused with a 503 that says so.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web

from harness.base.ledger import Ledger
from harness.console.api import ConsoleError
from harness.console.views import fault_json, message_json, session_json

#: Events sent at most this often to each stream (the page waits 80 ms for more anyway).
FLUSH_S = 0.25
#: Events in one flush; a window of more goes out as one `resync`.
WINDOW_EVENTS = 64
#: A comment line this often keeps proxies from closing an idle stream, and shows a dead peer.
HEARTBEAT_S = 15.0
#: A stream whose client has not taken a write for this long is closed: it is not reading.
STALLED_S = 10.0
#: How long the browser waits before reconnecting after it lost the stream.
RETRY_MS = 1000
#: Open streams a server holds at most (see harness.console.app.page_caps).
MAX_STREAMS = 1000

Listener = Callable[[str, Any], None]


def _frame(event: dict[str, Any]) -> bytes:
    # No `event:` field: every event reaches EventSource's `onmessage`, its type is in the JSON.
    return f"data: {json.dumps(event)}\n\n".encode()


RESYNC = _frame({"type": "resync"})
HEARTBEAT = b": heartbeat\n\n"


class _Stream:
    """One open `/api/events` response, as the hub's sweep sees it."""

    __slots__ = ("request", "writing_since")

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.writing_since: float | None = None  # loop time a write began that has not ended


class EventHub:
    """Fans the ledger's changes out to streams and to in-loop listeners (the long-polls)."""

    def __init__(self, max_streams: int = MAX_STREAMS) -> None:
        self.max_streams = max_streams
        self.streams: set[_Stream] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        #: Called (in the loop) with each ledger change: (kind, record), as Ledger.watch says.
        self.listeners: list[Listener] = []
        #: Called (in the loop) when the ledger was cleared, before the page hears of it.
        self.on_cleared: list[Callable[[], None]] = []
        self.flushes = 0  # windows sent so far: a stream that skipped one resyncs
        self.resyncs = 0  # windows too full to send whole
        self.refused = 0  # streams refused at the cap
        self.closed_stalled = 0  # streams closed because their client did not read
        self._thread: int | None = None
        self._unwatch: Callable[[], None] | None = None
        self._window: list[bytes] = []
        self._overflow = False
        self._sent = b""  # the last window, as every stream writes it
        self._flushed = asyncio.Event()  # set (and replaced) at each flush and heartbeat
        self._flush_at: asyncio.TimerHandle | None = None
        self._last_flush = 0.0
        self._sweeper: asyncio.TimerHandle | None = None
        self._stopped = False

    # --- lifecycle (the app's startup and shutdown) --------------------------------------

    def start(self, ledger: Ledger) -> None:
        self.loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._flushed = asyncio.Event()
        self._unwatch = ledger.watch(self._on_ledger)
        self._sweeper = self.loop.call_later(HEARTBEAT_S, self._sweep)

    def stop(self) -> None:
        """Stop watching, and end every open stream (so the server can shut down at once)."""
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        for handle in (self._flush_at, self._sweeper):
            if handle is not None:
                handle.cancel()
        self._stopped = True
        self._wake()

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
        for listener in self.listeners:
            listener(event["type"], event)
        self._queue(lambda: event)

    def _publish(self, kind: str, record: Any) -> None:
        if kind == "cleared":
            for callback in self.on_cleared:
                callback()
        for listener in self.listeners:
            listener(kind, record)
        self._queue(lambda: _event(kind, record))

    def _queue(self, event: Callable[[], dict[str, Any]]) -> None:
        """Put an event in the window: encoded only while someone listens and it fits."""
        if not self.streams or self._stopped:
            return
        if len(self._window) < WINDOW_EVENTS:
            self._window.append(_frame(event()))
        else:
            self._overflow = True
        if self._flush_at is None and self.loop is not None:
            delay = max(0.0, self._last_flush + FLUSH_S - self.loop.time())
            self._flush_at = self.loop.call_later(delay, self._flush)

    def _flush(self) -> None:
        self._flush_at = None
        assert self.loop is not None
        self._last_flush = self.loop.time()
        if self._overflow:
            self.resyncs += 1
        self._sent = RESYNC if self._overflow else b"".join(self._window)
        self._window, self._overflow = [], False
        self.flushes += 1
        self._wake()

    def _wake(self) -> None:
        flushed, self._flushed = self._flushed, asyncio.Event()
        flushed.set()

    def _sweep(self) -> None:
        """Every HEARTBEAT_S: a heartbeat for every stream, and the end of stalled ones."""
        assert self.loop is not None
        now = self.loop.time()
        for stream in list(self.streams):
            began = stream.writing_since
            transport = stream.request.transport
            if began is not None and now - began > STALLED_S and transport is not None:
                self.closed_stalled += 1
                transport.abort()  # its write fails, and the stream ends
        self._wake()  # no new window: each stream writes a heartbeat
        self._sweeper = self.loop.call_later(HEARTBEAT_S, self._sweep)

    # --- out --------------------------------------------------------------------------------

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """`GET /api/events`: one `data:` line of JSON per event, `hello` first."""
        if len(self.streams) >= self.max_streams:
            self.refused += 1
            raise ConsoleError(
                503,
                f"this server holds {len(self.streams):,} event streams, its most: close one "
                "(another tab of this page?) and try again",
                retry_after_s=5,
            )
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        stream = _Stream(request)
        self.streams.add(stream)
        loop = asyncio.get_running_loop()
        seen = self.flushes
        try:
            await response.prepare(request)
            hello = b"retry: %d\n" % RETRY_MS + _frame({"type": "hello"})
            await _write(response, stream, loop, hello)
            while not self._stopped:
                if self.flushes == seen:  # nothing new since the last write: wait for it
                    await self._flushed.wait()
                    if self._stopped:
                        break
                if self.flushes == seen:
                    payload = HEARTBEAT
                elif self.flushes == seen + 1:
                    payload = self._sent
                else:  # a window went out while this stream was still writing
                    payload = RESYNC
                seen = self.flushes
                if payload:
                    await _write(response, stream, loop, payload)
        except (ConnectionResetError, ConnectionError):
            pass  # the browser went away, or was closed for not reading
        finally:
            self.streams.discard(stream)
        return response


async def _write(
    response: web.StreamResponse, stream: _Stream, loop: asyncio.AbstractEventLoop, data: bytes
) -> None:
    stream.writing_since = loop.time()
    await response.write(data)
    stream.writing_since = None


def _event(kind: str, record: Any) -> dict[str, Any]:
    if kind == "message":
        return {"type": "message", "message": message_json(record, restored=False)}
    if kind in ("session", "closed"):
        return {"type": kind, "session": session_json(record, transcript=False)}
    if kind == "fault":
        return {"type": "fault", "fault": fault_json(record, 0)}
    return {"type": "resync", "reason": kind}  # restored, cleared: the page reloads
