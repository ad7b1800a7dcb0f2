"""`ses-harness run`: every strategy against every scenario, scored, ranked and reported.

With no arguments: the built-in scenarios against the built-in strategies. Exit status 1 when
any case misses an expectation (or its strategy raised, hung or died), 0 otherwise; 2 for bad
input, 130 when interrupted (Ctrl-C), after stopping every worker.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from harness.cli.arguments import workers

NAME = "run"
HELP = "Run client strategies against fault scenarios and score delivered-exactly-once."
EPILOG = """\
scenarios:
  a file, a folder of *.toml files, or a built-in's name (ses-harness scenarios lists them):
    ses-harness run session-cap throttling ./my-scenarios/

strategies (--strategy, repeatable):
  robust                      a built-in: naive, naive-continue, retry-same-session,
                              reconnect, rotate, backoff, paced, robust
  mymail:send_batch           your Python callable fn(messages, endpoint, clock), yielding
                              one harness.Claim per message (imported from the current folder)
  'cmd:node send.js'          your client in any language, run as a process once per case:
                              it reads the batch from HARNESS_MANIFEST, sends to SMTP_HOST and
                              SMTP_PORT, and appends one JSON claim per message to
                              HARNESS_CLAIMS ({"id": "<Message-ID>", "status": "sent"}; or
                              "failed" with "code" and "text"; ses-harness claim writes one)
  'cmd[timeout_s=60]:python send.py'   options: timeout_s (wall seconds), time_scale (one
                              clock for server and client, k times the wall, the client
                              under libfaketime; default: measured, see
                              harness/runner/command/spec.py; 1 = real time)
  an entry point name         published under the group ses_harness.strategies

verdict:
  a strategy with a table of its own in a scenario ([expect.NAME]) is held to it; every
  other strategy (yours) is held to the scenario's [contract]: what any correct client
  achieves. Exit status 1 when any case misses, 0 when all pass, 2 on bad input.
  Defaults come from [tool.ses-harness] in ./pyproject.toml when it has one (ses-harness init).
