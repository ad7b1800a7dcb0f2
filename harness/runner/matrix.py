"""Run strategies against scenarios: one case per pair, each on its own fake server and clock.

:func:`run_case` is one strategy on one scenario; :func:`run_matrix` is every pair, optionally
in worker processes, assembled into the results dict that the reports read (schema version 1,
see ``results.json``). Same scenarios, strategies and seed: the same dict, wall times aside.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import gc
import importlib.metadata
import secrets
import shlex
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness.base.ledger import Ledger, MessageRecord
from harness.base.sesevents import FeedFaults
from harness.runner.resolve import name_of, resolve_strategy
from harness.runner.scale import clock_record
from harness.runner.scenario import Scenario, builtin_scenario
from harness.runner.scoring import score_case
from harness.runner.strategy import Claim, Strategy, hooks_of
from harness.runner.stream import StreamedBatch
from harness.runner.workers import Lost, Task, on_own_core, supervise
from harness.runner.workload import Workload, WorkloadSpec
from harness.server.fake_ses import FakeSES
from harness.server.relay.proxy import SesProxy

SCHEMA = "ses-fault-harness/results"
VERSION = 1
#: How long a finished case waits for the client's connections to close (wall seconds).
SETTLE_S = 2.0
#: Scoring reads whole transcripts; the server's default keeps only the ends of long sessions.
TRANSCRIPT_LIMIT_LINES = 500_000
#: Wall seconds a case may take before its worker is killed, unless the scenario or caller says.
DEFAULT_CASE_TIMEOUT_S = 300.0
#: The entries of a case the harness writes; a strategy's `case_record` adds only others.
_HARNESS_KEYS = frozenset(
    {
        "scenario",
        "strategy",
        "seed",
        "passed",
        "held_to",
        "expectations",
        "score",
        "messages",
        "matching",
        "timeline",
        "error",
        "reproducer",
        "clock",
    }
)
#: Messages from which a case collects its stopped server's cycles before scoring.
LARGE_CASE = 10_000


def run_case(
    scenario: Scenario,
    strategy: str | Strategy,
    seed: int | None = None,
    *,
    ledger: Ledger | None = None,
    started: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Run `strategy` (a built-in name, ``module:attr``, ``cmd:...``, an entry point, or the
    callable itself) on `scenario`.

    `seed` replaces both the plan's and the workload's seed. A strategy that raises does not
    stop the run: the case reports it in ``error`` and fails. Pass a fresh `ledger` to read the
    server's whole record of the case afterwards (`ses-harness hunt` tells its story from it).
    `started` is called just before the strategy is (a worker starts its timeout there).
    """
    wall_start = time.perf_counter()
    if isinstance(strategy, str):
        name, send_batch = resolve_strategy(strategy)
    else:
        name, send_batch = name_of(strategy), strategy
    seed = scenario.seed if seed is None else seed
    plan = scenario.plan if seed is None else dataclasses.replace(scenario.plan, seed=seed)
    messages = _messages(scenario.workload, seed)
    latency_s = scenario.latency_s
    # Every strategy takes this one path; what differs (a client in another process, say) the
    # strategy's own hooks say: see harness.runner.strategy.CaseHooks.
    hooks = hooks_of(send_batch)
    hooks.for_scenario(scenario.command_time_scale)
    clock = hooks.clock(latency_s)
    arrivals_s = hooks.arrivals_s(scenario.workload.arrivals_s())
    claims: list[Claim] = []
    error = None
    if ledger is None:
        # Scoring reads records and transcripts, never bodies: none is held (32 MiB otherwise).
        # Header fields stay: SES events (harness.base.sesevents) are written from them.
        ledger = Ledger(transcript_limit_lines=TRANSCRIPT_LIMIT_LINES, memory_budget_bytes=0)
    pinned = on_own_core() if hooks.pinned else contextlib.nullcontext()
    upstream = scenario.upstream
    if upstream is None:
        feed = _feed(scenario, plan.seed)
        server = FakeSES(plan=plan, clock=clock, ledger=ledger, events_feed=feed)
        around = contextlib.nullcontext()
    else:  # through the proxy to a real server, copies counted where it lets us read them
        server = SesProxy(plan=plan, clock=clock, ledger=ledger, **upstream.proxy_options())
        around = upstream.case()
    with pinned, around, server as ses:
        hooks.watch(ledger)
        start = clock.now()
        workload = Workload(messages, arrivals_s, clock)
        if started is not None:
            started()
        try:
            for claim in send_batch(workload, ses.endpoint, clock):
                if not isinstance(claim, Claim):
                    raise TypeError(f"yielded {claim!r}, not a harness.runner.strategy.Claim")
                claims.append(claim)
        except (Exception, SystemExit) as raised:  # the user's code, reported rather than fatal
            error = f"strategy raised {type(raised).__name__}: {raised}"
        start = hooks.start_s(start)
        elapsed_s = clock.now() - start
        _settle(ledger)
        closest = ses.closest_call
        copies = upstream.copies_of(ledger.messages) if upstream is not None else []
    # The stopped server's engine holds every message's attempt counts: let it go before
    # scoring, the case's peak (the ledger is kept: it is read from here on). It is in
    # reference cycles; a large case collects them now (about 9 MiB at 100,000 messages), a
    # small one leaves them to the collector rather than pay a full collection a case.
    del server, ses, workload
    messages.let_go()  # its last chunks' bytes (about 11 MiB): scoring reads envelopes
    if len(messages) >= LARGE_CASE:
        gc.collect()
    claims_from = "client"
    if not claims and error is None:
        inferred = hooks.claims_when_silent(messages, ledger)
        if inferred is not None:
            claims, claims_from = inferred, "server"
    card = score_case(
        messages,
        claims,
        sessions=ledger.sessions,
        accepted=ledger.messages if upstream is None else copies,
        faults=ledger.faults,
        limits=plan.resolved_limits(),
        latency_s=latency_s,
        elapsed_s=elapsed_s,
        arrivals_s=arrivals_s,
    )
    del claims  # in the scorecard now: a case of 100,000 messages holds one a message
    held, held_to = scenario.expectations_for(name)
    expectations = [
        {
            "expr": e.expr,
            "metric": e.metric,
            "actual": card.score[e.metric],
            "passed": e.check(card.score[e.metric]),
        }
        for e in held
    ]
    case = {
        "scenario": scenario.name,
        "strategy": name,
        "seed": plan.seed,
        "passed": error is None and all(e["passed"] for e in expectations),
        "held_to": held_to,
        "expectations": expectations,
        "score": {**card.score, "wall_s": round(time.perf_counter() - wall_start, 3)},
        "messages": None,  # below
        "matching": card.matching.to_dict(_stray),
    }
    own = {k: v for k, v in hooks.case_record(claims_from).items() if k not in _HARNESS_KEYS}
    timeline = _timeline(ledger, start)
    clock_entry = clock_record(plan, clock, ledger, own, closest, start)  # reads own's pace
    # What follows reads no transcript: a ledger the case made goes now (its records stay
    # while the scorecard holds them), so a large case's results are written beside the
    # records, not beside their conversations too.
    del ledger
    # Each verdict let go as its dict is made: a case of 100,000 messages holds one of each.
    verdicts = list(card.messages)
    del card
    verdicts.reverse()
    case["messages"] = [verdicts.pop().to_dict() for _ in range(len(verdicts))]
    case |= {"timeline": timeline, "error": error, "reproducer": reproducer(scenario, name, seed)}
    case.update(own)
    case["clock"] = clock_entry
    return case


