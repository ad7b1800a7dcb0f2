"""Running a client process: start it through its keeper (:mod:`harness.runner.keeper`), wait
for it with a timeout, end it and every process it started, and read from /proc what it and
the harness spent meanwhile (for :mod:`harness.runner.pace`).

Linux gives the most here (schedstat, per-process CPU, a subreaper for the client's orphans);
elsewhere the reads return 0 and the keeper ends the client's process group.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from harness.base.clock import Clock
from harness.base.progress import ProgressClock
from harness.runner import keeper
from harness.runner.keeper import KILL_WAIT_S
from harness.runner.pace import Pace

#: What a case keeps of the client's stdout and stderr: the end of each, whatever the exit.
OUTPUT_TAIL_CHARS = 4000


@dataclass(frozen=True)
class Exit:
    """How a client process ended."""

    code: int | None  # negative: killed by that signal; None: not known (its keeper was killed)
    cpu_s: float  # of the process and the children it waited for
    queued_s: float  # its main thread's wait for a core (see _queued_s)


def start(argv: Sequence[str], env: dict[str, str], stdout: IO[bytes], stderr: IO[bytes]) -> Client:
    """Start `argv` with `env`, its output to `stdout` and `stderr` (files: on the terminal it
    would garble the progress), through a keeper that ends everything it starts (see
    :mod:`harness.runner.keeper`); an OSError when it cannot start."""
    return Client(_argv(argv), env, stdout, stderr)


class Client:
    """A client process, started by its keeper in a session of their own.

    Call :meth:`end` when the case is over, whatever happened: it stops the client if it still
    runs and returns once its keeper has ended every process the client started. Should this
    process die first, the keeper notices and does the same.
    """

    def __init__(
        self, argv: list[str], env: dict[str, str], stdout: IO[bytes], stderr: IO[bytes]
    ) -> None:
        answers, answer_fd = os.pipe()
        try:
            self._keeper = subprocess.Popen(
                # -I -S: stdlib only, no site or user paths, a quicker start
                [sys.executable, "-I", "-S", keeper.__file__, str(answer_fd)],
                stdin=subprocess.PIPE,  # its lifeline: closed, by us or by our death, it stops
                stdout=stdout,
                stderr=stderr,
                pass_fds=(answer_fd,),
                start_new_session=True,  # no Ctrl-C, no kill of a worker's group reaches it
            )
        except BaseException:
            os.close(answers)
            raise
        finally:
            os.close(answer_fd)
        self._answers = _Answers(answers)
        self.pid: int | None = None  # the client's, once its keeper has started it
        self.exit: Exit | None = None
        self._left: int | None = None
        try:
            assert self._keeper.stdin is not None
            self._keeper.stdin.write(json.dumps({"argv": argv, "env": env}).encode() + b"\n")
            self._keeper.stdin.flush()
            first = self._answers.next(None)
        except (EOFError, BrokenPipeError):
            first = {"errno": None, "error": "its keeper ended before starting it"}
        except BaseException:
            self.end()
            raise
        if "pid" not in first:
            self.end()
            raise OSError(first["errno"], first["error"])
        self.pid = first["pid"]

    def wait(self, timeout_s: float) -> Exit | None:
        """Wait up to `timeout_s` for the client to exit: how it ended, or None if it still
        runs."""
        deadline = time.monotonic() + timeout_s
        try:
            while self.exit is None:
                answer = self._answers.next(deadline)
                if answer is None:
                    return None
                self._note(answer)
        except EOFError:  # its keeper was killed, and the client with it, or soon
            self.exit = Exit(None, 0.0, 0.0)
        return self.exit

    def end(self) -> tuple[Exit, int]:
        """Stop the client if it still runs, and wait until its keeper has ended every process
        it started: how the client ended, and how many of them still ran `KILL_WAIT_S` after
        SIGKILL (only one stuck in the kernel can)."""
        if self._keeper.stdin is not None:
            with contextlib.suppress(OSError):
                self._keeper.stdin.close()  # stop
        deadline = time.monotonic() + keeper.ENDING_S + KILL_WAIT_S
        with contextlib.suppress(EOFError):
            while self._left is None and (answer := self._answers.next(deadline)) is not None:
                self._note(answer)
        try:
            self._keeper.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:  # a keeper does not hang; if it did, it goes
            self._keeper.kill()
            self._keeper.wait()
        self._answers.close()
        if self._left is None and self.pid is not None:
            # Its keeper was killed: end what we can still find, the client's own group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        return self.exit or Exit(None, 0.0, 0.0), self._left or 0

    def _note(self, answer: dict[str, Any]) -> None:
        if "exit_code" in answer:
            self.exit = Exit(answer["exit_code"], answer["cpu_s"], answer["queued_s"])
        elif "left" in answer:
            self._left = answer["left"]


class _Answers:
    """The keeper's answers: JSON lines on a pipe, read with a deadline."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = b""
        self._poll = select.poll()  # not select(): a busy harness may have descriptors > 1023
        self._poll.register(fd, select.POLLIN)

    def next(self, deadline: float | None) -> dict[str, Any] | None:
        """The next answer; None at `deadline`; EOFError once the keeper has gone."""
        while b"\n" not in self._buffer:
            timeout_ms = None if deadline is None else max(0.0, deadline - time.monotonic()) * 1e3
            if not self._poll.poll(timeout_ms):
                return None
            chunk = os.read(self._fd, 65536)
            if not chunk:
                raise EOFError
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


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


def _queued_s(path: str) -> float:
    """Seconds a thread was runnable but waited for a core (Linux schedstat; 0 without it).

    On a shared machine this, not CPU time, is what stretches a run most: at scale k each
    second of it is k SES seconds too.
    """
    return keeper.queued_s(path)


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
    left_out_s: float = 0.0  # what a progress clock had left out and leapt by then
    leaped_s: float = 0.0

    @classmethod
    def now(
        cls, client_cpu_s: float = 0.0, client_queued_s: float = 0.0, clock: Clock | None = None
    ) -> Moment:
        blind = clock if isinstance(clock, ProgressClock) else None
        return cls(
            time.monotonic(),
            time.process_time(),
            _harness_queued_s(),
            client_cpu_s,
            client_queued_s,
            blind.left_out_s if blind is not None else 0.0,
            blind.leaped_s if blind is not None else 0.0,
        )


class FirstContact:
    """A ledger watcher that notes the moment the client first reached the server (a
    connection, or an SES API request), with what the client had spent getting there, and then
    stops watching: the server's later records do not pass through it."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock
        self.pid: int | None = None  # set once the process has started
        self.moment: Moment | None = None
        self.stop: Callable[[], None] = lambda: None  # set to the ledger's, once watching

    def heard(self, kind: str, record: Any) -> None:
        if self.moment is None and kind in ("session", "message", "fault"):
            pid = self.pid  # None only if it connected before Popen returned: nothing spent
            self.moment = Moment.now(
                _cpu_s(f"/proc/{pid}/stat") if pid else 0.0,
                _queued_s(f"/proc/{pid}/schedstat") if pid else 0.0,
                self.clock,
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
        left_out_s=max(0.0, end.left_out_s - contact.left_out_s),
        leaped_s=max(0.0, end.leaped_s - contact.leaped_s),
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
