"""`ses-harness`: one entry point; each subcommand lives in its own module in harness.cli.

A subcommand module has `NAME`, `HELP`, `add_arguments(parser)` and `main(args) -> int`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence

from harness.cli import environment
from harness.core.errors import PlanError

SUBCOMMANDS = ("run", "scenarios", "init", "serve", "proxy", "profile-check", "hunt")
SUBCOMMANDS += ("conformance", "claim")
#: Subcommands whose options SES_HARNESS_<OPTION> variables set too (harness.cli.environment):
#: `serve`, which a container or a CI service starts with a fixed command line.
ENVIRONMENT = ("serve",)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ses-harness",
        description="Fault-injecting fake Amazon SES SMTP server and exactly-once scoring.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"harness.cli.{name.replace('-', '_')}")
        sub = commands.add_parser(
            module.NAME,
            help=module.HELP,
            description=module.HELP,
            epilog=getattr(module, "EPILOG", None),  # examples, kept as written
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sub)
        sub.set_defaults(handler=module.main)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ENVIRONMENT:
        args = _with_environment(parser, argv, args.command)
    try:
        with _sigterm_as_ctrl_c():
            return int(args.handler(args) or 0)
    except PlanError as error:
        print(f"ses-harness: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _with_environment(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None, command: str
) -> argparse.Namespace:
    """Parse again with the subcommand's defaults taken from SES_HARNESS_* variables."""
    sub = next(
        choice
        for action in parser._subparsers._group_actions  # type: ignore[union-attr]
        for name, choice in action.choices.items()  # type: ignore[union-attr]
        if name == command
    )
    try:
        sub.set_defaults(**environment.defaults(sub, os.environ))
    except environment.BadVariable as error:
        sub.error(str(error))
    return parser.parse_args(argv)


@contextlib.contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (`kill`, `timeout`, a service manager) stops a command as Ctrl-C does, so a run
    stops its workers, and they every client process, before it exits. (`serve` handles both
    in its own loop.) The handler before is back afterwards, for a caller such as a test."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; a caller there keeps its own
        return
    before = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
