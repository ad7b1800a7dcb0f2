"""botocore's retry waits on the harness clock: a virtual clock makes them cost no wall time.

The seam is where botocore waits, not how it decides: its retry loop sleeps with
``time.sleep`` in :mod:`botocore.endpoint` (legacy, standard and adaptive modes all return a
delay that is slept there), and adaptive mode's client-side rate limiter reads
``time.time`` and waits on a ``threading.Condition`` in :mod:`botocore.retries.bucket`. Those
two module globals are replaced, once, by stand-ins that ask the clock of the calling thread
(set with :func:`using`) and fall back to the real ``time`` and ``threading`` for every other
thread, so an application's own boto3 clients elsewhere in the process are untouched.

>>> from harness.base.clock import VirtualClock
>>> clock = VirtualClock()
>>> with using(clock):
...     import botocore.endpoint
...     botocore.endpoint.time.sleep(20.0)        # what a retry does between attempts
>>> clock.elapsed()
20.0
"""

from __future__ import annotations

import contextlib
import threading
import time
import types
from collections.abc import Iterator
from typing import Any

from harness.base.clock import Clock

#: The least a virtual wait advances the clock (see `_Condition.wait`).
MIN_WAIT_S = 1e-6
_local = threading.local()
_installed = False
_install_lock = threading.Lock()


def _clock() -> Clock | None:
    return getattr(_local, "clock", None)


class _Time(types.ModuleType):
    """`time` as botocore's retry code sees it: the thread's harness clock, if it has one."""

    def __init__(self) -> None:
        super().__init__("time")

    def sleep(self, seconds: float) -> None:
        clock = _clock()
        if clock is None:
            time.sleep(seconds)
        else:
            clock.sleep(seconds)

    def time(self) -> float:
        clock = _clock()
        return time.time() if clock is None else clock.now()

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


class _Condition(threading.Condition):
    """A condition whose timed waits pass on the thread's virtual clock (adaptive mode)."""

    def wait(self, timeout: float | None = None) -> bool:
        clock = _clock()
        if clock is None or not clock.virtual or timeout is None:
            return super().wait(timeout)
        # At 1.7e9 s a float moves in steps of ~2.4e-7 s: a smaller wait would not move the
        # clock, and botocore's bucket would wait again for ever.
        clock.sleep(max(timeout, MIN_WAIT_S))
        return False


class _Threading(types.ModuleType):
    def __init__(self) -> None:
        super().__init__("threading")
        self.Condition = _Condition

    def __getattr__(self, name: str) -> Any:
        return getattr(threading, name)


def install() -> None:
    """Put the stand-ins into botocore (idempotent; a thread without a clock sees no change)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        import botocore.endpoint
        import botocore.retries.bucket

        botocore.endpoint.time = _Time()  # type: ignore[attr-defined]
        botocore.retries.bucket.time = _Time()  # type: ignore[attr-defined]
        botocore.retries.bucket.threading = _Threading()  # type: ignore[attr-defined]
        _installed = True


@contextlib.contextmanager
def using(clock: Clock) -> Iterator[Clock]:
    """Within this block, boto3 clients used by this thread wait on `clock`."""
    install()
    previous = _clock()
    _local.clock = clock
    try:
        yield clock
    finally:
        _local.clock = previous
