"""Wall time of the default scenario matrix against the virtual time it simulates.

    python bench/matrix_speed.py [-n 2] [--repeats 3] [--smtp-only] [--compare-pinning] [--quick]

Runs `harness.run_matrix` over the built-in scenarios and strategies (what `ses-harness run`
runs with no arguments), `--repeats` times, and prints the wall time, the simulated SES sending
time (the sum of every case's virtual elapsed time) and their ratio. `--compare-pinning` also
runs the matrix with the workers' threads left to the scheduler (SES_HARNESS_PIN=0), the two
alternating, and prints the ratio of their medians. `--quick` runs one scenario with two
strategies in one process. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

from harness.runner.matrix import run_matrix
from harness.runner.scenario import builtin_scenarios, load_scenario
from harness.runner.strategies import BUILTINS
from harness.runner.workers import PIN_ENV


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--compare-pinning", action="store_true", help="also measure without core pinning"
    )
    parser.add_argument(
        "--smtp-only", action="store_true", help="the 9 SMTP scenarios x 8 SMTP strategies"
    )
    parser.add_argument("--quick", action="store_true", help="one scenario, two strategies")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    scenarios = [load_scenario(path) for path in builtin_scenarios()]
    strategies = list(BUILTINS)
    if args.smtp_only:
        scenarios = [s for s in scenarios if not s.name.startswith("api-")]
        strategies = [name for name in strategies if not name.startswith("sdk-")]
    if args.quick:
        scenarios = sorted(scenarios, key=lambda s: s.workload.count)[:1]
        strategies = strategies[:2]
        args.workers, args.repeats = 1, 1
    modes = ["pinned", "unpinned"] if args.compare_pinning else ["default"]
    runs: dict[str, list[tuple[float, float]]] = {mode: [] for mode in modes}
    commands = sessions = 0
    for _ in range(args.repeats):
        for mode in modes:
            if mode == "unpinned":
                os.environ[PIN_ENV] = "0"
            else:
                os.environ.pop(PIN_ENV, None)
            results = run_matrix(scenarios, strategies, workers=args.workers)
            run = results["run"]
            runs[mode].append((run["wall_s"], run["virtual_s"]))
            commands = sum(c["score"]["commands"] for c in results["cases"])
            sessions = sum(c["score"]["sessions"] for c in results["cases"])
            print(
                f"  {mode}: {len(scenarios)} scenarios x {len(strategies)} strategies, "
                f"{args.workers} workers: {run['wall_s']:.1f} s wall, "
                f"{run['virtual_s'] / 3600:.2f} h simulated",
                file=sys.stderr,
            )
    os.environ.pop(PIN_ENV, None)
    figures: dict[str, object] = {"commands": commands, "sessions": sessions}
    for mode in modes:
        wall = statistics.median(w for w, _ in runs[mode])
        virtual = statistics.median(v for _, v in runs[mode])
        ratio = statistics.median(v / w for w, v in runs[mode])
        print(
            f"default matrix, {mode} ({len(scenarios)} scenarios x {len(strategies)} "
            f"strategies, -n {args.workers}, median of {args.repeats}): {wall:.1f} s wall for "
            f"{virtual / 3600:.2f} h of simulated SES sending; simulated / wall: {ratio:.0f}x, "
            f"{ratio * 60 / 3600:.1f} simulated hours per wall minute (target: 10 h in under "
            f"a minute, 600x); {commands / wall:,.0f} SMTP commands per wall second"
        )
        figures[mode] = {"wall_s": wall, "virtual_s": virtual, "ratio": ratio, "runs": runs[mode]}
    if args.compare_pinning:
        pinned = statistics.median(w for w, _ in runs["pinned"])
        unpinned = statistics.median(w for w, _ in runs["unpinned"])
        print(f"wall time unpinned / pinned: {unpinned / pinned:.2f}x")
    print(f"work: {commands:,} SMTP commands in {sessions:,} sessions")
    # Simulated time is what the scenarios wait for, not work: a scenario that waits out long
    # virtual delays (greylisting's 5-minute retries) lifts the ratio without any speed. The
    # share of each scenario says how much of the figure is such waiting.
    by_scenario: dict[str, float] = {}
    for case in results["cases"]:
        if case["score"] is not None:
            virtual = case["score"]["virtual_elapsed_s"]
            by_scenario[case["scenario"]] = by_scenario.get(case["scenario"], 0.0) + virtual
    total = sum(by_scenario.values()) or 1.0
    shares = sorted(by_scenario.items(), key=lambda item: -item[1])
    print(
        "simulated time by scenario: "
        + ", ".join(f"{name} {seconds / total:.0%}" for name, seconds in shares[:4])
    )
    figures["simulated_s_by_scenario"] = by_scenario
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
