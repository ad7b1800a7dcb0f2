"""Running a client process: start it, wait for it with a timeout, kill its whole group, and
read from /proc what it and the harness spent meanwhile (for :mod:`harness.runner.pace`).

Linux gives the most here (schedstat, per-process CPU, group members); elsewhere the reads
return 0 and a group is watched with signals.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from harness.runner.pace import Pace

KILL_WAIT_S = 10.0  # how long a killed process group may take to exit
#: What a case keeps of the client's stdout and stderr: the end of each, whatever the exit.
OUTPUT_TAIL_CHARS = 4000


def start(
    argv: Sequence[str], env: dict[str, str], stdout: IO[bytes], stderr: IO[bytes]
) -> subprocess.Popen[bytes]:
    """Start `argv` in a process group of its own, its output to `stdout` and `stderr` (files:
    on the terminal it would garble the progress); an OSError when it cannot start."""
    return subprocess.Popen(
        _argv(argv),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,  # its own group: a timeout kills children too
    )


def tail(path: Path) -> str:
    """The last `OUTPUT_TAIL_CHARS` of a file, read from its end, stripped ("" if empty)."""
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - OUTPUT_TAIL_CHARS * 4))  # UTF-8: <= 4 bytes
        text = handle.read().decode("utf-8", "replace")
    return text[-OUTPUT_TAIL_CHARS:].strip()


def _argv(argv: Sequence[str]) -> list[str]:
    # "python" means the harness's own interpreter, so a client runs with the packages the
    # harness was installed with (e.g. the `clients` extra), venv activated or not.
    if argv[0] in ("python", "python3"):
        return [sys.executable, *argv[1:]]
    return list(argv)


def wait(process: subprocess.Popen[bytes], timeout_s: float) -> tuple[int, float, float, bool]:
    """Wait for `process` to exit, killing its group after `timeout_s`: its exit code, the CPU
    seconds it and its waited-for children used, the seconds its main thread waited for a
    core, and whether it was killed.

    ``os.waitid(WNOWAIT)`` leaves it a zombie whose scheduler statistics can still be read;
    ``os.wait4`` then reaps it with its resource usage (``Popen.wait`` keeps none, and polls
    when given a timeout); a timer thread does the killing.
    """
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    timer = threading.Timer(timeout_s, kill)
    timer.daemon = True
    timer.start()
    try:
        if hasattr(os, "waitid"):
            os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        queued_s = _queued_s(f"/proc/{process.pid}/schedstat")
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        timer.cancel()
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_utime + usage.ru_stime, queued_s, killed.is_set()


def _queued_s(path: str) -> float:
    """Seconds a thread was runnable but waited for a core (Linux schedstat; 0 without it).

    On a shared machine this, not CPU time, is what stretches a run most: at scale k each
    second of it is k SES seconds too.
    """
    try:
        with open(path, encoding="ascii") as stats:
            return int(stats.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def _harness_queued_s() -> float:
    """`_queued_s` summed over this process's threads (the fake server's among them)."""
    tasks = Path("/proc/self/task")
    if not tasks.is_dir():
        return 0.0
    return sum(_queued_s(str(task / "schedstat")) for task in tasks.iterdir())


@dataclass(frozen=True)
class Moment:
    """What the harness and the client had spent by a moment of a command case."""

    wall_s: float
    harness_cpu_s: float
    harness_queued_s: float
    client_cpu_s: float = 0.0
    client_queued_s: float = 0.0

    @classmethod
    def now(cls, client_cpu_s: float = 0.0, client_queued_s: float = 0.0) -> Moment:
        return cls(
            time.monotonic(),
            time.process_time(),
            _harness_queued_s(),
            client_cpu_s,
            client_queued_s,
        )


class FirstContact:
    """A ledger watcher that notes the moment the client first reached the server (a
    connection, or an SES API request), with what the client had spent getting there, and then
    stops watching: the server's later records do not pass through it."""

    def __init__(self) -> None:
        self.pid: int | None = None  # set once the process has started
        self.moment: Moment | None = None
        self.stop: Callable[[], None] = lambda: None  # set to the ledger's, once watching

    def heard(self, kind: str, record: Any) -> None:
        if self.moment is None and kind in ("session", "message", "fault"):
            pid = self.pid  # None only if it connected before Popen returned: nothing spent
            self.moment = Moment.now(
                _cpu_s(f"/proc/{pid}/stat") if pid else 0.0,
                _queued_s(f"/proc/{pid}/schedstat") if pid else 0.0,
            )
            self.stop()


def pace_between(time_scale: float, start: Moment, contact: Moment, end: Moment) -> Pace:
    """The pace of the run from the client's first contact to its exit (its start-up before
    that is not time SES sees, and at a high scale it would dwarf a short run)."""
    return Pace(
        time_scale,
        wall_s=end.wall_s - contact.wall_s,
        client_cpu_s=max(0.0, end.client_cpu_s - contact.client_cpu_s),
        server_cpu_s=max(0.0, end.harness_cpu_s - contact.harness_cpu_s),
        client_queued_s=max(0.0, end.client_queued_s - contact.client_queued_s),
        server_queued_s=max(0.0, end.harness_queued_s - contact.harness_queued_s),
        start_up_s=contact.wall_s - start.wall_s,
    )


def _cpu_s(path: str) -> float:
    """User + system seconds of a process and its reaped children, from /proc/PID/stat (0
    without procfs, or once it has gone)."""
    try:
        with open(path, encoding="ascii", errors="replace") as stat:
            fields = stat.read().rpartition(")")[2].split()
        return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return 0.0


def kill_group(process: subprocess.Popen[bytes]) -> tuple[int, int]:
    """SIGKILL `process` and its group, and wait until none of them runs any more.

    A kill is delivered asynchronously, and a process with much memory takes a while to exit, so
    the group is watched until it is empty. A zombie waiting for a parent other than us has
    exited, so it counts as gone. Returns the exit code and how many processes still ran after
    `KILL_WAIT_S` (only one stuck in the kernel can).
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    exit_code = process.wait()
    deadline = time.monotonic() + KILL_WAIT_S
    while (running := running_in_group(process.pid)) and time.monotonic() < deadline:
        time.sleep(0.002)  # a condition wait: the kernel gives no notice for another's child
    return exit_code, running


def running_in_group(pgid: int) -> int:
    """How many processes of group `pgid` have not exited (zombies have)."""
    proc = Path("/proc")
    if not proc.is_dir():  # no procfs: a group with only zombies left counts as running
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return 0
        return 1
    running = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it exited while we looked
            continue
        # pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses
        state, _ppid, pgrp = stat[stat.rindex(")") + 2 :].split(" ", 3)[:3]
        if int(pgrp) == pgid and state != "Z":
            running += 1
    return running
