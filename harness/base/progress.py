"""SES time for a client in another process that follows its progress, not the machine's.

:class:`~harness.base.clock.ScaledClock` runs k times the wall, so every wall second the client
spends computing, or waiting for a core that another process holds, is k SES seconds: on a busy
or slow machine the same client looks slower to SES's idle timeout and send rate than on a fast
quiet one, and its verdict changes (nodemailer's throttled count moved between 225 and 288 of
300 over four runs at 8x). In-process strategies have no such problem: on the
:class:`~harness.base.clock.VirtualClock` their work costs no SES time, and only their sleeps
and the modelled round trips move it.

:class:`ProgressClock` gives a client in another process the same rule. SES time passes, k times
the wall, only while the client waits on a timer or for the network; it leaves out
(``left_out_s``):

- every wall second a thread of the client's processes ran or waited for a core (the first two
  fields of Linux's ``/proc/PID/task/TID/schedstat``). While one is runnable no time passes at
  all (the kernel adds a wait to those figures only once it is over), and the server's timers
  (:func:`~harness.base.clock.wall_until`) wait: a client at work is not idle;
- the server event loop's CPU and waits for a core, but for its own timers (an idle timeout
  firing while the client sleeps is the server's idle time, which passes);
- gaps shorter than :data:`MIN_IDLE_S` in which neither side worked: the kernel passing bytes
  between them, which the modelled round trip stands for;

and leaps the modelled round trip (``latency_s``) instead of sleeping it (``leaped_s``).

The client's clock follows this one: libfaketime, at the same rate k, reads its offset from a
file (``FAKETIME_TIMESTAMP_FILE``; ``FAKETIME_NO_CACHE`` re-reads it at every clock call) that
this clock rewrites whenever the server answers (:meth:`~ProgressClock.answered`). The rate
never changes, so the client's sleeps and timeouts keep their length in SES seconds; but
between two answers its clock runs k times the wall while it works, so a reading it takes
after working c wall seconds is k c ahead of this clock until the next answer sets it back.
Back, never below what the client may have read already (its clock when it last reached the
server, if it has not run since), since a clock that goes backwards breaks programs (Node
aborts). So the client's clock reads this one after every answer as long as its work between
two answers, times k, is less than the round trip leapt meanwhile; a client that works more
runs ahead by the difference (``client_ahead_s`` is the most it did), and one that paces itself
by its clock then sends that much early. Intervals it measures across answers are off by k
times the difference of its work before the readings: about nothing for a steady client.

What this cannot hide: a client's timeout is converted to wall time when it starts (30 s at
1000x is 30 ms), so a server that a busy machine keeps from a core longer than that times the
client out; and at a high scale the kernel's own delays under load (a few milliseconds) are
seconds of SES time. Scales of a thousand suit only scenarios whose limits are minutes wide.

>>> clock = ProgressClock(10.0, start_s=0.0, latency_s=0.02)
>>> clock.network_delay()          # a command's round trip: a leap, no wall time
>>> clock.leaped_s
0.02
"""

from __future__ import annotations

import os
import resource
import shutil
import tempfile
import threading
import time
from pathlib import Path

from harness.base.clock import ScaledClock, sleep_on
from harness.base.procfs import PROC, Tree, read_schedstat

#: Wall seconds in which neither side worked, below which no SES time passes: bytes passing
#: through the kernel between the two (10 to 60 us here), which the modelled round trip stands
#: for. A client's sleep that short costs nothing either, so the gap is also at most
#: `MIN_IDLE_SES_S` of SES time (at 8x: 0.2 ms of wall time, 1.6 ms of SES time).
MIN_IDLE_S = 0.0002
MIN_IDLE_SES_S = 0.002
#: Above this scale the server's work between an answer and its next sleep is not left out:
#: it runs beside the client's wake (0.1 to 0.3 ms here), and both counted would take k times
#: that from the client's next sleep (at 1,200x, backoffs of 0.5 s came out at 0.06 s). Below
#: it, leaving the work out keeps its CPU time (which a busy machine stretches) off the clock.
OVERLAP_SCALE = 100.0
#: Wall seconds between two looks at a runnable client, while a server timer waits for it.
RECHECK_S = 0.001
SHM = Path("/dev/shm")
FOLDER_PREFIX = "ses-harness-clock-"


