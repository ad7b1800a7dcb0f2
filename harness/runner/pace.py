"""Did a client keep up with its fast clock? A check after each command case.

At time scale k a client's sleeps, timeouts and the modelled round trips shrink k times on the
wall, but the CPU its work takes (and the server's) does not: each CPU second it spends is k
SES seconds. So the faster the clock, the slower a client looks to SES's limits, and at some
scale a busy client stops pacing like it would at scale 1 (it meets fewer throttles, more idle
timeouts). How much: with ``M`` the client's and server's CPU seconds, plus the seconds they
waited for a core other processes held (Linux schedstat), and ``W`` the wall
seconds of the run, the run would have taken about ``T1 = M + k (W - M)`` SES seconds at scale
1 (the work, plus the rest of the time, which was SES time scaled) and took ``k W``; the
*stretch* ``(k - 1) M / T1`` is the share of SES time the scale added. The figures run from
the client's first contact with the server (a connection, or an SES API request) to its exit:
an interpreter's start-up is no time SES sees, and counted in, it flagged nearly every short
run. CPU time is an upper bound of the work on the critical path (client and server overlap a
little, and a client's children count from when they are reaped), so the check errs on the
side of warning; for the client only its main thread's wait for a core is known.

On a :class:`harness.base.progress.ProgressClock` (``free_work``) the clock leaves out both
sides' CPU and waits for a core (``left_out_s`` wall seconds), and leaps the modelled round
trips (``leaped_s`` SES seconds) instead of sleeping them: no work is stretched by the scale,
``M`` is 0 and the client keeps up at any scale (what the scale still moves is the kernel's
share: see that module).

>>> pace = Pace(time_scale=20, wall_s=5.0, client_cpu_s=0.4, server_cpu_s=0.1)
>>> round(pace.stretch, 3), pace.kept_up, pace.suggested_time_scale
(0.105, True, 46)
>>> Pace(time_scale=20, wall_s=1.0, client_cpu_s=0.7, server_cpu_s=0.2).kept_up
False
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

#: The most SES time a scale may add to a case, as a share of its time at scale 1.
MAX_STRETCH = 0.25


@dataclass(frozen=True)
class Pace:
    """One command case's clock and what the client and server spent on it."""

    time_scale: float
    wall_s: float  # the client process, from its first contact with the server to its exit
    client_cpu_s: float  # user + system time of the process and its waited-for children
    server_cpu_s: float  # the harness process meanwhile: the fake server
    client_queued_s: float = 0.0  # runnable, waiting for a core (its main thread)
    server_queued_s: float = 0.0  # the same for the harness's threads
    #: Wall seconds from the process's start to its first contact with the server, left out
    #: of the figures above (SES sees nothing of a client's start-up).
    start_up_s: float = 0.0
    #: What a progress clock left out (wall seconds) and leapt (SES seconds) meanwhile.
    left_out_s: float = 0.0
    leaped_s: float = 0.0
    #: The clock counted none of the work (a progress clock): nothing for the scale to stretch.
    free_work: bool = False

    @property
    def work_s(self) -> float:
        """Wall seconds the machine, not the scenario, decided and the clock still counted:
        CPU and waits for a core, less what a progress clock left out."""
        if self.free_work:
            return 0.0
        spent = self.client_cpu_s + self.server_cpu_s + self.client_queued_s + self.server_queued_s
        return max(0.0, spent - self.left_out_s)

    @property
    def ses_s(self) -> float:
        """SES seconds the run took on its clock."""
        return self.time_scale * max(0.0, self.wall_s - self.left_out_s) + self.leaped_s

    @property
    def scale_1_s(self) -> float:
        """About how many SES seconds the run would have taken at scale 1."""
        return max(self.work_s, self.ses_s - (self.time_scale - 1) * self.work_s)

    @property
    def stretch(self) -> float:
        """The share of SES time the scale added to the run (0 at scale 1)."""
        if self.time_scale <= 1 or self.work_s <= 0:
            return 0.0
        return (self.time_scale - 1) * self.work_s / max(self.scale_1_s, 1e-9)

    @property
    def kept_up(self) -> bool:
        return self.stretch <= MAX_STRETCH

    @property
    def suggested_time_scale(self) -> int:
        """The highest whole scale whose stretch stays within `MAX_STRETCH` (1 at least)."""
        if self.work_s <= 0:
            return max(1, math.floor(self.time_scale))
        return max(1, math.floor(1 + MAX_STRETCH * self.scale_1_s / self.work_s))

    def note(self) -> str | None:
        """One line for the report when the client did not keep up; None when it did."""
        if self.kept_up:
            return None
        k = self.suggested_time_scale
        advice = "time_scale=1 (real time)" if k == 1 else f"time_scale={k} or lower"
        return (
            f"at time_scale {self.time_scale:g} the client's and server's own work "
            f"({self.work_s:.2f} s of CPU and waits for a core in {self.wall_s:.2f} wall s from "
            f"its first connection) took "
            f"{self.stretch:.0%} more SES time than at scale 1, so timing-dependent numbers "
            f"(throttles, idle timeouts) may differ from real time: run it at "
            f"{advice}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "wall_s": round(self.wall_s, 3),
            "client_cpu_s": round(self.client_cpu_s, 3),
            "server_cpu_s": round(self.server_cpu_s, 3),
            "client_queued_s": round(self.client_queued_s, 3),
            "server_queued_s": round(self.server_queued_s, 3),
            "start_up_s": round(self.start_up_s, 3),
            "left_out_s": round(self.left_out_s, 3),
            "leaped_s": round(self.leaped_s, 3),
            "scale_1_s": round(self.scale_1_s, 3),
            "stretch": round(self.stretch, 4),
            "kept_up": self.kept_up,
            "suggested_time_scale": self.suggested_time_scale,
        }
