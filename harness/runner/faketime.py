"""Run a client process on the fake server's clock: libfaketime at the same scale, same start.

A client in another process cannot share the harness's virtual clock, but it can share a
:class:`harness.base.clock.ScaledClock`: libfaketime (Debian's ``faketime`` package), loaded
with ``LD_PRELOAD``, makes the process's clocks run k times faster than the wall from a start
time we give it, and its sleeps, poll/select/epoll timeouts and timers k times shorter. Python's
``time.time``, ``monotonic``, ``perf_counter``, ``sleep``, socket timeouts and asyncio, and
Node's ``Date.now``, ``process.hrtime`` and ``setTimeout`` all follow it.

The settings, from libfaketime's README (0.9.10):

- ``FAKETIME="@<unix seconds> x<k>"`` with ``FAKETIME_FMT=%s``: a *start-at* time, then k times
  the wall. The ``%s`` form is the Unix time whatever the client's ``TZ`` (the default
  ``"@YYYY-MM-DD hh:mm:ss"`` form is read in local time), and takes a fraction.
- ``FAKETIME_DONT_RESET=1``: a child the client starts carries on the same clock instead of
  starting again at the start time (libfaketime shares it through ``/dev/shm``).
- Not ``FAKETIME_DONT_FAKE_MONOTONIC``: Node's timers and Python's ``monotonic`` need the
  monotonic clock scaled too. Not ``FAKETIME_NO_CACHE``: the cache is for re-reading a
  faketimerc file, and our setting, in the environment, never changes.

A client whose clock must follow a :class:`harness.base.progress.ProgressClock` gets
:func:`following` instead: libfaketime reads ``+OFFSET xK`` from a file the harness rewrites
(``FAKETIME_TIMESTAMP_FILE``, and ``FAKETIME_NO_CACHE=1`` to re-read it at every clock call:
by default it is re-read every 10 s). Verified on 0.9.10, against its source: the ``+``
form never resets the start time, so a new offset moves the clock at the next read and the
rate, fixed at K, keeps converting sleeps and timeouts as before (libfaketime converts a sleep
at its start: a new offset cannot shorten one in flight, nor does it need to); the
``FAKETIME`` variable would take precedence over the file, so it is not set. The price is a
file read per clock call: 35 us here against 1.7 us (a Node client reads its clock about 30
times a message, so about 1 ms of CPU more a message).

What libfaketime 0.9.10 does not cover, so such a client needs ``time_scale=1``: a timed wait
on a thread primitive that glibc hands to the kernel's monotonic clock (Python's
``Lock.acquire(timeout=)``, ``Event.wait(t)``, ``queue.get(timeout=)``, C++'s
``condition_variable::wait_until``) waits for years (libfaketime issues 390 and 469); Go
programs read the clock without libc and are not scaled at all.
"""

from __future__ import annotations

import contextlib
import glob
import os
import sys
from collections.abc import Mapping
from pathlib import Path

#: Where distributions put the preload library (Debian/Ubuntu multiarch first).
LIBRARY_GLOBS = (
    "/usr/lib/*-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib64/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
)
#: Set to a library path to use that one, or to an empty string to run without libfaketime.
LIBRARY_ENV = "SES_HARNESS_FAKETIME_LIB"
INSTALL_HINT = (
    "libfaketime not found, so this client ran on the real clock (time_scale 1): "
    "install it for a fast clock (Debian/Ubuntu: apt-get install faketime; "
    "Fedora: dnf install libfaketime; Linux only)"
)
# Settings inherited from the harness's own environment that would change the client's clock.
_INHERITED = ("FAKETIME_SHARED", "FAKETIME_DONT_FAKE_MONOTONIC", "FAKETIME_TIMESTAMP_FILE")
# Settings that would override or bend a clock read from a file.
_FILE_OVERRIDES = (
    "FAKETIME",
    "FAKETIME_FMT",
    "FAKETIME_CACHE_DURATION",
    "FAKETIME_XRESET",
    "FAKETIME_FOLLOW_FILE",
    "FAKETIME_UPDATE_TIMESTAMP_FILE",
)


def find_library() -> str | None:
    """The path of libfaketime's preload library here, or None (not Linux, not installed)."""
    if LIBRARY_ENV in os.environ:
        chosen = os.environ[LIBRARY_ENV]
        return chosen if chosen and Path(chosen).is_file() else None
    if not sys.platform.startswith("linux"):
        return None  # macOS needs DYLD_INSERT_LIBRARIES and a flat namespace; not supported
    for pattern in LIBRARY_GLOBS:
        for path in sorted(glob.glob(pattern)):
            return path
    return None


def environment(
    env: Mapping[str, str], library: str, start_s: float, time_scale: float
) -> dict[str, str]:
    """`env` with the client's clocks starting at `start_s` (Unix seconds) and running
    `time_scale` times the wall.

    >>> e = environment({"PATH": "/bin"}, "/lib/ft.so.1", 1767225600.25, 20)
    >>> e["FAKETIME"], e["FAKETIME_FMT"], e["LD_PRELOAD"]
    ('@1767225600.250000 x20', '%s', '/lib/ft.so.1')
    """
    result = {k: v for k, v in env.items() if k not in _INHERITED}
    preload = env.get("LD_PRELOAD", "")
    result["LD_PRELOAD"] = f"{library}:{preload}" if preload else library
    result["FAKETIME_FMT"] = "%s"
    result["FAKETIME"] = f"@{start_s:.6f} x{time_scale:g}"
    result["FAKETIME_DONT_RESET"] = "1"
    return result


def following(env: Mapping[str, str], library: str, offset_file: Path) -> dict[str, str]:
    """`env` with the client's clocks read from `offset_file`, which holds libfaketime's
    ``+OFFSET xK`` and which the harness rewrites as its clock moves.

    >>> e = following({"FAKETIME": "+1d"}, "/lib/ft.so.1", Path("/tmp/case/clock"))
    >>> e["FAKETIME_TIMESTAMP_FILE"], e["FAKETIME_NO_CACHE"], "FAKETIME" in e
    ('/tmp/case/clock', '1', False)
    """
    result = {k: v for k, v in env.items() if k not in (*_INHERITED, *_FILE_OVERRIDES)}
    preload = env.get("LD_PRELOAD", "")
    result["LD_PRELOAD"] = f"{library}:{preload}" if preload else library
    result["FAKETIME_TIMESTAMP_FILE"] = str(offset_file)
    result["FAKETIME_NO_CACHE"] = "1"
    result["FAKETIME_DONT_RESET"] = "1"
    return result


def clean_up(pid: int) -> None:
    """Remove the shared memory and semaphore of a client that was killed, not exited.

    libfaketime creates ``/dev/shm/faketime_shm_<pid>`` and ``sem.faketime_sem_<pid>`` in the
    first process and removes them at exit; a SIGKILL leaves them behind, and a later process
    that gets the same pid would then run without the shared clock its children need.
    """
    for name in (f"faketime_shm_{pid}", f"sem.faketime_sem_{pid}"):
        with contextlib.suppress(OSError):
            os.unlink(f"/dev/shm/{name}")