def supported() -> bool:
    """True where the threads' CPU and waits for a core can be read (Linux, schedstat)."""
    try:
        fd = os.open(PROC / "thread-self" / "schedstat", os.O_RDONLY)
        read_schedstat(fd, close=True)
    except (OSError, ValueError):
        return False
    return True


class ProgressClock(ScaledClock):
    """SES time at `time_scale` times the wall while the client waits (see the module).

    :meth:`publish` makes the file the client's libfaketime reads
    (:func:`harness.runner.faketime.following` sets that up); :meth:`follow` takes the client's
    pid once it runs, :meth:`unfollow` ends the case.
    """

    def __init__(
        self, time_scale: float = 1.0, start_s: float | None = None, latency_s: float = 0.0
    ) -> None:
        super().__init__(time_scale, start_s, latency_s)
        self._lock = threading.Lock()
        self._now_s = self.start_s
        self._wall_s = self._wall_start_s
        self._real_minus_wall_s = time.time() - self._wall_start_s
        #: Wall seconds left out (the client's work, the server's), and SES seconds leapt
        #: (modelled round trips): the case reports both.
        self.left_out_s = 0.0
        self.leaped_s = 0.0
        self._client: Tree | None = None
        self._loop: _LoopThread | None = None
        self._timed = False  # the server's loop last looked at this clock for a timer of its own
        self._pending_s = 0.0  # time spent, to leave out when the clock next moves
        self._carried_s = 0.0  # time spent that ended while the clock was being read
        self._min_idle_s = min(MIN_IDLE_S, MIN_IDLE_SES_S / self.time_scale)
        self._offset_file: Path | None = None
        self._client_start_s = 0.0  # the client's libfaketime start, estimated (Unix seconds)
        self._published = ""
        # The client's clock as last published (SES seconds, at wall second), and the least it
        # may be set back to (None: not set back at all until the client reaches the server).
        self._client_now_s = self.start_s
        self._client_at_wall_s = self._wall_s
        self._floor_s: float | None = None
        self._client_ran_s = 0.0  # the client's CPU when it last reached the server
        #: The most the client's clock was ahead of this one at an answer, in SES seconds.
        self.client_ahead_s = 0.0

    # --- the clock -----------------------------------------------------------------------------

    def now(self) -> float:
        with self._lock:
            return self._advance(settle=True)

    def sleep(self, seconds: float) -> None:
        until_s = self.now() + max(seconds, 0.0)
        while (wait_s := self.wall_until(until_s)) > 0:
            time.sleep(wait_s)

    async def sleep_async(self, seconds: float) -> None:
        await sleep_on(self, seconds)

    def arrived(self) -> None:
        """The client reached the server (a connection, a command, a request): the server's
        time on it is left out until it is answered."""
        with self._lock:
            self._arrive()

    def network_delay(self) -> None:
        """A command arrived (see :meth:`arrived`); its modelled round trip is a leap."""
        with self._lock:
            self._arrive()
            self._now_s += self.latency_s
            self.leaped_s += self.latency_s

    def answered(self) -> None:
        """The server answered (or hung up): tell the client's clock where this one is."""
        with self._lock:
            self._adopt_loop()
            self._advance(settle=True)
            self._publish()
            self._advance(settle=True)  # the writing itself is the server's time, left out

    def wall_until(self, at_s: float) -> float:
        """Wall seconds until this clock reads `at_s`; while the client is runnable, a short
        recheck instead, whatever the clock reads (a client at work is not idle)."""
        with self._lock:
            if self._client is not None and self._client.runnable():
                return RECHECK_S
            # A timer woke the server, not the client: that wait is not the client's business.
            now_s = self._advance(settle=False)
        return max(0.0, at_s - now_s) / self.time_scale

    def elapsed(self) -> float:
        return self.now() - self.start_s

    # --- the client ------------------------------------------------------------------------

    def publish(self) -> Path:
        """Keep the client's clock in a file (``+OFFSET xK``, libfaketime's form), written now
        for a client about to start; its path, for ``FAKETIME_TIMESTAMP_FILE``.

        The file is in ``/dev/shm`` where there is one: a rewrite there took 30 us here, and
        0.4 to 0.7 ms of wall time on a disk (time no side spends working, so k times it would
        pass on the clock at every answer). :meth:`unfollow` removes it.
        """
        shm = SHM if SHM.is_dir() and os.access(SHM, os.W_OK) else None
        _sweep(Path(shm or tempfile.gettempdir()))
        folder = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-", dir=shm))
        with self._lock:
            self._offset_file = folder / "faketimerc"
            self._client_start_s = time.time()
            self._published = ""
            self._floor_s = None
            self._advance(settle=False)
            self._client_now_s, self._client_at_wall_s = self._now_s, self._wall_s
            self._publish()
            return self._offset_file

    def follow(self, pid: int) -> None:
        """Leave out the CPU and waits for a core of process `pid`, its threads and children."""
        with self._lock:
            self._client = Tree(pid)

    def unfollow(self) -> None:
        """Stop following the client (it has exited) and remove the file of its clock."""
        with self._lock:
            if self._client is not None:
                self._advance(settle=False)
                self._client.close()
                self._client = None
            if self._offset_file is not None:
                shutil.rmtree(self._offset_file.parent, ignore_errors=True)
                self._offset_file = None

    # --- internals ---------------------------------------------------------------------------

    def _arrive(self) -> None:
        self._adopt_loop()
        self._advance(settle=True)
        # The client waits for the answer from here: what it may have read is at most this,
        # unless it runs again before the answer (see _publish).
        self._floor_s = self._client_clock(time.monotonic())
        self._client_ran_s = self._client.ran_s() if self._client is not None else 0.0

    def _client_clock(self, wall_s: float) -> float:
        """The client's clock at `wall_s`, running k times the wall since the last publish."""
        return self._client_now_s + self.time_scale * (wall_s - self._client_at_wall_s)

    def _adopt_loop(self) -> None:
        """The first thread the client reaches is the server's event loop thread."""
        if self._loop is None:
            self._loop = _LoopThread()

    def _advance(self, *, settle: bool) -> float:
        """Bring the clock to the present: k times the wall since the last look, less what was
        left out meanwhile: the client's CPU and waits, and the server loop's, but for a timer
        of the server's own (`settle` False: a timer looks; its wait, and its CPU up to the
        loop's next look, are the server's idle time, which passes)."""
        wall_s = time.monotonic()
        loop_s = 0.0
        loop = self._loop
        if loop is not None and loop.is_current():
            cpu_s, wait_s, slept = loop.spent_s()
            if slept:  # it went idle since: a new event woke it, no longer a timer's
                self._timed = False
            if not self._timed:  # what the loop did since its last look was for the client
                # (at a high scale, when the loop has slept since, only its wake: its work
                # after an answer ran beside the client's, counted already, and k times that
                # overlap would eat into the client's next sleep)
                tail_s = 0.0 if slept and self.time_scale > OVERLAP_SCALE else cpu_s
                loop_s = tail_s + (wait_s if settle else 0.0)
            if not settle:  # a timer of the server's own, until the loop next goes idle
                self._timed = True
        client = self._client
        if client is not None and client.runnable():
            # At work, or waiting for a core: no time passes. The kernel adds a wait to its
            # figures only once the wait is over, so this stretch is counted when it is; the
            # server's work meanwhile counts only beyond the client's (they ran side by side).
            client_s = client.spent_s()
            self._pending_s += client_s + loop_s - min(loop_s, client_s)
            return self._now_s
        spent_s = self._carried_s + self._pending_s + loop_s
        spent_s += client.spent_s() if client is not None else 0.0
        # The figures were read after `wall_s`: a wait that ended meanwhile is in them but not
        # in the time passed, so it is carried to the next look (at most as long as reading
        # took; beyond that, spending that overlapped cannot leave out more than passed).
        read_s = time.monotonic() - wall_s
        passed_s = wall_s - self._wall_s
        left_s = min(passed_s, spent_s)
        self._carried_s = min(spent_s - left_s, read_s)
        idle_s = passed_s - left_s
        if idle_s < self._min_idle_s:  # the kernel passing bytes: the round trip stands for it
            left_s, idle_s = passed_s, 0.0
        self._now_s += self.time_scale * idle_s
        self._wall_s = wall_s
        self._pending_s = 0.0
        self.left_out_s += left_s
        return self._now_s

    def _publish(self) -> None:
        """Set the client's clock to this one's, but not below what it may have read.

        libfaketime reads ``+O xK`` as: start + O + K (real - start), `start` being the real
        time it started at (shared by the client's children). We know `start` only about (the
        moment before we started the process); the error is a fixed offset between the two
        clocks, which no interval the client measures sees.
        """
        if self._offset_file is None:
            return
        floor_s = self._floor_s
        client = self._client
        if floor_s is None or (
            client is not None and (client.runnable() or client.ran_s() > self._client_ran_s)
        ):
            floor_s = self._client_clock(time.monotonic())  # it may be reading it: no setback
        client_s = max(self._now_s, floor_s)
        self.client_ahead_s = max(self.client_ahead_s, client_s - self._now_s)
        self._client_now_s, self._client_at_wall_s = client_s, self._wall_s
        self._floor_s = None
        k = self.time_scale
        real_s = self._wall_s + self._real_minus_wall_s
        offset_s = client_s - k * real_s + (k - 1) * self._client_start_s
        line = f"{offset_s:+.6f} x{k:g}\n"
        if line == self._published:
            return
        scratch = self._offset_file.with_name(self._offset_file.name + ".new")
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, line.encode("ascii"))
        finally:
            os.close(fd)
        os.replace(scratch, self._offset_file)  # whole: a half-written line would reset it
        self._published = line

    def __repr__(self) -> str:
        return (
            f"ProgressClock(time_scale={self.time_scale:g}, elapsed={self.elapsed():.3f}s, "
            f"left_out_s={self.left_out_s:.3f}, leaped_s={self.leaped_s:.3f})"
        )


