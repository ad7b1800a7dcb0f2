"""Clocks shared by the fake server and the client strategies.

The server reads its clock for the send-rate bucket, the daily quota, the idle timer and the
timestamps in the ledger. A strategy sleeps through the same clock. With :class:`VirtualClock`
sleeping costs no wall time, so a 20-minute backoff ladder runs in microseconds and every limit
is reproducible. A client in another process cannot share a virtual clock; :class:`ScaledClock`
is real time running k times faster, which that process can share (it runs under libfaketime at
the same scale, from the same start: see :mod:`harness.runner.faketime`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Protocol, cast, runtime_checkable

#: Where virtual time starts: 2026-01-01T00:00:00Z, so ids and timestamps look real but repeat.
VIRTUAL_EPOCH_S = 1_767_225_600.0


@runtime_checkable
class Clock(Protocol):
    """What the server and the strategies need from a clock."""

    #: True when sleeping costs no wall time.
    virtual: bool

    def now(self) -> float:
        """Seconds since the Unix epoch, on this clock."""

    def sleep(self, seconds: float) -> None:
        """Wait `seconds` on this clock."""

    async def sleep_async(self, seconds: float) -> None:
        """Wait `seconds` on this clock, yielding to the running event loop meanwhile."""

    def network_delay(self) -> None:
        """Account for one command's round trip (the server calls this per command)."""


class RealClock:
    """Wall-clock time; `sleep` really sleeps."""

    virtual = False

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    async def sleep_async(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))

    def network_delay(self) -> None:
        """Real round trips take real time already."""

    def __repr__(self) -> str:
        return "RealClock()"


