"""Does the time scale change the verdict? The conformance table at two scales, side by side.

    python bench/time_scale.py [--scales 1,20] [--client NAME ...] [--scenario NAME ...]
                               [--count N] [-n N] [--json FILE]

Runs every client in ``clients/`` (or the named ones) on every conformance scenario (or the
named ones) at each scale, `-n` cases at a time (default: as `ses-harness conformance` does),
one scale after the other, and prints each scale's wall time, the counts
side by side, and which differ. A scenario counts as *timed* in a row when a time-based limit
(the send rate, the idle timeout) or a timed fault fired in either run: there the counts may
move within what the scale's stretch allows (``harness/runner/pace.py``); everywhere else they
must agree exactly. Also prints what the pace check measured at the fastest scale: the scale
each client would keep up at, the lowest of which is where ``DEFAULT_TIME_SCALE`` comes from.
Run from the repository root. Asserts nothing about time; the wall times are one run's, on a
machine that may be shared.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

from harness.runner.command import DEFAULT_TIME_SCALE
from harness.runner.conformance import (
    CLIENTS,
    DEFAULT_SCENARIOS,
    TIMED_FAULTS,
    check_clients,
    default_workers,
    runnable,
)
from harness.runner.scenario import load_scenario, scenario_paths
from harness.runner.workers import Lost, Task, supervise

COUNTS = ("delivered_once", "lost", "duplicated", "misreported")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default=f"1,{DEFAULT_TIME_SCALE:g}")
    parser.add_argument("--client", action="append", help="a client's name from the table")
    parser.add_argument("--scenario", action="append", help="a scenario name or file")
    parser.add_argument("--count", type=int, help="cut every workload to this many messages")
    parser.add_argument("--clients-dir", type=Path, default=Path("clients"))
    parser.add_argument("-n", "--workers", type=int, default=default_workers())
    parser.add_argument("--json", type=Path, help="write every row here")
    args = parser.parse_args(argv)
    scales = [float(k) for k in args.scales.split(",")]
    clients = [c for c in CLIENTS if not args.client or c.name in args.client]
    clients_dir = args.clients_dir.resolve()
    if args.client:
        check_clients(clients, clients_dir)
    else:  # every client this machine can run
        clients, left_out = runnable(clients, clients_dir)
        for _, reason in left_out:
            print(f"left out: {reason}", file=sys.stderr)
    scenarios = [load_scenario(p) for p in scenario_paths(args.scenario or list(DEFAULT_SCENARIOS))]
    if args.count:
        scenarios = [
            dataclasses.replace(s, workload=dataclasses.replace(s.workload, count=args.count))
            for s in scenarios
        ]
    rows: dict[tuple[str, str], dict[float, dict]] = {}
    walls_s = {}
    jobs = [(client, scenario) for client in clients for scenario in scenarios]
    for k in scales:
        started = time.perf_counter()
        tasks = [
            Task(i, (scenario, client.spec(clients_dir, k), None), 600.0, scenario.name)
            for i, (client, scenario) in enumerate(jobs)
        ]
        with contextlib.closing(
            supervise("harness.runner.matrix:run_case", tasks, args.workers)
        ) as done:
            for index, case in done:
                client, scenario = jobs[index]
                if isinstance(case, Lost):
                    raise SystemExit(f"{client.name} / {scenario.name} at x{k:g}: {case.reason}")
                rows.setdefault((client.name, scenario.name), {})[k] = summary(case)
                print(f"  x{k:g} {client.name} / {scenario.name}: done", file=sys.stderr)
        walls_s[k] = time.perf_counter() - started
    rows = {job: rows[job] for job in ((c.name, s.name) for c, s in jobs)}  # table order
    report(rows, scales, walls_s, args.workers)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "walls_s": {f"{k:g}": w for k, w in walls_s.items()},
                    "rows": [
                        {"client": c, "scenario": s, **{f"{k:g}": r[k] for k in scales}}
                        for (c, s), r in rows.items()
                    ],
                },
                indent=1,
            )
        )
    return 0


def summary(case: dict) -> dict:
    """The counts the table shows, whether a clock-dependent limit fired, and the pace."""
    s = case["score"] or {}
    command = case.get("command") or {}
    return {
        "delivered_once": s.get("delivered_once"),
        "lost": sum(s.get(k, 0) for k in ("given_up", "abandoned", "silently_lost")),
        "duplicated": s.get("duplicated"),
        "misreported": s.get("misreported"),
        "timed": any(f["name"] in TIMED_FAULTS for f in case["timeline"]["faults"]),
        "time_scale": command.get("time_scale"),
        "pace": command.get("pace"),
        "error": case["error"],
    }


def report(rows: dict, scales: list[float], walls_s: dict[float, float], workers: int) -> None:
    low, high = scales[0], scales[-1]
    for k in scales:
        print(f"scale {k:g}: {walls_s[k]:.1f} s wall for {len(rows)} cases, {workers} at a time")
    if len(scales) > 1:
        print(f"wall time scale {low:g} / scale {high:g}: {walls_s[low] / walls_s[high]:.1f}x")
    head = " | ".join(f"x{k:g} {'/'.join(c[:5] for c in COUNTS)}" for k in scales)
    print(f"\n| client | scenario | {head} | timed | agree | stretch at x{high:g} |")
    print("|---|---|" + "---|" * len(scales) + "---|---|---|")
    differ = []
    for (client, scenario), by_scale in rows.items():
        cells = [" / ".join(str(by_scale[k][c]) for c in COUNTS) for k in scales]
        timed = any(by_scale[k]["timed"] for k in scales)
        agree = all(
            [by_scale[k][c] for c in COUNTS] == [by_scale[low][c] for c in COUNTS] for k in scales
        )
        if not agree:
            differ.append((client, scenario, timed))
        pace = by_scale[high]["pace"] or {}
        stretch = f"{pace.get('stretch', 0):.0%}" if pace else "-"
        print(
            f"| {client} | {scenario} | {' | '.join(cells)} | {'yes' if timed else 'no'} "
            f"| {'yes' if agree else '**no**'} | {stretch} |"
        )
    untimed_differ = [d for d in differ if not d[2]]
    print(
        f"\n{len(rows) - len(differ)} of {len(rows)} rows agree exactly; "
        f"{len(untimed_differ)} untimed rows differ"
        + (": " + ", ".join(f"{c} / {s}" for c, s, _ in untimed_differ) if untimed_differ else "")
    )
    paces = [r[high]["pace"] for r in rows.values() if r[high]["pace"]]
    if paces and high != 1:
        suggested = [p["suggested_time_scale"] for p in paces]
        print(
            f"pace at x{high:g}: {sum(p['kept_up'] for p in paces)} of {len(paces)} cases kept "
            f"up; stretch median {statistics.median(p['stretch'] for p in paces):.0%}, max "
            f"{max(p['stretch'] for p in paces):.0%}; suggested scales: lowest "
            f"{min(suggested)}, median {statistics.median(suggested):g}"
        )


if __name__ == "__main__":
    sys.exit(main())
