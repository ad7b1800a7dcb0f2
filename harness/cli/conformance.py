"""`ses-harness conformance`: run real client libraries against the scenarios and tabulate it.

Run from the repository root (the client scripts live in ``clients/``)::

    ses-harness conformance --docs docs/conformance.md

or anywhere with your own clients (a command strategy each) and scenarios::

    ses-harness conformance --client 'worker=node worker/send.js' --scenario session-cap

prints the table and writes it as the whole docs page; ``--write FILE`` also rewrites only the
section of FILE between ``<!-- conformance:start -->`` and ``<!-- conformance:end -->`` (for a
README of your own that shows the table).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from harness.cli.arguments import workers

NAME = "conformance"
HELP = "Run real SMTP client libraries against the scenarios and write the conformance table."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from harness.runner.conformance import (
        CLIENTS,
        DEFAULT_SCENARIOS,
        DEFAULT_TIME_SCALE,
        default_workers,
    )

    parser.add_argument(
        "--client",
        action="append",
        metavar="NAME|NAME=COMMAND",
        help="a client to run, repeatable: one of ours by name ("
        + "; ".join(f'"{c.name}"' for c in CLIENTS)
        + "; default: all of them), or your own as NAME=COMMAND, a command strategy "
        "(see ses-harness run --help), e.g. 'worker=node worker/send.js'",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        metavar="NAME|FILE",
        help=f"a built-in scenario name or a scenario file; repeat for more "
        f"(default: {', '.join(DEFAULT_SCENARIOS)})",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        metavar="K",
        help="run each case on one clock, server and client (libfaketime), K times faster than "
        f"the wall (default: the scenario's command_time_scale, else {DEFAULT_TIME_SCALE:g}; "
        "1: real time)",
    )
    parser.add_argument("--seed", type=int, help="replace every scenario's seed with this one")
    parser.add_argument(
        "-n",
        "--workers",
        type=workers,
        metavar="N",
        help=f"runs at a time, each in a worker process (default: the cores + 1, here "
        f"{default_workers()}; rows stay in table order)",
    )
    parser.add_argument(
        "--clients-dir",
        type=Path,
        default=Path("clients"),
        metavar="DIR",
        help="the clients/ folder of the repository (default: ./clients)",
    )
    parser.add_argument(
        "--write",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="rewrite the section between the conformance markers of FILE (e.g. your README.md)",
    )
    parser.add_argument(
        "--docs", type=Path, metavar="FILE", help="write the table as a whole page to FILE"
    )
    parser.add_argument(
        "--providers",
        action="store_true",
        help="the table by provider instead: each SMTP library on one scenario a provider ("
        "SES, Microsoft 365, Gmail, SendGrid), a column each; --docs and --write rewrite its "
        "own section (between <!-- conformance-providers:start --> and its end)",
    )


def main(args: argparse.Namespace) -> int:
    from harness.core.errors import PlanError
    from harness.runner.conformance import (
        DEFAULT_SCENARIOS,
        PROVIDER_SCENARIOS,
        default_workers,
        render,
        run_rows,
        runnable,
        write_doc,
        write_section,
    )
    from harness.runner.scenario import load_scenario, scenario_paths

    if args.time_scale is not None and not args.time_scale > 0:
        raise PlanError("--time-scale", f"{args.time_scale:g} must be positive", allowed="> 0")
    clients = select_clients(args.client or [])
    if args.providers:  # SES's API clients never speak SMTP to another provider
        clients = [c for c in clients if not c.api]
    left_out: list = []
    if not args.client:  # all of ours: those this machine cannot run are left out, and said so
        clients, left_out = runnable(clients, args.clients_dir.resolve())
        for _, reason in left_out:
            print(f"left out: {reason}", file=sys.stderr)
    default = [name for name, _ in PROVIDER_SCENARIOS] if args.providers else DEFAULT_SCENARIOS
    scenarios = [load_scenario(path) for path in scenario_paths(args.scenario or list(default))]

    def progress(row) -> None:
        s = row.score
        print(
            f"{row.client} x {row.scenario}: {s['delivered_once']}/{s['messages']} once",
            file=sys.stderr,
        )
        if row.note:
            print(f"  note: {row.note}", file=sys.stderr)

    rows = run_rows(
        clients,
        scenarios,
        clients_dir=args.clients_dir.resolve(),
        time_scale=args.time_scale,
        seed=args.seed,
        workers=args.workers or default_workers(),
        on_row=progress,
    )
    if args.providers:
        return _write_by_provider(args, rows, scenarios)
    block = render(
        rows,
        time_scale=args.time_scale,
        clients_dir=args.clients_dir.resolve(),
        command=command_line(args),
        own=[c for c in clients if c.needs == "own"],
        left_out=[reason for _, reason in left_out],
    )
    print(block)
    for path in args.write:
        write_section(path, block)
        print(f"rewrote the conformance section of {path}", file=sys.stderr)
    if args.docs:
        write_doc(args.docs, block)
        print(f"wrote {args.docs}", file=sys.stderr)
    return 0


def _write_by_provider(args: argparse.Namespace, rows: list, scenarios: list) -> int:
    """The table by provider, printed, and written into its own section of each file."""
    from harness.runner.conformance import (
        PROVIDER_SCENARIOS,
        generated,
        render_by_provider,
        write_section,
    )
    from harness.runner.conformance.providers import END, START

    headings = dict(PROVIDER_SCENARIOS)
    for scenario in scenarios:  # a scenario of the user's own: its name is its heading
        headings.setdefault(scenario.name, scenario.name)
    made = generated(
        rows,
        time_scale=args.time_scale,
        clients_dir=args.clients_dir.resolve(),
        command=command_line(args),
    )
    block = f"{made}\n\n{render_by_provider(rows, headings)}"
    print(block)
    for path in [*args.write, *([args.docs] if args.docs else [])]:
        write_section(path, block, (START, END))
        print(f"rewrote the by-provider section of {path}", file=sys.stderr)
    return 0


def select_clients(named: list[str]) -> list:
    """Ours by name (all when none is named) and the user's own NAME=COMMAND, in that order."""
    from harness.core.errors import PlanError
    from harness.runner.conformance import CLIENTS, Client

    if not named:
        return list(CLIENTS)
    ours = {c.name: c for c in CLIENTS}
    chosen = []
    for text in named:
        if text in ours:
            chosen.append(ours[text])
        elif "=" in text:
            chosen.append(Client.own(text))
        else:
            raise PlanError(
                "",
                f"--client {text!r} is not one of ours, nor NAME=COMMAND",
                allowed="; ".join(f'"{name}"' for name in ours),
            )
    return chosen


def command_line(args: argparse.Namespace) -> str:
    """The command that made the table, as the table says."""

    words = ["ses-harness", NAME]
    for name in args.client or ():
        words += ["--client", name]
    for scenario in args.scenario or ():
        words += ["--scenario", scenario]
    if args.time_scale is not None:
        words += ["--time-scale", f"{args.time_scale:g}"]
    if args.seed is not None:
        words += ["--seed", str(args.seed)]
    if args.workers is not None:
        words += ["-n", str(args.workers)]
    for path in args.write:
        words += ["--write", str(path)]
    if args.docs:
        words += ["--docs", str(args.docs)]
    if args.providers:
        words += ["--providers"]
    return shlex.join(words)