def _sweep(where: Path) -> None:
    """Remove the clock folders of harness processes that have gone (killed mid-case)."""
    for folder in where.glob(f"{FOLDER_PREFIX}*-*"):
        pid = folder.name.removeprefix(FOLDER_PREFIX).partition("-")[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:  # alive, another user's
            continue


class _LoopThread:
    """The server's event loop thread: its CPU (exact, read on itself) and waits for a core."""

    def __init__(self) -> None:
        self.tid = threading.get_native_id()
        self._stat = os.open(PROC / "thread-self" / "schedstat", os.O_RDONLY)
        self._cpu_s = time.thread_time()
        self._wait_s = read_schedstat(self._stat)[1]
        self._slept = resource.getrusage(resource.RUSAGE_THREAD).ru_nvcsw

    def is_current(self) -> bool:
        return threading.get_native_id() == self.tid

    def spent_s(self) -> tuple[float, float, bool]:
        """CPU and waits for a core since the last call, and whether the thread went to sleep
        meanwhile (the loop waited for events); call it on the thread itself."""
        cpu_s, wait_s = time.thread_time(), read_schedstat(self._stat)[1]
        slept = resource.getrusage(resource.RUSAGE_THREAD).ru_nvcsw
        spent = (cpu_s - self._cpu_s, wait_s - self._wait_s, slept != self._slept)
        self._cpu_s, self._wait_s, self._slept = cpu_s, wait_s, slept
        return spent
