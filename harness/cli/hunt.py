"""`ses-harness hunt`: search fault schedules for the smallest one that breaks a strategy.

Writes the counterexample as a scenario file that replays it (and fails until the strategy is
fixed). Exit status 1 when a schedule broke the strategy, 0 when none did within the budget.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import shlex
import sys
from pathlib import Path

NAME = "hunt"
NEEDS_HYPOTHESIS = "needs hypothesis: pip install 'ses-fault-harness[hunt]'"
HELP = (
    "Search fault schedules for the smallest one that makes a strategy lose, duplicate or "
    "misreport a message, and write it as a scenario file. Exit status 1 when it found one, 0 "
    "when none broke the strategy within the budget, 2 on bad input."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from harness.hunting import MAX_EVENTS

    parser.add_argument(
        "--strategy",
        required=True,
        metavar="NAME",
        help="the strategy to break: a built-in name, module:attr or entry point",
    )
    parser.add_argument(
        "--messages", type=_positive, default=50, metavar="N", help="batch size (default 50)"
    )
    parser.add_argument(
        "--max-examples",
        type=_positive,
        default=200,
        metavar="N",
        help="schedules to try before giving up, not counting shrinking (default 200)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        metavar="N",
        help="seed of the search and the workload: the same seed, the same hunt "
        "(default: a random one, printed)",
    )
    parser.add_argument("--profile", default="ses", help="server profile (default ses)")
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="where to write the scenario "
        "(default ses-harness-reports/hunts/scenarios/hunt-<strategy>-seed<N>.toml)",
    )
    parser.add_argument(
        "--exclude-ambiguous",
        action="store_true",
        help="leave out drops at end of data, the faults no client can get exactly-once",
    )
    parser.add_argument(
        "--strict-uncertain",
        action="store_true",
        help="count an 'uncertain' claim (the client says it cannot know, after a connection "
        "cut at end of data) as a break; by default it is honest, and not one",
    )
    parser.add_argument(
        "--max-events",
        type=_positive,
        default=MAX_EVENTS,
        metavar="N",
        help=f"faults and limits per schedule, at most (default {MAX_EVENTS})",
    )


def main(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("hypothesis") is None:  # the hunt extra
        print(f"ses-harness {NAME} {NEEDS_HYPOTHESIS}", file=sys.stderr)
        return 2
    from harness.hunting.search import breaks, broken_classes, hunt, write_scenario
    from harness.runner.config import report_dir
    from harness.runner.matrix import run_case
    from harness.runner.resolve import resolve_strategy
    from harness.runner.scenario import load_scenario

    name, _ = resolve_strategy(args.strategy)  # a clear error before anything runs
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(100_000)
    result = hunt(
        args.strategy,
        messages=args.messages,
        max_examples=args.max_examples,
        seed=seed,
        profile=args.profile,
        ambiguous=not args.exclude_ambiguous,
        max_events=args.max_events,
        path=args.out,
        reports=report_dir(Path(".")),
        on_progress=lambda line: print(line, file=sys.stderr, flush=True),
        strict_uncertain=args.strict_uncertain,
    )
    found = result.found
    if found is None:
        print(
            f"No schedule broke {name}: {result.drawn} schedules drawn, {result.runs} distinct "
            f"ones run ({result.wall_s:.1f} s, seed {seed}). "
            "A bigger --max-examples or another --seed searches further."
        )
        return 0
    print(
        f"The smallest schedule found that breaks {name} "
        f"(seed {seed}; the first broke it after {found.first_after_runs} schedules, "
        f"{found.first_after_s:.1f} s; {result.runs} runs in all):"
    )
    print(found.story.text())
    path = write_scenario(found, command_line(args, seed))
    replayed = run_case(load_scenario(path), args.strategy)
    strict = args.strict_uncertain
    same = (
        breaks(replayed, strict_uncertain=strict)
        and broken_classes(replayed, strict_uncertain=strict) == found.broken
    )
    verdict = "the same verdict" if same else "a DIFFERENT verdict: is the strategy deterministic?"
    print(f"Written to {path}; replayed from the file: {verdict}")
    print(f"Replay it (it fails until {name} is fixed):")
    print(f"  {run_replay(path, args.strategy)}")
    print(f"  {pytest_replay(path)}")
    return 1


def run_replay(path: Path, strategy: str) -> str:
    """The `ses-harness run` command that replays `path` against the hunted strategy (named:
    without --strategy, run plays the built-ins too)."""
    return shlex.join(["ses-harness", "run", str(path), "--strategy", strategy])


def pytest_replay(path: Path) -> str:
    """The pytest command that replays `path` as a test, from any folder: the file named, and
    the plugin told to collect it by name (pytest collects a scenario by itself only in a
    folder named scenarios of a project without a suite; a folder would run the user's tests)."""
    glob = shlex.quote(f"fake_ses_scenarios={path.name}")
    return f"pytest {shlex.quote(str(path.resolve()))} -o {glob}"


def command_line(args: argparse.Namespace, seed: int) -> str:
    """The command that repeats this hunt."""
    from harness.hunting import MAX_EVENTS

    words = ["ses-harness", NAME, "--strategy", args.strategy, "--messages", str(args.messages)]
    words += ["--max-examples", str(args.max_examples), "--seed", str(seed)]
    if args.profile != "ses":
        words += ["--profile", args.profile]
    if args.exclude_ambiguous:
        words.append("--exclude-ambiguous")
    if args.strict_uncertain:
        words.append("--strict-uncertain")
    if args.max_events != MAX_EVENTS:
        words += ["--max-events", str(args.max_events)]
    return shlex.join(words)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is too small (allowed: >= 1)")
    return value
