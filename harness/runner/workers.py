"""Cases in worker processes that the runner can kill: a strategy that hangs times out, one that
kills its process is reported, and the rest of the matrix goes on.

Each worker is a fresh ("spawn") process in its own process group that runs one task at a time
from a pipe. A task's clock starts when its worker says it began it; past the deadline the
parent stops the worker's whole group (the strategy's own child processes too: SIGTERM, so that
with-blocks and finally clauses close what they opened, then SIGKILL after a grace period) and
starts a fresh worker for the next task. Ctrl-C in a terminal reaches only the parent (the
workers are not in the terminal's process group), and the parent stops every worker before it
goes on. A worker whose parent dies kills its own group, so nothing is left behind either way.

A client process is not in its worker's group: its keeper (:mod:`harness.runner.keeper`) ends it
and everything it started when the worker goes, however it went. Each worker also marks its
environment (`MARK`), which every process it starts inherits, so that after a worker has gone
the parent waits for its keepers to finish and kills whatever still carries the mark: nothing a
case started outlives it, even when a keeper was killed too.

Two things make the matrix faster without changing any case: a free worker takes cases of a
scenario it has begun (`Task.group`), and each worker has a core of its own for in-process
cases (`on_own_core`).
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import multiprocessing.connection
import os
import secrets
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from harness.runner import keeper

#: Extra time a task gets before it calls `started` (building the batch, starting a server).
SETUP_S = 60.0
#: How long a worker gets to exit after being told to (or sent SIGTERM), before SIGKILL.
STOP_GRACE_S = 2.0
#: The environment variable that marks every process a worker starts (with the worker's token).
MARK = "SES_HARNESS_WORKER"


@dataclass(frozen=True)
class Task:
    """One call of the worker function, ``fn(*args, started=callback)``, killed after
    `timeout_s` wall seconds from when `fn` calls `started` (its set-up before that gets
    `timeout_s` + SETUP_S, so a slow machine does not charge it to the strategy)."""

    index: int
    args: tuple[Any, ...]
    timeout_s: float
    #: Tasks of one group share set-up a worker caches (a scenario's batch): a free worker
    #: takes more of a group it has begun, then a group nobody has begun, then any task.
    group: str | None = None


@dataclass(frozen=True)
class Lost:
    """A task that gave no result: why, in words for the case's ``error``."""

    reason: str


def supervise(fn: str, tasks: Sequence[Task], workers: int) -> Iterator[tuple[int, Any]]:
    """Run ``fn`` (``"module:attr"``, imported in each worker) on every task in `workers`
    processes; yield ``(index, result or Lost)`` in the order tasks finish.

    Closing the generator early (an exception in the caller, Ctrl-C) kills every worker.
    """
    pending = list(tasks)
    context = multiprocessing.get_context("spawn")  # no forking of threads or event loops
    pool: list[_Worker] = []
    done = False
    try:
        for _ in range(max(1, min(workers, len(pending)))):
            pool.append(_Worker(context, fn, _core(len(pool))))
        for worker in pool:
            if pending:
                worker.give(_next_task(pending, worker, pool))
        while any(worker.task is not None for worker in pool):
            busy = [worker for worker in pool if worker.task is not None]
            deadlines = [worker.deadline for worker in busy if worker.deadline is not None]
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            multiprocessing.connection.wait(
                [w.conn for w in busy] + [w.process.sentinel for w in busy], timeout
            )
            for slot, worker in enumerate(pool):
                outcome = worker.outcome()
                if outcome is None:
                    continue
                if isinstance(outcome[1], Lost) and pending:
                    worker.stop(kill=True)
                    worker = pool[slot] = _Worker(context, fn, _core(slot))
                if pending:
                    worker.give(_next_task(pending, worker, pool))
                yield outcome
        done = True
    finally:
        for worker in pool:
            worker.stop(kill=not done)


def _next_task(pending: list[Task], worker: _Worker, pool: list[_Worker]) -> Task:
    """Take `worker`'s next task out of `pending` (see `Task.group`)."""
    begun = set().union(*(other.groups for other in pool))
    for prefer in (lambda g: g in worker.groups, lambda g: g not in begun):
        for position, task in enumerate(pending):
            if task.group is not None and prefer(task.group):
                return pending.pop(position)
    return pending.pop(0)


#: The core of this worker process (None: not a worker, or no choice of cores).
_own_core: int | None = None


@contextlib.contextmanager
def on_own_core() -> Iterator[None]:
    """In a worker, run the block, and the threads it starts, on the worker's own core.

    A case in one process is a ping-pong between its client thread and its server thread,
    never both busy at once. On one core a wake-up is a switch on that core; across cores it
    is an inter-processor interrupt, which costs far more on a virtual machine (a CI runner):
    on one core the built-in cases took half the CPU time and half the wall time in our
    measurements (docs/performance.md). Outside a worker this changes nothing.
    """
    if _own_core is None:
        yield
        return
    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {_own_core})
    except OSError:  # the core was taken away (a container's cpuset changed): run anywhere
        yield
        return
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