class VirtualClock:
    """Simulated time: `sleep` advances it at once, and each command costs `latency_s`.

    Time only moves forward. Concurrent sleepers each advance it: time is modelled as if their
    waits happened one after another, which keeps single-client runs exactly reproducible.

    >>> clock = VirtualClock()
    >>> clock.sleep(1200.0)              # a 20-minute backoff, instantly
    >>> clock.elapsed()
    1200.0

    On an event loop, `await clock.sleep_async(s)` does the same and yields to the loop.
    """

    virtual = True

    def __init__(self, start_s: float = VIRTUAL_EPOCH_S, latency_s: float = 0.0) -> None:
        if latency_s < 0:
            raise ValueError(f"latency_s must be >= 0, got {latency_s}")
        self._start_s = start_s
        self._now_s = start_s
        self.latency_s = latency_s
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now_s

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.advance(seconds)

    async def sleep_async(self, seconds: float) -> None:
        """`sleep`, then one turn of the event loop: time jumps at once, and the other tasks
        on the loop (the server, when it runs there) get to act on the new time."""
        self.sleep(seconds)
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds` (negative values are refused)."""
        if seconds < 0:
            raise ValueError(f"time only moves forward; got {seconds}")
        with self._lock:
            self._now_s += seconds

    def network_delay(self) -> None:
        if self.latency_s:
            self.advance(self.latency_s)

    def elapsed(self) -> float:
        """Seconds of virtual time since this clock started."""
        with self._lock:
            return self._now_s - self._start_s

    def __repr__(self) -> str:
        return f"VirtualClock(elapsed={self.elapsed():.3f}s, latency_s={self.latency_s})"


class ScaledClock:
    """Real time running `time_scale` times faster than the wall, from `start_s`.

    Every limit, window, delay, stall, idle timer and recorded time of a server on this clock is
    in SES seconds, unscaled in the plan: at scale 20 a 10 s idle timeout fires after 0.5 wall
    seconds and a 24-hour quota window passes in 72 wall minutes. `sleep` waits k times less
    wall time. Each command costs `latency_s` SES seconds (``latency_s / k`` of wall time, the
    server's loop blocked meanwhile, so concurrent connections queue for it as the virtual
    clock's waits add up).

    >>> clock = ScaledClock(100.0, start_s=VIRTUAL_EPOCH_S)
    >>> clock.sleep(1.0)                 # 10 ms of wall time
    >>> round(clock.elapsed())
    1
    """

    virtual = False

    def __init__(
        self, time_scale: float = 1.0, start_s: float | None = None, latency_s: float = 0.0
    ) -> None:
        if not time_scale > 0 or time_scale == float("inf"):
            raise ValueError(f"time_scale must be positive and finite, got {time_scale}")
        if latency_s < 0:
            raise ValueError(f"latency_s must be >= 0, got {latency_s}")
        self.time_scale = time_scale
        self.latency_s = latency_s
        self.start_s = time.time() if start_s is None else start_s
        # Monotonic, so a wall-clock step (NTP) does not move SES time; libfaketime scales the
        # client's clocks from the real ones the same way.
        self._wall_start_s = time.monotonic()

    def now(self) -> float:
        return self.start_s + (time.monotonic() - self._wall_start_s) * self.time_scale

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.time_scale)

    async def sleep_async(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0) / self.time_scale)

    def network_delay(self) -> None:
        if self.latency_s > 0:
            time.sleep(self.latency_s / self.time_scale)

    def elapsed(self) -> float:
        """SES seconds since this clock started."""
        return self.now() - self.start_s

    def __repr__(self) -> str:
        return (
            f"ScaledClock(time_scale={self.time_scale:g}, elapsed={self.elapsed():.3f}s, "
            f"latency_s={self.latency_s})"
        )


@runtime_checkable
class Accounting(Protocol):
    """A clock that keeps its own account of what passes on the wall (see
    :class:`harness.base.progress.ProgressClock`): the server tells it when the client reached
    it and when it answered, and asks it how long its timers must wait."""

    def arrived(self) -> None:
        """The client reached the server (a connection, a command, a request)."""

    def answered(self) -> None:
        """The server has answered a command, or hung up instead: what follows is the
        client's time."""

    def wall_until(self, at_s: float) -> float:
        """Wall seconds until this clock reads `at_s` (0 once it does)."""


#: Whether each clock class keeps an account: an isinstance check against a runtime-checkable
#: protocol reads the class's attributes each time, and the server asks twice a command.
_KEEPS_ACCOUNT: dict[type, bool] = {}


def keeps_account(clock: Clock) -> bool:
    """Whether `clock` is an :class:`Accounting` clock (cached for its class).

    >>> keeps_account(RealClock())
    False
    """
    kind = type(clock)
    known = _KEEPS_ACCOUNT.get(kind)
    if known is None:
        known = _KEEPS_ACCOUNT[kind] = isinstance(clock, Accounting)
    return known


def arrived(clock: Clock) -> None:
    """Tell `clock` that the client reached the server (a no-op for most clocks)."""
    if keeps_account(clock):
        cast(Accounting, clock).arrived()


def answered(clock: Clock) -> None:
    """Tell `clock` that the server has answered (a no-op for clocks that keep no account)."""
    if keeps_account(clock):
        cast(Accounting, clock).answered()


def wall_until(clock: Clock, at_s: float) -> float:
    """Wall seconds until `clock` reads `at_s`, 0 once it does: how long a server timer waits.

    >>> clock = ScaledClock(20.0, start_s=0.0)
    >>> round(wall_until(clock, clock.now() + 10.0), 2)
    0.5
    >>> wall_until(VirtualClock(), 10.0)    # virtual time does not pass on the wall
    0.0
    """
    if keeps_account(clock):
        return cast(Accounting, clock).wall_until(at_s)
    if clock.virtual:
        return 0.0
    return max(0.0, wall_seconds(clock, at_s - clock.now()))


async def sleep_on(clock: Clock, seconds: float) -> None:
    """Wait `seconds` on `clock` from the running event loop, however its time passes: in
    steps, until it reads the moment asked for (a virtual clock moves at once instead)."""
    if clock.virtual:
        await clock.sleep_async(seconds)
        return
    until_s = clock.now() + max(seconds, 0.0)
    while (wait_s := wall_until(clock, until_s)) > 0:
        await asyncio.sleep(wait_s)


def wall_seconds(clock: Clock, seconds: float) -> float:
    """How long `seconds` on `clock` take on the wall: for the event loop's own timers.

    >>> wall_seconds(ScaledClock(20.0), 10.0)
    0.5
    >>> wall_seconds(RealClock(), 10.0)
    10.0
    """
    return seconds / getattr(clock, "time_scale", 1.0)