def _feed(scenario: Scenario, seed: int) -> FeedFaults | bool:
    """The events the case's client may read: the scenario's, seeded by the case."""
    return dataclasses.replace(scenario.events, seed=seed) if scenario.events else False


def run_matrix(
    scenarios: Sequence[Scenario],
    strategies: Sequence[str],
    *,
    seed: int | None = None,
    workers: int = 1,
    command: str = "ses-harness run",
    on_case: Callable[[dict[str, Any]], None] | None = None,
    case_timeout_s: float | None = None,
) -> dict[str, Any]:
    """Every strategy on every scenario; the whole results dict, cases in a fixed order.

    Cases run in `workers` fresh ("spawn") worker processes (one at least), so a script that
    calls this needs the usual ``if __name__ == "__main__":`` guard. A case whose strategy hangs
    is killed after `case_timeout_s` wall seconds (default: the scenario's ``timeout_s``, else
    300), one whose process dies is reported as such, and the other cases run on. `on_case`
    hears of each finished case (in the order they finish), for progress displays.
    """
    started = datetime.datetime.now(datetime.UTC)
    wall_start = time.perf_counter()
    names = [resolve_strategy(spec)[0] for spec in strategies]  # bad names fail before any run
    jobs = [
        (scenario, spec, name)
        for scenario in scenarios
        for spec, name in zip(strategies, names, strict=True)
    ]
    tasks = [
        Task(
            index,
            (scenario, spec, seed),
            case_timeout(scenario, case_timeout_s),
            group=scenario.name,
        )
        for index, (scenario, spec, _) in enumerate(jobs)
    ]
    cases: list[dict[str, Any] | None] = [None] * len(jobs)
    with contextlib.closing(
        supervise("harness.runner.matrix:run_case", tasks, workers)
    ) as outcomes:
        for index, outcome in outcomes:
            if isinstance(outcome, Lost):
                scenario, _, name = jobs[index]
                outcome = lost_case(scenario, name, seed, outcome.reason)
            cases[index] = outcome
            if on_case:
                on_case(outcome)
    finished = [c for c in cases if c is not None]
    return {
        "schema": SCHEMA,
        "version": VERSION,
        "run": {
            "id": f"{started:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}",
            "started_at": f"{started:%Y-%m-%dT%H:%M:%SZ}",
            "wall_s": round(time.perf_counter() - wall_start, 3),
            "seed": seed,
            "harness_version": _version(),
            "command": command,
            "workers": max(1, workers),
            "virtual_s": round(
                sum(c["score"]["virtual_elapsed_s"] for c in finished if c["score"] is not None), 6
            ),
        },
        "scenarios": [
            {
                "name": s.name,
                "file": display_path(s.path),
                "description": s.description,
                "best_possible": s.best_possible,
                "contract": [e.expr for e in s.contract],
                "messages": s.workload.count,
            }
            for s in scenarios
        ],
        "strategies": [
            {"name": name, "description": describe_strategy(spec)}
            for name, spec in zip(names, strategies, strict=True)
        ],
        "cases": finished,
    }