#: Set to 0 to leave workers' threads to the scheduler (see on_own_core).
PIN_ENV = "SES_HARNESS_PIN"


def _core(slot: int) -> int | None:
    """The core for worker `slot`: round the cores this process may use (Linux only)."""
    if not hasattr(os, "sched_getaffinity") or os.environ.get(PIN_ENV, "1") == "0":
        return None
    cores = sorted(os.sched_getaffinity(0))
    return cores[slot % len(cores)]


class _Worker:
    """One worker process and the task it is on."""

    def __init__(self, context: Any, fn: str, core: int | None) -> None:
        self.conn, child = context.Pipe()
        self.mark = secrets.token_hex(8)
        self.process = context.Process(
            target=_serve, args=(child, fn, core, self.mark), name="ses-harness-case"
        )
        self.process.start()
        child.close()
        self.task: Task | None = None
        self.groups: set[str] = set()  # of the tasks it was given
        self.deadline: float | None = None  # set when the worker says it started the task
        self.timed = False  # past set-up: the strategy itself is running
        self._killed = False

    def give(self, task: Task) -> None:
        self.task, self.deadline, self.timed = task, None, False
        if task.group is not None:
            self.groups.add(task.group)
        self.conn.send(task.args)

    def outcome(self) -> tuple[int, Any] | None:
        """The current task's result or loss, if it has one by now."""
        task = self.task
        if task is None:
            return None
        try:
            while self.conn.poll():
                kind, payload = self.conn.recv()
                if kind == "received":
                    self.deadline = time.monotonic() + task.timeout_s + SETUP_S
                elif kind == "started":
                    self.deadline, self.timed = time.monotonic() + task.timeout_s, True
                elif kind == "done":
                    return self._finish(payload)
                else:  # "raised": a bug outside the strategy's own code; the run goes on
                    return self._finish(Lost(f"the case raised {payload}"))
        except (EOFError, OSError):
            pass  # the process is gone: its exit code says how, below
        if not self.process.is_alive():
            self._kill()  # what its strategy started may still run
            return self._finish(Lost(f"strategy process died (exit {self.process.exitcode})"))
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self._kill()
            if not self.timed:
                return self._finish(
                    Lost(f"case set-up timed out after {task.timeout_s + SETUP_S:g} s")
                )
            return self._finish(Lost(f"strategy timed out after {task.timeout_s:g} s"))
        return None

    def _finish(self, result: Any) -> tuple[int, Any]:
        assert self.task is not None
        index = self.task.index
        self.task, self.deadline = None, None
        return index, result

    def stop(self, *, kill: bool) -> None:
        """Let an idle worker exit, or kill it; either way, nothing of its group is left."""
        if not kill and self.process.is_alive():
            with contextlib.suppress(OSError):
                self.conn.send(None)
            self.process.join(STOP_GRACE_S)
        self._kill()
        self.conn.close()

    def _kill(self) -> None:
        if self._killed:
            return
        self._killed = True
        if self.process.is_alive():
            self._signal(signal.SIGTERM)
            self.process.join(STOP_GRACE_S)
        # The whole group, even when the worker is gone: its strategy's processes go too.
        self._signal(signal.SIGKILL)
        self.process.join()
        # And what left the group: clients, once their keepers have ended them, and anything
        # whose keeper went with the worker.
        keeper.end_marked(MARK, self.mark)

    def _signal(self, signum: int) -> None:
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            if self.process.is_alive():  # not yet in its own group: only just started
                self.process.kill()


def _serve(
    conn: multiprocessing.connection.Connection, fn: str, core: int | None, mark: str
) -> None:
    """A worker's life: its own process group, then tasks until told to stop."""
    global _own_core
    _own_core = core
    os.environ[MARK] = mark  # inherited by every process it starts
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    signal.signal(signal.SIGTERM, _stopped)
    os.setpgrp()
    _die_with_parent()
    module, _, attr = fn.partition(":")
    call = getattr(importlib.import_module(module), attr)
    try:
        while True:
            try:
                args = conn.recv()
            except EOFError:
                return
            if args is None:
                return
            conn.send(("received", None))
            try:
                result = call(*args, started=lambda: conn.send(("started", None)))
            except Exception as error:  # reported as the case's error; the next task runs
                conn.send(("raised", f"{type(error).__name__}: {error}"))
            else:
                conn.send(("done", result))
    except _Stop:
        pass  # killed by the parent; what was open on the way here is closed


class _Stop(BaseException):
    """SIGTERM in a worker: not an Exception, so a strategy's `except Exception` lets it by."""


def _stopped(signum: int, frame: object) -> None:
    raise _Stop


def _die_with_parent() -> None:
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os.killpg(0, signal.SIGKILL)  # this worker and whatever its strategy started

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()
