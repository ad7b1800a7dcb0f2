"""A clock the test steps, for the server's event loop too: timers on the wire without racing.

The idle timer, a `delay` and a `stall` of a server on a real clock are timers of its event loop.
A test that paces itself with `time.sleep` against them races the machine: under load the
client's "quick" command comes late and meets a timeout it was meant to dodge. Here the server
runs on a :class:`SteppedClock`, which it treats as a real clock (`virtual` is False: the same
code path as `RealClock`), in an event loop whose time *is* that clock. Time moves only when the
test calls `step`, and `step` returns once the loop has run every timer due by then; so a timer
fires because the test stepped past it, never because the machine was slow.

>>> def test_x(monkeypatch):                                              # doctest: +SKIP
...     with stepped_server(monkeypatch, idle_timeout_s=1.0) as (ses, clock):
...         ...  # talk to ses.address over a real socket (TCP_NODELAY if it sends unanswered)
...         clock.step(0.9)  # the server saw 0.9 s pass; its timers due by then have run
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from harness import FakeSES, VirtualClock
from harness.server import fake_ses

#: Real seconds a turn of the server's loop may take before the test gives up on it.
TURN_TIMEOUT_S = 30.0


class SteppedClock(VirtualClock):
    """Virtual time the server takes for real time: it waits on its loop's timers.

    Starts at 0: the loop decides what is due with `time() + 1e-9`, which at the virtual epoch
    (1.7e9 s) would round away.
    """

    virtual = False

    def __init__(self) -> None:
        super().__init__(start_s=0.0)
        self._loops: list[asyncio.AbstractEventLoop] = []

    def new_loop(self) -> asyncio.AbstractEventLoop:
        """An event loop whose time is this clock (FakeSES's sync API runs its server in it)."""
        loop = _LoopOnClock(self)
        self._loops.append(loop)
        return loop

    def step(self, seconds: float) -> None:
        """Let the server finish what it is doing now, move time on by `seconds`, and return
        once the server's loop has run every timer due by the new time.

        A turn is a callback the loop runs and the test waits for. It may run before the rest of
        its pass (the bytes that pass read, the timers it found due), so each wait is a series of
        turns: two before the move, so that what a client sent before the step is read at the
        old time (on loopback, bytes sent without Nagle's delay are in the server's socket when
        `sendall` returns); three after it, so that a pass that read the new time has run its
        timers, whichever pass the first turn fell in.
        """
        self._turn(2)
        self.advance(seconds)
        self._turn(3)

    def _turn(self, times: int) -> None:
        for loop in self._loops:
            if loop.is_closed():
                continue
            for _ in range(times):
                turned = threading.Event()
                loop.call_soon_threadsafe(turned.set)
                if not turned.wait(TURN_TIMEOUT_S):
                    raise AssertionError(f"the server's loop did not turn in {TURN_TIMEOUT_S}s")


class _LoopOnClock(asyncio.SelectorEventLoop):
    def __init__(self, clock: SteppedClock) -> None:
        self._stepped_clock = clock  # before the base class, which may ask the time
        super().__init__()

    def time(self) -> float:
        return self._stepped_clock.now()


@contextlib.contextmanager
def stepped_server(
    monkeypatch: pytest.MonkeyPatch, **server: Any
) -> Iterator[tuple[FakeSES, SteppedClock]]:
    """A started `FakeSES(**server)` (SMTP only) on a stepped clock, and the clock."""
    clock = SteppedClock()
    monkeypatch.setattr(fake_ses, "new_event_loop", clock.new_loop)
    with FakeSES(clock=clock, api=False, **server) as ses:
        yield ses, clock