"""


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
        "(default: every built-in, and each strategy the scenario files have a table for)",
    )
    parser.add_argument(
        "--seed", type=int, help="replace every scenario's plan and workload seed with this one"
    )
    parser.add_argument(
        "--provider",
        metavar="NAME",
        help="play a provider's scenarios (microsoft365, gmail, sendgrid...: `ses-harness "
        "scenarios` lists them), not SES's",
    )
    parser.add_argument(
        "--profile-file",
        metavar="FILE",
        help="play the scenarios against your own provider: a TOML profile (docs/providers.md)",
    )
    parser.add_argument(
        "-n",
        "--workers",
        type=workers,
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
        metavar="DIR",
        help="reports go to DIR/<run id>/ (default: ses-harness-reports, or the folder "
        "`reports` names in [tool.ses-harness])",
    )


def main(args: argparse.Namespace) -> int:
    from harness.reports import write_reports
    from harness.reports.failure import case_report
    from harness.runner.config import find_pyproject, load_suite, report_dir
    from harness.runner.matrix import run_matrix
    from harness.runner.scenario import builtin_scenarios, load_scenario, scenario_paths
    from harness.runner.strategies import BUILTINS, UNAVAILABLE

    out, err = Console(), Console(stderr=True)
    reports = args.report_dir if args.report_dir is not None else report_dir(Path("."))
    suite = None
    if not args.targets and not args.strategy and (found := find_pyproject(Path.cwd())):
        suite = load_suite(found)
    if suite is not None:
        scenarios = [
            s if seed is None else s.with_seed(seed)
            for s in suite.scenarios
            for seed in suite.seeds
        ]
        strategies = list(suite.strategies)
        err.print(suite_line(suite), markup=False, highlight=False)
    else:
        paths = scenario_paths(args.targets) if args.targets else builtin_scenarios()
        if args.provider:
            paths = provider_paths(args.provider, args.targets)
        scenarios = [load_scenario(path) for path in paths]
        if args.profile_file:
            scenarios = with_profile(scenarios, args.profile_file)
        strategies = args.strategy or default_strategies(scenarios, BUILTINS, UNAVAILABLE)
        if not args.strategy and UNAVAILABLE:
            left_out = ", ".join(UNAVAILABLE)
            err.print(
                f"left out: {left_out} ({next(iter(UNAVAILABLE.values()))})",
                markup=False,
                highlight=False,
            )
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
                pair = escape(f"{case['scenario']} x {case['strategy']}")
                progress.update(task, advance=1, description=f"{pair} {mark}")

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
    out.print(ranking(results, out.width))
    failures = [c for c in results["cases"] if not c["passed"]]
    best_possible = {s["name"]: s["best_possible"] for s in results["scenarios"]}
    for case in failures:
        report = case_report(case, best_possible.get(case["scenario"], "")).splitlines()
        out.print(f"[red]FAIL[/] {escape(report[0])}", highlight=False)
        out.print("\n".join(report[1:]), highlight=False, markup=False, soft_wrap=True)
    from harness.reports.digest import matching_notes, time_notes

    for note in matching_notes(results) + time_notes(results):
        out.print(note, markup=False, highlight=False)
    run = results["run"]
    run_dir = reports / run["id"]
    written = write_reports(results, run_dir)
    for line, good in headline(results):
        out.print(line, style="green" if good else "yellow", markup=False, highlight=False)
    out.print(
        f"{len(results['cases']) - len(failures)} passed, {len(failures)} failed "
        f"in {run['wall_s']:.1f} s ({time_spent(results)})"
    )
    out.print(
        f"reports in {run_dir}/: {', '.join(p.name for p in written)}",
        markup=False,
        highlight=False,
    )
    return 1 if failures else 0


def headline(results: dict[str, Any]) -> list[tuple[str, bool]]:
    """The run's two verdicts, each with whether it is good news: the expectations, and
    what was delivered (a pass is not a delivery)."""
    from harness.reports import digest

    if not results["cases"]:
        return [(digest.verdict(results), False)]
    return [
        (digest.verdict(results), digest.verdict(results).startswith("PASS")),
        (digest.delivery(results), digest.delivered_all(results)),
    ]


def suite_line(suite: Any) -> str:
    """What a run of a project's suite plays, in one line."""
    from harness.reports.digest import count

    seeds = [s for s in suite.seeds if s is not None]
    seeded = f", seeds {', '.join(map(str, seeds))}" if seeds else ""
    return (
        f"the suite of {suite.path.name} [tool.ses-harness]: "
        f"{count(len(suite.scenarios), 'scenario', 'scenarios')} x "
        f"{count(len(suite.strategies), 'strategy', 'strategies')} "
        f"({', '.join(suite.strategies)}){seeded}"
    )


def provider_paths(provider: str, targets: list[str]) -> list[Path]:
    """The built-in scenarios of `provider` (with targets: none; say one or the other)."""
    from harness.core.errors import PlanError
    from harness.runner.scenario import provider_scenarios

    if targets:
        raise PlanError("--provider", "plays the provider's own scenarios: name no files too")
    paths = provider_scenarios(provider)
    if not paths:
        names = sorted({p.stem.split("-")[0] for p in provider_scenarios()})
        raise PlanError("--provider", f"{provider!r} has no scenarios", allowed=names)
    return paths


def with_profile(scenarios: list[Any], path: str) -> list[Any]:
    """The scenarios played against the user's own profile (limit overrides kept)."""
    import dataclasses

    from harness.base.profile_file import load_profile_file

    profile = load_profile_file(path)
    return [
        dataclasses.replace(s, plan=dataclasses.replace(s.plan, profile=profile), profile_file=path)
        for s in scenarios
    ]


def default_strategies(
    scenarios: list[Any], builtins: Mapping[str, Any], unavailable: Mapping[str, str]
) -> list[str]:
    """Every built-in, then each other strategy the scenarios have a table for (a strategy
    `ses-harness hunt` wrote a file for, say), as the pytest plugin plays them."""
    names = list(builtins)
    for scenario in scenarios:
        for name in scenario.strategies:
            if name not in names and name not in unavailable:
                names.append(name)
    return names


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
    if args.provider is not None:
        words += ["--provider", args.provider]
    if args.profile_file is not None:
        words += ["--profile-file", args.profile_file]
    return shlex.join(words)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


