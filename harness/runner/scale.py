"""The clock of a command case: which one, at which scale, and whether it decided counts.

A client in another process runs on a fast clock (:mod:`harness.runner.command`): where Linux
lets the harness read what the client's threads spend, a
:class:`harness.base.progress.ProgressClock`, on which SES time passes k times the wall only
while the client waits (its work and the machine's load cost none, as an in-process strategy's
work costs none on the virtual clock), with the client's libfaketime following it through a
file; elsewhere a plain :class:`harness.base.clock.ScaledClock` (k times the wall throughout).

The scale is the strategy's own (``cmd[time_scale=K]:...``) when it names one, else the
scenario's ``command_time_scale`` (a scenario whose correct client waits for hours, as
greylisting's does, plays faster), else :data:`harness.runner.command.DEFAULT_TIME_SCALE`.

After the case, :func:`clock_record` is ``case["clock"]``: what the clock was, what it left
out, and whether the case's counts depend on time (``depends_on_time``): a decision of the
clock came within the clock's resolution of going the other way (the engine's closest call,
:mod:`harness.core.margins`), the client hung up waiting for a reply (its own timeout, k times
shorter in wall time), or the clock decided counts while the client did not keep up with its
scale (:mod:`harness.runner.pace`). Every report then says so on the case's line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Protocol

from harness.base.clock import Clock, ScaledClock, VirtualClock
from harness.base.ledger import Ledger
from harness.base.progress import ProgressClock, supported
from harness.core.errors import PlanError
from harness.core.margins import CloseCall
from harness.core.plan import Plan
from harness.runner import faketime


class Scalable(Protocol):
    """What a command strategy offers here (harness.runner.command imports this module)."""

    time_scale_given: bool

    def use_time_scale(self, time_scale: float | None, source: str = ...) -> None: ...


#: The environment variable that picks a command case's clock, and its values.
CLOCK_ENV = "SES_HARNESS_CLOCK"
CLOCKS = ("progress", "scaled")
#: Faults the server's limits fire by the clock: where one fired, the scale can move counts.
TIMED_LIMITS = frozenset({"rate_per_s", "idle_timeout_s"})
#: Wall seconds by which a machine's scheduler may move a step of a client in another process
#: (a wake-up late, two connections' commands reaching the server in the other order). Times
#: the scale, plus the modelled round trip, it is the resolution of such a case's clock: a
#: decision nearer its edge than that may go the other way in another run.
HICCUP_S = 0.005


def resolution_s(clock: Clock) -> float:
    """SES seconds within which a decision of this case's clock may go either way (0 on the
    virtual clock, where an in-process strategy's steps are the clock's own)."""
    if isinstance(clock, VirtualClock):
        return 0.0
    return getattr(clock, "latency_s", 0.0) + getattr(clock, "time_scale", 1.0) * HICCUP_S


def case_clock(time_scale: float, latency_s: float, library: str | None) -> ScaledClock:
    """The clock of a command case at `time_scale`: following the client's progress when it
    runs under libfaketime (`library`) and its threads can be read, else scaled.

    ``SES_HARNESS_CLOCK=scaled`` asks for the scaled clock anyway: for a client that polls in
    a busy loop (on a progress clock no time passes while it runs), or to compare.
    """
    if os.environ.get(CLOCK_ENV, "progress") not in CLOCKS:
        raise PlanError(CLOCK_ENV, f"{os.environ[CLOCK_ENV]!r} is not a clock", allowed=CLOCKS)
    wanted = os.environ.get(CLOCK_ENV, "progress")
    if wanted == "progress" and library is not None and time_scale != 1 and supported():
        return ProgressClock(time_scale, latency_s=latency_s)
    return ScaledClock(time_scale, latency_s=latency_s)


def client_environment(
    clock: Clock,
    env: Mapping[str, str],
    library: str | None,
    start_s: float,
    time_scale: float,
) -> dict[str, str]:
    """`env` for the client process: its libfaketime following a progress `clock` through a
    file, or on a fixed scale from `start_s`; unchanged without libfaketime."""
    if library is None:
        return dict(env)
    if isinstance(clock, ProgressClock):
        return faketime.following(env, library, clock.publish())
    return faketime.environment(env, library, start_s, time_scale)


def follow(clock: Clock, pid: int) -> None:
    """Tell a progress `clock` which process is the client (others need not know)."""
    if isinstance(clock, ProgressClock):
        clock.follow(pid)


def unfollow(clock: Clock) -> None:
    if isinstance(clock, ProgressClock):
        clock.unfollow()


def use_scenario_scale(command: Scalable, time_scale: float | None) -> None:
    """Give `command` the scenario's scale (its ``command_time_scale``), unless its spec names
    its own."""
    if not command.time_scale_given:
        command.use_time_scale(time_scale, "scenario")


def timed_faults(plan: Plan, ledger: Ledger) -> dict[str, int]:
    """How often each fault that fires by the clock fired: the rate, the idle timeout, and
    every rule with a `greylist_s` (by its name)."""
    rules = plan.faults
    fired: dict[str, int] = {}
    for fault in ledger.faults:
        if fault.source == "limit":
            timed = fault.name in TIMED_LIMITS
        else:
            index = fault.rule_index
            timed = index is not None and index < len(rules)
            timed = timed and rules[index].match.greylist_s is not None  # type: ignore[index]
        if timed:
            fired[fault.name] = fired.get(fault.name, 0) + 1
    return fired


def hung_up_waiting(ledger: Ledger) -> list[tuple[int, float]]:
    """Sessions whose client hung up while a command of its waited for its reply (session
    number, and when, on the server's clock): a client's own timeout, which a fast clock makes
    k times shorter in wall time, where the machine's load decides whether it fires."""
    return [
        (session.number, session.hung_up_waiting_at)
        for session in ledger.sessions
        if session.hung_up_waiting_at is not None
    ]


def decided_by_clock(plan: Plan, ledger: Ledger, scale_1_s: float | None) -> bool:
    """Whether the clock decided counts of this run: a fault that fires by the clock fired,
    or the recipients the client offered, at the pace the run would have had in real time
    (`scale_1_s` SES seconds), come to more than the send rate (a client the scale slowed
    may never have met the throttle it would meet in real time)."""
    if timed_faults(plan, ledger):
        return True
    rate = plan.resolved_limits().rate_per_s
    if rate is None or scale_1_s is None:
        return False
    return _recipients_offered(ledger) / max(scale_1_s, 1e-9) > rate


def clock_record(
    plan: Plan,
    clock: Clock,
    ledger: Ledger,
    case: Mapping[str, Any],
    closest: CloseCall | None = None,
    start_s: float = 0.0,
) -> dict:
    """``case["clock"]``: the case's clock and whether its counts depend on time.

    ``kind`` is ``virtual`` (in-process: no count depends on the wall), ``progress``,
    ``scaled`` or ``real``; ``left_out_s`` the wall seconds a progress clock left out (the
    client's and the server's work and waits for a core), ``leaped_s`` the SES seconds of
    modelled round trips it leapt, ``client_ahead_s`` the most the client's clock ran ahead of
    it (see :mod:`harness.base.progress`); ``decided_by_clock``, ``kept_up``, ``stretch`` and
    ``suggested_time_scale`` as in :func:`decided_by_clock` and :mod:`harness.runner.pace`;
    ``hung_up_waiting`` the sessions whose client hung up waiting for a reply
    (:func:`hung_up_waiting`; times from `start_s`, as the timeline's); ``closest_call`` is
    `closest` (the decision of the clock nearest its edge, see
    :mod:`harness.core.margins`) and ``resolution_s`` the clock's (:func:`resolution_s`);
    ``depends_on_time`` is true when that decision was within the resolution (another run may
    decide it otherwise), or the clock decided counts and the client did not keep up.
    """
    command = case.get("command") or {}
    pace = command.get("pace") or {}
    kept_up = pace.get("kept_up")
    decided = decided_by_clock(plan, ledger, pace.get("scale_1_s"))
    if isinstance(clock, VirtualClock):
        kind = "virtual"
    elif isinstance(clock, ProgressClock):
        kind = "progress"
    elif isinstance(clock, ScaledClock) and clock.time_scale != 1:
        kind = "scaled"
    else:
        kind = "real"
    ahead_s = clock.client_ahead_s if isinstance(clock, ProgressClock) else 0.0
    resolution = resolution_s(clock)
    near = closest is not None and closest.margin_s < resolution
    hung = hung_up_waiting(ledger) if kind in ("progress", "scaled") else []
    return {
        "kind": kind,
        "time_scale": None if kind == "virtual" else getattr(clock, "time_scale", 1.0),
        "scale_from": command.get("time_scale_from"),
        "left_out_s": round(clock.left_out_s, 3) if isinstance(clock, ProgressClock) else 0.0,
        "leaped_s": round(clock.leaped_s, 3) if isinstance(clock, ProgressClock) else 0.0,
        "client_ahead_s": round(ahead_s, 3),
        "timed_faults": [
            {"name": name, "fired": fired} for name, fired in timed_faults(plan, ledger).items()
        ],
        "decided_by_clock": decided,
        "kept_up": kept_up,
        "stretch": pace.get("stretch"),
        "suggested_time_scale": pace.get("suggested_time_scale"),
        "closest_call": None
        if closest is None
        else {
            "margin_s": round(closest.margin_s, 6),
            "decided_by": closest.decided_by,
            "at_s": round(closest.at_s - start_s, 3),
        },
        "resolution_s": round(resolution, 6),
        "hung_up_waiting": [{"session": n, "at_s": round(t - start_s, 3)} for n, t in hung],
        "depends_on_time": near or bool(hung) or (decided and kept_up is False),
    }


def _recipients_offered(ledger: Ledger) -> int:
    """Every recipient the client tried: each RCPT TO, and each SES API send's recipients."""
    smtp = sum(session.commands.get("RCPT", 0) for session in ledger.sessions)
    return smtp + sum(len(m.rcpt_tos) for m in ledger.messages if m.via != "smtp")
