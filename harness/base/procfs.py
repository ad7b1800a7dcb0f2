"""A client process as Linux shows it: its threads and its children's, their CPU and their
waits for a core (``/proc/PID/task/TID/schedstat``), for :mod:`harness.base.progress`."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

PROC = Path("/proc")
#: Wall seconds between two looks for the client's new threads and child processes.
REFRESH_S = 0.02


class Tree:
    """A client process, its threads and its children's, read from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._tasks: dict[tuple[int, int], Task] = {}
        self._gone_ran_s = 0.0
        self._refreshed_s = 0.0
        self._refresh()

    def ran_s(self) -> float:
        """Seconds its threads have run, summed (threads gone: as last seen)."""
        total = self._gone_ran_s
        for key, task in list(self._tasks.items()):
            try:
                total += task.ran_s()
            except OSError:
                self._drop(key)
        return total

    def spent_s(self) -> float:
        """Seconds its threads ran or waited for a core since the last call, summed."""
        if time.monotonic() - self._refreshed_s > REFRESH_S:
            self._refresh()
        total = 0.0
        for key, task in list(self._tasks.items()):
            try:
                total += task.spent_s()
            except OSError:  # the thread has gone; what it spent is counted already
                self._drop(key)
        return total

    def runnable(self) -> bool:
        """True when any of its threads is running or waiting for a core."""
        for key, task in list(self._tasks.items()):
            try:
                if task.state() == "R":
                    return True
            except OSError:
                self._drop(key)
        return False

    def close(self) -> None:
        for key in list(self._tasks):
            self._drop(key)

    def _refresh(self) -> None:
        self._refreshed_s = time.monotonic()
        pending, seen = [self.pid], set()
        while pending:
            pid = pending.pop()
            if pid in seen:
                continue
            seen.add(pid)
            try:
                tids = [int(name) for name in os.listdir(PROC / str(pid) / "task")]
            except OSError:
                continue
            for tid in tids:
                if (pid, tid) not in self._tasks:
                    with contextlib.suppress(OSError):
                        self._tasks[(pid, tid)] = Task(pid, tid)
                with contextlib.suppress(OSError, ValueError):
                    children = (PROC / str(pid) / "task" / str(tid) / "children").read_text()
                    pending.extend(int(child) for child in children.split())

    def _drop(self, key: tuple[int, int]) -> None:
        task = self._tasks.pop(key, None)
        if task is not None:
            self._gone_ran_s += task.last_ran_s
            task.close()


class Task:
    """One thread's schedstat and stat, kept open and re-read."""

    def __init__(self, pid: int, tid: int) -> None:
        where = PROC / str(pid) / "task" / str(tid)
        self._schedstat = os.open(where / "schedstat", os.O_RDONLY)
        try:
            self._stat = os.open(where / "stat", os.O_RDONLY)
        except OSError:
            os.close(self._schedstat)
            raise
        # A thread's whole life falls within the case (the client starts after the clock),
        # except the harness's own moments before exec in the process it forked: negligible.
        self._spent_s = 0.0
        self.last_ran_s = 0.0

    def ran_s(self) -> float:
        self.last_ran_s = read_schedstat(self._schedstat)[0]
        return self.last_ran_s

    def spent_s(self) -> float:
        ran_s, waited_s = read_schedstat(self._schedstat)
        self.last_ran_s = ran_s
        spent = ran_s + waited_s
        new, self._spent_s = spent - self._spent_s, spent
        return max(0.0, new)

    def state(self) -> str:
        stat = os.pread(self._stat, 512, 0)
        if not stat:
            raise ProcessLookupError("gone")
        return chr(stat[stat.rindex(b")") + 2])  # pid (comm) state ...; comm may hold ")"

    def close(self) -> None:
        for fd in (self._schedstat, self._stat):
            with contextlib.suppress(OSError):
                os.close(fd)


def read_schedstat(fd: int, *, close: bool = False) -> tuple[float, float]:
    """(seconds on a core, seconds waiting for one) from a schedstat file."""
    try:
        data = os.pread(fd, 128, 0)
    finally:
        if close:
            os.close(fd)
    if not data:
        raise ProcessLookupError("gone")
    run_ns, wait_ns = data.split()[:2]
    return int(run_ns) / 1e9, int(wait_ns) / 1e9