_MIN_NAME_WIDTH = 12


def ranking(results: dict[str, Any], width: int = 80) -> Table:
    """The ranked table for a terminal `width` columns wide: names are cut to fit (each still
    told apart from the others), never scores or the words of what happened."""
    from rich.console import Console
    from rich.measure import Measurement

    from harness.reports.digest import rank_strategies, shorten_names

    rows = rank_strategies(results)
    names = [r.name for r in rows]
    longest = max((len(n) for n in names), default=_MIN_NAME_WIDTH)
    console = Console(width=10_000)  # measures only
    table = None
    for name_width in range(max(longest, _MIN_NAME_WIDTH), _MIN_NAME_WIDTH - 1, -1):
        shown = shorten_names(names, name_width)
        if shown is None:  # cut this short, two names would read alike: wrap them instead
            return _table(rows, {n: n for n in names}, fold=True)
        table = _table(rows, shown)
        if Measurement.get(console, console.options, table).maximum <= width:
            break
    return table or _table(rows, {})


def _table(rows: list[Any], shown: Mapping[str, str], fold: bool = False) -> Table:
    from harness.reports.digest import problems
    from harness.runner.vocabulary import legend

    table = Table(
        title="Strategies, best first (score to 2 decimals, then fewest silently lost, "
        "duplicated and misreported)",
        caption="score: delivered-once score (delivered once, or rejected with a 5xx and "
        "reported), mean over scenarios. not delivered once (messages, summed): "
        f"{legend()}. 5xx: 5xx retried; thr: throttle violations; eff: efficiency, mean; "
        "best: cases that did as well as a correct client can (the scenario's contract); "
        "met: cases that met their expectations (a built-in's own table may accept a "
        "known weakness)",
        box=box.SIMPLE_HEAD,
        caption_justify="left",
    )
    if fold:
        table.add_column("strategy", overflow="fold")
    else:
        table.add_column("strategy", no_wrap=True)
    table.add_column("score", justify="right", no_wrap=True)
    # One class a line, each whole ("924 never sent"), so the column is as wide as the widest.
    cells = [problems(row.counts, "\n") or "-" for row in rows]
    table.add_column("not delivered\nonce", no_wrap=True)
    for header in ("5xx", "thr", "eff", "best", "met"):
        table.add_column(header, justify="right", no_wrap=True)
    for row, cell in zip(rows, cells, strict=True):
        efficiency = "n/a" if row.mean_efficiency is None else f"{row.mean_efficiency:.2f}"
        bad = row.silently_lost or row.duplicated or row.misreported
        table.add_row(
            Text(shown.get(row.name, row.name)),
            f"{row.mean_score:.3f}",
            Text(cell, style="red" if bad else ""),
            str(row.retried_5xx),
            str(row.throttle_violations),
            efficiency,
            Text(f"{row.best}/{row.cases}", style=_good(row.best == row.cases, warn=True)),
            Text(f"{row.passed}/{row.cases}", style=_good(row.passed == row.cases)),
        )
    return table


def _good(good: bool, warn: bool = False) -> str:
    return "green" if good else "yellow" if warn else "red"


def time_spent(results: dict[str, Any]) -> str:
    """How much SES time the cases covered: virtual for in-process ones; for commands, their
    scaled clock's (each case's ``command.time_scale`` times the wall)."""
    cases = [c for c in results["cases"] if c["score"] is not None]
    wall = sum(c["score"]["virtual_elapsed_s"] for c in cases if "command" in c)
    virtual = sum(c["score"]["virtual_elapsed_s"] for c in cases if "command" not in c)
    parts = [f"{virtual:.0f} s of virtual time"] if virtual or not wall else []
    parts += [f"{wall:.0f} s of SES time in client processes (on scaled clocks)"] if wall else []
    return ", ".join(parts)
