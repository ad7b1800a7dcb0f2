"""Does a real client's verdict depend on how busy the machine is? Quiet against two busy loops.

    python bench/load_verdicts.py [--runs N] [--scenario NAME ...] [--client NAME ...]
                                  [--conditions quiet,busy] [--time-scale K] [--json FILE]

Runs the same clients, as ``ses-harness conformance`` runs them (a plain smtplib loop and
nodemailer by default), on session-cap, throttling, idle-timeout and greylisting (or the
named scenarios), `--runs` times on the machine as it is (*quiet*) and `--runs` times while
two busy-loop processes keep both cores busy (*busy*; this script starts them, and they stop
by themselves after `--busy-limit-s` in any case). One case at a time, so that the load is
what the condition says. Each scenario plays at its own scale for command clients (its
``command_time_scale``, else the default) unless `--time-scale` is given.

Prints, per scenario, client and condition, the counts of every class a message can end in,
marking with ``*`` each count that is not the same in every run of both conditions, in how
many runs the case said its counts depend on time (``case["clock"]``), and the
wall seconds (median, and the slowest). Then the verdict: identical everywhere, or the rows
that differ and whether their case said its counts depend on time (``case["clock"]``).
Run from the repository root; keep to one run at a time on a shared machine (the quiet
figures are only as quiet as the machine). Exit status 1 when a count differs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from harness.runner.conformance import CLIENTS, check_clients
from harness.runner.matrix import run_case
from harness.runner.scenario import load_scenario, scenario_paths

SCENARIOS = ("session-cap", "throttling", "idle-timeout", "greylisting")
DEFAULT_CLIENTS = ("smtplib", "nodemailer")
#: The counts compared, in the report's words: every class a message can end in.
COUNTS = (
    ("delivered_once", "once"),
    ("uncertain", "uncertain"),
    ("misreported", "misrep."),
    ("silently_lost", "silently lost"),
    ("given_up", "given up"),
    ("abandoned", "never sent"),
    ("duplicated", "dup."),
    ("rejected_reported", "rejected"),
)
BUSY_LOOP = """import sys, time
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    pass
"""


@contextlib.contextmanager
def busy_cores(count: int, limit_s: float) -> Iterator[list[int]]:
    """`count` busy-loop processes, each ending by itself after `limit_s`; stopped on exit."""
    loops = [
        subprocess.Popen([sys.executable, "-c", BUSY_LOOP, str(limit_s)]) for _ in range(count)
    ]
    try:
        time.sleep(0.2)  # let them take their cores
        yield [p.pid for p in loops]
    finally:
        for loop in loops:
            loop.terminate()
        for loop in loops:
            try:
                loop.wait(timeout=5)
            except subprocess.TimeoutExpired:
                loop.kill()
                loop.wait()


def run_one(scenario_path: Path, spec: str) -> dict:
    scenario = load_scenario(scenario_path)
    started = time.perf_counter()
    case = run_case(scenario, spec)
    wall_s = time.perf_counter() - started
    score = case["score"] or {}
    clock = case.get("clock") or {}
    return {
        "counts": {key: score.get(key) for key, _ in COUNTS},
        "wall_s": round(wall_s, 2),
        "error": case["error"],
        "depends_on_time": clock.get("depends_on_time"),
        "decided_by_clock": clock.get("decided_by_clock"),
        "closest_call": clock.get("closest_call"),
        "hung_up_waiting": len(clock.get("hung_up_waiting") or []),
        "time_scale": clock.get("time_scale"),
        "left_out_s": clock.get("left_out_s"),
        "stretch": clock.get("stretch"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scenario", action="append", help="a scenario name or file")
    parser.add_argument("--client", action="append", help="a client's name from the table")
    parser.add_argument("--conditions", default="quiet,busy")
    parser.add_argument("--time-scale", type=float, help="every case at this scale")
    parser.add_argument("--busy-limit-s", type=float, default=1800.0)
    parser.add_argument("--clients-dir", type=Path, default=Path("clients"))
    parser.add_argument("--json", type=Path, help="write every run here")
    args = parser.parse_args(argv)
    names = args.client or list(DEFAULT_CLIENTS)
    clients = [c for c in CLIENTS if c.name in names]
    if len(clients) != len(names):
        parser.error(f"unknown client in {names}; known: {[c.name for c in CLIENTS]}")
    clients_dir = args.clients_dir.resolve()
    check_clients(clients, clients_dir)
    paths = scenario_paths(args.scenario or list(SCENARIOS))
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    if not set(conditions) <= {"quiet", "busy"}:
        parser.error("--conditions takes quiet and/or busy")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2
    runs: dict[tuple[str, str, str], list[dict]] = {}
    for number in range(1, args.runs + 1):
        for condition in conditions:  # alternated, so that drifting background load hits both
            busy = busy_cores(cores, args.busy_limit_s) if condition == "busy" else None
            with busy or contextlib.nullcontext():
                for path in paths:
                    for client in clients:
                        spec = client.spec(clients_dir, args.time_scale)
                        result = run_one(path, spec)
                        runs.setdefault((path.stem, client.name, condition), []).append(result)
                        print(
                            f"  run {number} {condition:5} {path.stem} / {client.name}: "
                            f"{result['wall_s']} s",
                            file=sys.stderr,
                        )
    differs = report(runs, conditions, [p.stem for p in paths], [c.name for c in clients])
    if args.json:
        rows = [
            {"scenario": s, "client": c, "condition": k, "runs": r} for (s, c, k), r in runs.items()
        ]
        args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 1 if differs else 0


def report(
    runs: dict[tuple[str, str, str], list[dict]],
    conditions: list[str],
    scenarios: list[str],
    clients: list[str],
) -> list[str]:
    """Print the table; the rows whose counts differ between runs or conditions."""
    header = [
        "scenario",
        "client",
        "condition",
        *(label for _, label in COUNTS),
        "said: depends on time",
        "wall s",
    ]
    lines = [header]
    differs = []
    for scenario in scenarios:
        for client in clients:
            every = [r for k in conditions for r in runs.get((scenario, client, k), [])]
            varies = {key for key, _ in COUNTS if len({r["counts"][key] for r in every}) > 1}
            if varies or any(r["error"] for r in every):
                differs.append(f"{scenario} / {client}")
            for condition in conditions:
                mine = runs.get((scenario, client, condition), [])
                if not mine:
                    continue
                cells = []
                for key, _ in COUNTS:
                    seen = sorted({r["counts"][key] for r in mine}, key=lambda v: (v is None, v))
                    text = "/".join("-" if v is None else str(v) for v in seen)
                    cells.append(text + ("*" if key in varies else ""))
                walls = [r["wall_s"] for r in mine]
                wall = f"{statistics.median(walls):.1f} (max {max(walls):.1f})"
                said = f"{sum(bool(r['depends_on_time']) for r in mine)}/{len(mine)}"
                lines.append([scenario, client, condition, *cells, said, wall])
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(header))]
    for row in lines:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
    print()
    print("* differs between runs or conditions; a/b: the values seen")
    for (scenario, client, condition), mine in sorted(runs.items()):
        for r in mine:
            if r["error"]:
                print(f"error: {scenario} / {client} / {condition}: {r['error'][:200]}")
    flagged = {
        f"{s} / {c}" for (s, c, _), mine in runs.items() for r in mine if r["depends_on_time"]
    }
    if not differs:
        print(f"identical: every count the same in every run of {', '.join(conditions)}")
    for row in differs:
        said = "the case said its counts depend on time" if row in flagged else "not flagged"
        print(f"DIFFERS: {row} ({said})")
    return differs


if __name__ == "__main__":
    sys.exit(main())
