"""Wall time of the default scenario matrix against the virtual time it simulates.

    python bench/matrix_speed.py [-n 2] [--repeats 3] [--quick]

Runs `harness.run_matrix` over the built-in scenarios and strategies (what `ses-harness run`
runs with no arguments), `--repeats` times, and prints the wall time, the simulated SES sending
time (the sum of every case's virtual elapsed time) and their ratio. `--quick` runs one scenario
with two strategies in one process. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from harness.matrix import run_matrix
from harness.scenario import builtin_scenarios, load_scenario
from harness.strategies import BUILTINS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one scenario, two strategies")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    scenarios = [load_scenario(path) for path in builtin_scenarios()]
    strategies = list(BUILTINS)
    if args.quick:
        scenarios = sorted(scenarios, key=lambda s: s.workload.count)[:1]
        strategies = strategies[:2]
        args.workers, args.repeats = 1, 1
    runs = []
    for _ in range(args.repeats):
        results = run_matrix(scenarios, strategies, workers=args.workers)
        run = results["run"]
        runs.append((run["wall_s"], run["virtual_s"]))
        commands = sum(c["score"]["commands"] for c in results["cases"])
        sessions = sum(c["score"]["sessions"] for c in results["cases"])
        print(
            f"  {len(scenarios)} scenarios x {len(strategies)} strategies, {args.workers} workers: "
            f"{run['wall_s']:.1f} s wall, {run['virtual_s'] / 3600:.2f} h simulated, "
            f"{commands:,} SMTP commands in {sessions:,} sessions",
            file=sys.stderr,
        )
    wall = statistics.median(w for w, _ in runs)
    virtual = statistics.median(v for _, v in runs)
    ratio = statistics.median(v / w for w, v in runs)
    print(
        f"default matrix ({len(scenarios)} scenarios x {len(strategies)} strategies, "
        f"-n {args.workers}, median of {args.repeats}): {wall:.1f} s wall for "
        f"{virtual / 3600:.2f} h of simulated SES sending"
    )
    print(
        f"simulated / wall: {ratio:.0f}x, {ratio * 60 / 3600:.1f} simulated hours per wall "
        f"minute (target: 10 h in under a minute, 600x)"
    )
    print(
        f"work: {commands:,} SMTP commands in {sessions:,} sessions, "
        f"{commands / wall:,.0f} commands per wall second"
    )
    if args.json:
        figures = {
            "wall_s": wall,
            "virtual_s": virtual,
            "ratio": ratio,
            "commands": commands,
            "sessions": sessions,
            "runs": runs,
        }
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
