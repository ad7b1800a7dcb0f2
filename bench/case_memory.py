"""Peak memory of one whole case of N messages: the runner, its fake server and its strategy.

    python bench/case_memory.py [--messages 100000] [--scenario session-cap] [--strategy robust]
                                [--tree DIR] [--json FILE]

Runs `harness.runner.matrix.run_case` on the scenario with its workload's count replaced by N
and the daily quota lifted, in a fresh process (`--tree` runs another checkout's code, for a
before and an after on the same machine), and prints that process's high-water mark (VmHWM,
from /proc: the server, the batch, the ledger and the scoring all live in it; the largest
child, for a `cmd:` strategy, is printed beside it), how long the case took, and its score.
The score is checked: every message delivered once, none lost or duplicated. Asserts nothing
about time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

# Runs in the measured process: only the standard library and the tree's harness.
CHILD = r"""
import dataclasses, json, resource, sys
from harness.runner.matrix import run_case
from harness.runner.scenario import builtin_scenario, load_scenario

name, count, strategy = sys.argv[1], int(sys.argv[2]), sys.argv[3]
path = builtin_scenario(name)
scenario = load_scenario(path if path is not None else name)
workload = dataclasses.replace(scenario.workload, count=count)
# The ses profile's daily quota (50,000) would refuse half of 100,000: lifted, so that every
# message can be delivered once and the score checked exactly.
plan = dataclasses.replace(scenario.plan, limits={**scenario.plan.limits, "daily_quota": None})
scenario = dataclasses.replace(scenario, workload=workload, plan=plan)
case = run_case(scenario, strategy)

def status(field):
    with open("/proc/self/status") as lines:
        for line in lines:
            if line.startswith(field + ":"):
                return int(line.split()[1])

keys = ("delivered_once", "duplicated", "silently_lost", "given_up", "sessions", "messages")
print(json.dumps({
    "peak_kib": status("VmHWM"),
    "end_kib": status("VmRSS"),
    "children_peak_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    "score": {k: case["score"].get(k) for k in keys},
    "error": case["error"],
}))
"""


def measure(tree: Path, scenario: str, messages: int, strategy: str) -> dict[str, Any]:
    """One case in a fresh process running `tree`'s code; its figures."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, scenario, str(messages), strategy],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"the case failed ({done.returncode}):\n{done.stderr[-2000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    score = figures["score"]
    figures.update(
        messages=messages,
        seconds=round(seconds, 1),
        peak_mib=round(figures["peak_kib"] / 1024, 1),
        exact=figures["error"] is None
        and score["delivered_once"] == messages
        and score["duplicated"] == 0
        and score["silently_lost"] == 0,
    )
    return figures


def report(figures: dict[str, Any], label: str) -> None:
    score = figures["score"]
    print(
        f"{label}: {figures['messages']:,} messages in {figures['seconds']:.0f} s, "
        f"case process peak {figures['peak_mib']:.1f} MiB (target: under 400 MiB), "
        f"at the end {figures['end_kib'] / 1024:.1f} MiB, largest child "
        f"{figures['children_peak_kib'] / 1024:.1f} MiB"
    )
    print(
        f"  delivered once {score['delivered_once']:,}, duplicated {score['duplicated']}, "
        f"silently lost {score['silently_lost']}, sessions {score['sessions']}; "
        f"score exact: {'yes' if figures['exact'] else 'NO'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--scenario", default="session-cap", help="a built-in's name or a file")
    parser.add_argument("--strategy", default="robust")
    parser.add_argument("--tree", type=Path, default=REPO, help="the checkout to run")
    parser.add_argument("--quick", action="store_true", help="2,000 messages")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if args.quick:
        args.messages = 2_000
    figures = measure(args.tree, args.scenario, args.messages, args.strategy)
    report(figures, f"{args.scenario} x {args.strategy}, tree {args.tree}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0 if figures["exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
