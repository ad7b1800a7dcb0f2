"""A client's keeper: a small process that starts the client, adopts every process the client
leaves behind, and ends them all when the client exits, when told to, or when whoever started
the keeper is gone, however it went.

Why a process of its own: the process that runs a case (a worker of ``ses-harness run``, a
pytest or xdist process) can die with no chance to clean up: SIGKILL at a case timeout, the OOM
killer, SIGTERM to pytest. The keeper runs no user code and only waits, so it outlives such a
death and notices it: its stdin is a pipe from its starter, which the kernel closes when the
starter dies. It is in a session of its own, so neither the terminal's Ctrl-C nor a kill of the
worker's process group reaches it.

Why a subreaper: a client's processes may leave its process group and session (``setsid``),
daemonise (fork twice, the middle one exits) or ignore SIGTERM; groups and sessions miss the
first two. With ``prctl(PR_SET_CHILD_SUBREAPER)`` (Linux) every orphan in the keeper's tree
becomes the keeper's child instead of init's, so the tree under the keeper, read from /proc, is
everything the client started, whatever it did. Ending it: SIGTERM (and SIGCONT, for a stopped
process), `GRACE_S` to exit, then SIGKILL until nothing runs, reaping as it goes. Without prctl
or /proc the client's own process group is ended the same way, and that is all it can find.
(A cgroup would hold the tree too, but needs a delegated cgroup hierarchy, which CI containers
and login sessions rarely give.)

Run as a script, stdlib only (``python -I -S keeper.py FD``): the starter writes one JSON line
to its stdin, ``{"argv": [...], "env": {...}}``, and keeps the pipe open; closing it means
"stop". The keeper's stdout and stderr are the client's. It answers on descriptor FD, one JSON
object a line: ``{"pid": N}`` or ``{"errno": E, "error": "..."}`` (the client could not start);
then ``{"exit_code": C, "cpu_s": ..., "queued_s": ...}`` when the client has ended (C is None if
it could not be reaped); then ``{"left": N}`` once its tree is ended (N: how many still ran
`KILL_WAIT_S` after SIGKILL, which only a process stuck in the kernel can).

The same module finds processes by a mark in their environment (:func:`end_marked`), for a
runner whose worker, and perhaps that worker's keepers, were killed outright.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable

#: How long the processes of an ended client get to exit after SIGTERM, before SIGKILL.
GRACE_S = 1.0
#: How long SIGKILLed processes may take to exit (one with much memory takes a while).
KILL_WAIT_S = 10.0
#: How long a keeper may take to end a tree that dies on SIGKILL: the grace and some.
ENDING_S = GRACE_S + 2.0
_POLL_S = 0.01  # the kernel gives no notice when another's child exits: a condition wait
_PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


def become_subreaper() -> bool:
    """Make orphaned descendants of this process its children (Linux); False where it cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


# --- processes, from /proc -------------------------------------------------------------------


