"""Do the built-in expectations hold for every seed? Sweep seeds and print the cases that miss.

    python bench/seed_sweep.py [--seeds 50] [--first 1] [-n 2] [--scenario NAME] [--strategy NAME]

Runs every built-in scenario (or those named) against every built-in strategy with the seeds
``first .. first+seeds-1`` in place of the files' own (``--seed`` of `ses-harness run`: the plan's
and the workload's), and checks each case twice: against the strategy's own table, and
``robust`` also against the scenario's contract (what any correct client achieves). Prints one
line per case that misses, then a table of misses per scenario and strategy. Exit status 1 when
any case missed, 0 otherwise. `--quick`: 3 seeds of two scenarios, for the smoke test.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

from harness.runner.matrix import run_matrix
from harness.runner.scenario import Scenario, builtin_scenarios, load_scenario
from harness.runner.strategies import BUILTINS

#: The strategy that must meet every contract: it is the harness's answer to "what is right".
REFERENCE = "robust"


def misses(case: dict, scenario: Scenario) -> list[str]:
    """What this case missed: its own expectations, and the contract for the reference."""
    found = [f"{e['expr']} (got {e['actual']})" for e in case["expectations"] if not e["passed"]]
    if case["error"]:
        found.append(f"error: {case['error']}")
    if case["strategy"] == REFERENCE and case["held_to"] == "own" and case["score"]:
        found += [
            f"contract: {e.expr} (got {case['score'][e.metric]})"
            for e in scenario.contract
            if not e.check(case["score"][e.metric])
        ]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50, help="how many seeds (default 50)")
    parser.add_argument("--first", type=int, default=1, help="the first seed (default 1)")
    parser.add_argument("-n", "--workers", type=int, default=2)
    parser.add_argument("--scenario", action="append", help="only these (built-in names)")
    parser.add_argument("--strategy", action="append", help="only these (built-in names)")
    parser.add_argument("--quick", action="store_true", help="3 seeds, 2 scenarios")
    parser.add_argument("--json", type=Path, help="write every miss here")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.scenario = 3, args.scenario or ["random-4xx", "unverified-554"]
    scenarios = [load_scenario(p) for p in builtin_scenarios()]
    if args.scenario:
        scenarios = [s for s in scenarios if s.name in args.scenario]
    by_name = {s.name: s for s in scenarios}
    strategies = args.strategy or list(BUILTINS)
    seeds = range(args.first, args.first + args.seeds)
    found: list[dict] = []
    cases = 0
    began = time.perf_counter()
    for seed in seeds:
        results = run_matrix(scenarios, strategies, seed=seed, workers=args.workers)
        for case in results["cases"]:
            cases += 1
            missed = misses(case, by_name[case["scenario"]])
            if missed:
                found.append(
                    {
                        "scenario": case["scenario"],
                        "strategy": case["strategy"],
                        "seed": seed,
                        "missed": missed,
                    }
                )
                print(
                    f"seed {seed:>3} {case['scenario']} x {case['strategy']}: " + "; ".join(missed),
                    flush=True,
                )
    wall_s = time.perf_counter() - began
    print(
        f"\n{len(seeds)} seeds x {len(scenarios)} scenarios x {len(strategies)} strategies = "
        f"{cases} cases in {wall_s:.0f} s; {len(found)} missed"
    )
    table = collections.Counter((m["scenario"], m["strategy"]) for m in found)
    for (scenario, strategy), count in sorted(table.items()):
        print(f"  {scenario:<20} {strategy:<20} {count:>3} of {len(seeds)} seeds")
    if args.json:
        args.json.write_text(json.dumps({"cases": cases, "misses": found}, indent=1))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
