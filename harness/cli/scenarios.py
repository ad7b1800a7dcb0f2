"""`ses-harness scenarios`: list the built-in scenarios, or copy them into a folder to edit.

Each built-in is a TOML file shipped in the package; `ses-harness run NAME` plays it from any
folder, and a copied file is played by its path like any of the user's own.
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

NAME = "scenarios"
HELP = "List the built-in scenarios (name, what they do, where the file is), or copy them."
EPILOG = """\
examples:
  ses-harness scenarios                          # the list
  ses-harness scenarios --copy ./scenarios       # every built-in, to edit
  ses-harness scenarios --copy ./scenarios session-cap throttling
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME", help="only these (default: all)")
    parser.add_argument(
        "--copy",
        type=Path,
        metavar="DIR",
        help="copy the files into DIR (made if missing); an existing file is left as it is",
    )


def main(args: argparse.Namespace) -> int:
    from harness.core.errors import PlanError
    from harness.runner.scenario import (
        builtin_scenario,
        builtin_scenarios,
        load_scenario,
        provider_scenarios,
    )

    paths = builtin_scenarios() + provider_scenarios()
    if args.names:
        missing = [n for n in args.names if builtin_scenario(n) is None]
        if missing:
            raise PlanError(
                "", f"{missing[0]!r} is not a built-in scenario", allowed=[p.stem for p in paths]
            )
        paths = [p for p in (builtin_scenario(n) for n in args.names) if p is not None]
    if args.copy is not None:
        return _copy(paths, args.copy)
    width = max(len(p.stem) for p in paths)
    for path in paths:
        scenario = load_scenario(path)
        if path.parent.name == "providers" and path.parent.parent == paths[0].parent:
            head = f"{path.stem:<{width}}  [{scenario.plan.profile_name}]"
        else:
            head = f"{path.stem:<{width}}"
        print(f"{head}  {summary(scenario.description)}")
    print(f"\nfiles in {paths[0].parent}/; play one with: ses-harness run {paths[0].stem}")
    print("providers' scenarios (in [brackets]) are not in the default run: play them with")
    print("ses-harness run --provider NAME (microsoft365, gmail, sendgrid)")
    return 0


def summary(description: str, width: int = 72) -> str:
    """The first sentence of a description, on one line, cut to `width` characters."""
    text = " ".join(description.split())
    first = re.split(r"(?<=[.:])\s", text, maxsplit=1)[0].rstrip(":")
    return first if len(first) <= width else first[: width - 1].rstrip() + "…"


def _copy(paths: list[Path], folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    for path in paths:
        target = folder / path.name
        if target.exists():
            print(f"kept    {target} (it exists)")
        else:
            shutil.copyfile(path, target)
            print(f"copied  {target}")
    return 0
