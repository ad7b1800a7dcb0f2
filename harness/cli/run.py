"""`ses-harness run`: every strategy against every scenario, scored, ranked and reported.

With no arguments: the built-in scenarios against the built-in strategies. Exit status 1 when
any case misses an expectation (or its strategy raised, hung or died), 0 otherwise; 2 for bad
input, 130 when interrupted (Ctrl-C), after stopping every worker.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from statistics import fmean
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

NAME = "run"
HELP = "Run client strategies against fault scenarios and score delivered-exactly-once."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "targets",
        nargs="*",
        metavar="SCENARIO|DIR",
        help="scenario files or folders of them (default: the built-in scenarios)",
    )
    parser.add_argument(
        "--strategy",
        action="append",
        metavar="NAME",
        help="a built-in name, module:attr or entry point; repeat for more "
        "(default: every built-in)",
    )
    parser.add_argument(
        "--seed", type=int, help="replace every scenario's plan and workload seed with this one"
    )
    parser.add_argument(
        "-n",
        "--workers",
        type=_workers,
        default=1,
        metavar="N",
        help="worker processes (default 1)",
    )
    parser.add_argument(
        "--case-timeout",
        type=_seconds,
        metavar="SECONDS",
        help="kill a case whose strategy runs longer than this (wall time; default: the "
        "scenario's timeout_s, else 300)",
    )
    parser.add_argument(
        "--report-dir",
        type=Path,
        default=Path("reports"),
        metavar="DIR",
        help="reports go to DIR/<run id>/ (default: reports)",
    )


def main(args: argparse.Namespace) -> int:
    from harness.reports import write_reports
    from harness.runner.matrix import run_matrix
    from harness.runner.scenario import builtin_scenarios, load_scenario, scenario_paths
    from harness.runner.strategies import BUILTINS

    paths = scenario_paths(args.targets) if args.targets else builtin_scenarios()
    scenarios = [load_scenario(path) for path in paths]
    strategies = args.strategy or list(BUILTINS)
    out, err = Console(), Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]running"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=err,
        transient=True,
    )
    total = len(scenarios) * len(strategies)
    finished = 0
    try:
        with progress:
            task = progress.add_task("", total=total)

            def on_case(case: dict[str, Any]) -> None:
                nonlocal finished
                finished += 1
                mark = "[green]ok" if case["passed"] else "[red]FAIL"
                progress.update(
                    task, advance=1, description=f"{case['scenario']} x {case['strategy']} {mark}"
                )

            results = run_matrix(
                scenarios,
                strategies,
                seed=args.seed,
                workers=args.workers,
                command=command_line(args),
                on_case=on_case,
                case_timeout_s=args.case_timeout,
            )
    except KeyboardInterrupt:
        # run_matrix has killed its workers by now; a partial matrix is not a report.
        err.print(f"interrupted: {finished} of {total} cases finished, no report written")
        return 130
    out.print(ranking(results))
    failures = [c for c in results["cases"] if not c["passed"]]
    for case in failures:
        out.print(f"[red]FAIL[/] {case['scenario']} x {case['strategy']}")
        if case["error"]:
            out.print(f"  {case['error']}")
        for expectation in case["expectations"]:
            if not expectation["passed"] and expectation["actual"] is not None:
                out.print(f"  expected {expectation['expr']}, got {expectation['actual']}")
        out.print(f"  reproduce: {case['reproducer']}", highlight=False)
    run = results["run"]
    run_dir = args.report_dir / run["id"]
    written = write_reports(results, run_dir)
    out.print(
        f"{len(results['cases']) - len(failures)} passed, {len(failures)} failed "
        f"in {run['wall_s']:.1f} s ({run['virtual_s']:.0f} s of virtual time)"
    )
    out.print(f"reports in {run_dir}/: {', '.join(p.name for p in written)}", highlight=False)
    return 1 if failures else 0


def command_line(args: argparse.Namespace) -> str:
    """The command that repeats this run, for the report."""
    words = ["ses-harness", NAME, *map(str, args.targets)]
    for strategy in args.strategy or ():
        words += ["--strategy", strategy]
    if args.seed is not None:
        words += ["--seed", str(args.seed)]
    if args.workers != 1:
        words += ["-n", str(args.workers)]
    if args.case_timeout is not None:
        words += ["--case-timeout", f"{args.case_timeout:g}"]
    return shlex.join(words)


def _workers(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


_NO_SCORE = dict.fromkeys(
    (
        "delivered_once_score",
        "duplicated",
        "silently_lost",
        "given_up",
        "abandoned",
        "retried_5xx",
        "throttle_violations",
        "efficiency",
    ),
    0,
)


def ranking(results: dict[str, Any]) -> Table:
    """Strategies ranked by mean delivered-once score (to 2 decimals), then fewer duplicates,
    fewer silent losses, and higher efficiency."""
    rows = []
    for strategy in results["strategies"]:
        cases = [c for c in results["cases"] if c["strategy"] == strategy["name"]]
        # A case whose process hung or died has no score: it counts as 0 delivered.
        scores = [c["score"] or _NO_SCORE for c in cases]
        if not cases:
            continue
        rows.append(
            {
                "name": strategy["name"],
                "score": fmean(s["delivered_once_score"] for s in scores),
                "duplicated": sum(s["duplicated"] for s in scores),
                "lost": sum(s["silently_lost"] for s in scores),
                "not_delivered": sum(s["given_up"] + s["abandoned"] for s in scores),
                "retried_5xx": sum(s["retried_5xx"] for s in scores),
                "throttled": sum(s["throttle_violations"] for s in scores),
                "efficiency": fmean(s["efficiency"] for s in scores),
                "passed": sum(c["passed"] for c in cases),
                "cases": len(cases),
            }
        )
    # Scores within half a percent tie; then the mail that should never happen decides.
    rows.sort(key=lambda r: (-round(r["score"], 2), r["duplicated"], r["lost"], -r["efficiency"]))
    table = Table(
        title="Strategies, best first (score to 2 decimals, then fewest duplicates)",
        caption="score: delivered-once score, mean over scenarios; dup: duplicated; lost: "
        "silently lost; undeliv: given up or abandoned; 5xx: 5xx retried; thr: throttle "
        "violations; eff: efficiency, mean; pass: cases that met their expectations",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("strategy", no_wrap=True, min_width=18)
    for header in ("score", "dup", "lost", "undeliv", "5xx", "thr", "eff", "pass"):
        table.add_column(header, justify="right", no_wrap=True)
    for row in rows:
        colour = "green" if row["passed"] == row["cases"] else "red"
        table.add_row(
            row["name"],
            f"{row['score']:.3f}",
            str(row["duplicated"]),
            str(row["lost"]),
            str(row["not_delivered"]),
            str(row["retried_5xx"]),
            str(row["throttled"]),
            f"{row['efficiency']:.2f}",
            f"[{colour}]{row['passed']}/{row['cases']}",
        )
    return table