def _stat(pid: str) -> tuple[str, int] | None:
    """The state and parent of process `pid` (None once it has gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read()
    except OSError:
        return None
    # pid (comm) state ppid ...; comm may hold spaces and parentheses
    state, ppid = text[text.rindex(b")") + 2 :].split(b" ", 2)[:2]
    return state.decode("ascii", "replace"), int(ppid)


def _pids() -> list[str]:
    try:
        return [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:  # no procfs
        return []


def running(state: str) -> bool:
    """Whether a process in /proc state `state` has yet to exit (a zombie has exited)."""
    return state not in ("Z", "X", "x")


def descendants(root: int) -> dict[int, str]:
    """Every process under `root` (its children, theirs, ...), with its state; {} without /proc."""
    children: dict[int, list[int]] = {}
    states: dict[int, str] = {}
    for pid in _pids():
        found = _stat(pid)
        if found is not None:
            states[int(pid)] = found[0]
            children.setdefault(found[1], []).append(int(pid))
    tree: dict[int, str] = {}
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in tree:
                tree[child] = states[child]
                todo.append(child)
    return tree


def marked(name: str, value: str) -> list[int]:
    """The running processes started with ``name=value`` in their environment (and able to
    be read: ours)."""
    mark = f"{name}={value}".encode()
    found = []
    for pid in _pids():
        try:
            with open(f"/proc/{pid}/environ", "rb") as environ:
                if mark not in environ.read().split(b"\0"):
                    continue
        except OSError:  # gone, or not ours to read
            continue
        stat = _stat(pid)
        if stat is not None and running(stat[0]) and int(pid) != os.getpid():
            found.append(int(pid))
    return found


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


def _wait_until(done: Callable[[], bool], seconds: float, between: Callable[[], None]) -> bool:
    """Poll `done` for up to `seconds`, calling `between` before each look."""
    deadline = time.monotonic() + seconds
    while True:
        between()
        if done():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_S)


def end_marked(name: str, value: str, wait_s: float = ENDING_S) -> int:
    """End every process marked ``name=value`` (see :func:`marked`): wait up to `wait_s` for
    them to exit (a keeper among them is ending its client's tree), then SIGKILL what is left
    until none runs. How many still ran `KILL_WAIT_S` later.

    A process that cleared its environment carries no mark; its keeper is what ends it.
    """
    if _wait_until(lambda: not marked(name, value), wait_s, lambda: None):
        return 0

    def kill_marked() -> None:
        for pid in marked(name, value):
            _kill(pid, signal.SIGKILL)

    _wait_until(lambda: not marked(name, value), KILL_WAIT_S, kill_marked)
    return len(marked(name, value))


# --- the keeper ------------------------------------------------------------------------------


class Keeper:
    """The keeper's side: the client it started, and ending it with everything it started."""

    def __init__(self, client: subprocess.Popen[bytes], subreaper: bool) -> None:
        self.client = client
        #: With /proc, whether the tree under the keeper is all the client started.
        self.whole_tree = subreaper and os.path.isdir("/proc")
        self.exit: dict[str, object] | None = None  # the client's, once reaped

    def reap(self) -> None:
        """Reap what has exited: the client (noting its exit) and the orphans it left."""
        if not hasattr(os, "waitid"):  # no peeking: the client is the only child we know
            self._reap_client(os.WNOHANG)
            return
        while True:
            try:
                # WNOWAIT: look first, so the client is still there to read its schedstat
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None:
                return
            if info.si_pid == self.client.pid:
                self._reap_client(0)
            else:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(info.si_pid, 0)

    def _reap_client(self, options: int) -> None:
        if self.exit is not None:
            return
        waited_s = queued_s(f"/proc/{self.client.pid}/schedstat")
        try:
            pid, status, usage = os.wait4(self.client.pid, options)
        except ChildProcessError:
            return
        if pid == 0:
            return
        self.client.returncode = os.waitstatus_to_exitcode(status)
        self.exit = {
            "exit_code": self.client.returncode,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "queued_s": waited_s,
        }

    def _alive(self) -> list[int]:
        """The processes of the client's tree that still run (a negative number: the client's
        process group, when that is all the keeper can see)."""
        if self.whole_tree:
            if not self._has_children():  # the usual end: no scan of /proc needed
                return []
            return [pid for pid, state in descendants(os.getpid()).items() if running(state)]
        tree = [pid for pid, state in descendants(os.getpid()).items() if running(state)]
        try:  # orphans went to init: the client's own group is what else can be found
            os.killpg(self.client.pid, 0)
        except (ProcessLookupError, PermissionError):
            return tree
        return [*tree, -self.client.pid]

    def _has_children(self) -> bool:
        """Whether any process, running or not, still has the keeper for its parent. Once the
        client has gone, everything it left is under such a child: orphans come to a subreaper
        as their parent exits, before it can be reaped."""
        if not hasattr(os, "waitid"):
            return True
        try:
            os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return False
        return True

    def end(self) -> int:
        """End every process under the keeper: SIGTERM, `GRACE_S`, then SIGKILL until none runs.
        How many still ran `KILL_WAIT_S` after SIGKILL."""

        def signal_all(signums: tuple[int, ...]) -> Callable[[], None]:
            def send() -> None:
                self.reap()
                for signum in signums:
                    for pid in self._alive():
                        _kill(pid, signum)  # a negative pid: a process group

            return send

        signal_all((signal.SIGTERM, signal.SIGCONT))()
        if _wait_until(lambda: not self._alive(), GRACE_S, self.reap):
            return 0
        _wait_until(lambda: not self._alive(), KILL_WAIT_S, signal_all((signal.SIGKILL,)))
        self.reap()
        return len(self._alive())


def queued_s(path: str) -> float:
    """Seconds a thread was runnable but waited for a core (Linux schedstat; 0 without it)."""
    try:
        with open(path, encoding="ascii") as stats:
            return int(stats.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def _read_line(fd: int) -> bytes:
    """The first line from `fd`, read without buffering past it (b"" at end of file)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 65536)
        if not chunk:
            return b""
        data += chunk
    return data


def main(argv: list[str]) -> int:
    answers = int(argv[1])

    def answer(message: dict[str, object]) -> None:
        with contextlib.suppress(OSError):  # the starter is gone: end the tree all the same
            os.write(answers, json.dumps(message).encode() + b"\n")  # short: one atomic write

    # Every signal that matters wakes the select below; the client gets default handlers.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    stop: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda signum, frame: stop.append(signum))
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    subreaper = become_subreaper()

    line = _read_line(0)
    if not line:
        return 0  # the starter went before saying what to run
    spec = json.loads(line)
    try:
        client = subprocess.Popen(
            spec["argv"], env=spec["env"], stdin=subprocess.DEVNULL, start_new_session=True
        )
    except OSError as error:
        answer({"errno": error.errno, "error": error.strerror or str(error)})
        return 0
    answer({"pid": client.pid})
    keeper = Keeper(client, subreaper)
    while not stop:
        keeper.reap()
        if keeper.exit is not None:
            break
        ready, _, _ = select.select([0, wake_r], [], [])
        if wake_r in ready:
            os.read(wake_r, 4096)
        if 0 in ready and not os.read(0, 4096):
            break  # stdin closed: told to stop, or the starter has died
    if keeper.exit is not None:  # it exited by itself: what it left behind goes now
        answer(keeper.exit)
        left = keeper.end()
    else:
        left = keeper.end()
        answer(keeper.exit or {"exit_code": None, "cpu_s": 0.0, "queued_s": 0.0})
    answer({"left": left})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