def lost_case(scenario: Scenario, name: str, seed: int | None, error: str) -> dict[str, Any]:
    """The case of a strategy whose process hung or died: no score, every expectation failed."""
    held, held_to = scenario.expectations_for(name)
    seed = scenario.seed if seed is None else seed
    return {
        "scenario": scenario.name,
        "strategy": name,
        "seed": scenario.plan.seed if seed is None else seed,
        "passed": False,
        "held_to": held_to,
        "expectations": [
            {"expr": e.expr, "metric": e.metric, "actual": None, "passed": False} for e in held
        ],
        "score": None,
        "messages": [],
        "timeline": {"sessions": [], "deliveries": [], "faults": []},
        "error": error,
        "reproducer": reproducer(scenario, name, seed),
    }


def case_timeout(scenario: Scenario, override_s: float | None = None) -> float:
    """Wall seconds a case of `scenario` may take: `override_s`, the file's, or the default."""
    if override_s is not None:
        return override_s
    return scenario.timeout_s if scenario.timeout_s is not None else DEFAULT_CASE_TIMEOUT_S


def _stray(record: MessageRecord) -> dict[str, Any]:
    """A copy that matched no message, as results.json lists it."""
    return {
        "ses_id": record.ses_id,
        "session": record.session,
        "message_id": record.message_id,
        "mail_from": record.mail_from,
        "rcpt_tos": list(record.rcpt_tos),
    }


def reproducer(scenario: Scenario, name: str, seed: int | None) -> str:
    """The command line that runs this one case again, from any folder for a built-in."""
    builtin = builtin_scenario(scenario.path.stem)
    where = (
        scenario.path.stem
        if builtin is not None and builtin.resolve() == scenario.path.resolve()
        else display_path(scenario.path)
    )
    line = f"ses-harness run {shlex.quote(where)} --strategy {shlex.quote(name)}"
    if scenario.profile_file is not None:
        line += f" --profile-file {shlex.quote(scenario.profile_file)}"
    return line if seed is None else f"{line} --seed {seed}"


def describe_strategy(spec: str) -> str:
    """A built-in's description, or the first line of a user strategy's docstring."""
    from harness.runner.strategies import BUILTINS

    if spec in BUILTINS:
        return BUILTINS[spec].description
    doc = (resolve_strategy(spec)[1].__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def display_path(path: Path) -> str:
    """`path` relative to the working directory when it is inside it, else absolute."""
    absolute = path.resolve()
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


@functools.lru_cache(maxsize=4)
def _messages(spec: WorkloadSpec, seed: int | None) -> StreamedBatch:
    # Every strategy of a scenario gets the same batch; writing it is the slow part of a case.
    # It holds the envelopes and a chunk or two of bytes, never the whole batch (issue 28).
    return StreamedBatch(spec, seed)


def _settle(ledger: Ledger) -> None:
    """Let the server see the client's last QUIT or close, so every session has its end."""
    # A strategy that left a connection open times out here; the server's stop records it.
    with contextlib.suppress(TimeoutError):
        ledger.wait_for(lambda lg: all(not s.open for s in lg.sessions), timeout_s=SETTLE_S)


def _timeline(ledger: Ledger, start: float) -> dict[str, list[dict[str, Any]]]:
    def at(t: float | None) -> float | None:
        return None if t is None else round(t - start, 6)

    return {
        "sessions": [
            {
                "number": s.number,
                "opened_at": at(s.opened_at),
                "closed_at": at(s.closed_at),
                "closed_by": s.closed_by,
                "close_reason": s.close_reason,
            }
            for s in ledger.sessions
        ],
        "deliveries": [
            {
                "at": at(m.at),
                "session": m.session,
                "id": m.message_id,
                "acknowledged": m.acknowledged,
            }
            for m in ledger.messages
        ],
        "faults": [
            {
                "at": at(f.at),
                "session": f.session,
                "stage": f.stage,
                "source": f.source,
                "name": f.name,
                "action": f.action,
                "reply": f.reply,
            }
            for f in ledger.faults
        ],
    }


def _version() -> str:
    try:
        return importlib.metadata.version("ses-fault-harness")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
