"""`ses-harness init`: make the current project a regression suite for its own mailer, in one step.

Adds four things and changes nothing that exists: a ``[tool.ses-harness]`` table (appended to
pyproject.toml, or a new pyproject.toml), one editable scenario in ``.ses-harness/scenarios/``,
a line in .gitignore for the reports (``ses-harness-reports/``), and a GitHub workflow fitted to
the project (harness/cli/ci_workflow.py). Then a plain ``pytest`` (or ``ses-harness run``)
there plays the configured strategies against the built-in scenarios and the project's own.

Neither folder name can be a Python package (a dot, a hyphen): setuptools' flat-layout
discovery refuses a project with two top-level folders that look like packages, so a
``scenarios/`` or ``reports/`` folder beside ``myapp/`` would break ``pip install -e .``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness.cli.ci_workflow import DISTRIBUTION, pip_install, read_project, workflow

NAME = "init"
HELP = "Set up this project to judge its own mailer: a [tool.ses-harness] table, a scenario, CI."
EPILOG = """\
examples:
  ses-harness init --strategy mymail.harness:send_batch
  ses-harness init --strategy 'cmd:node worker/send.js'
  ses-harness init --strategy myapp.mail:send_batch --install 'ses-fault-harness==0.1.0'
then:
  pytest                 # one test per scenario and strategy, failing on lost or duplicated mail
  ses-harness run        # the same suite, with a ranked table and ses-harness-reports/
"""

EXAMPLE_SCENARIO = '''\
# An example scenario to edit: SES's per-session cap, made small so a run is quick.
# `ses-harness scenarios` lists the built-ins; copy one here with
# `ses-harness scenarios --copy .ses-harness/scenarios`.
name = "small-session-cap"
description = """
A session cap of 30 over a batch of 100 one-recipient messages: the 31st MAIL FROM of a
connection gets SES's 421 and the connection closes.
"""
best_possible = "100 of 100 delivered once: reconnect at the 421 (or before it) and resend."

[workload]
count = 100
seed = 1

[plan]
profile = "ses"
seed = 1
limits = { session_limit = 30 }

# What any correct client achieves; your strategies are held to it.
[contract]
delivered_once = 100
duplicated = 0
silently_lost = 0
misreported = 0
'''

SCENARIOS = ".ses-harness/scenarios"
REPORTS = "ses-harness-reports"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--strategy",
        action="append",
        metavar="NAME",
        help="your sending code: module:attr or 'cmd:COMMAND' (repeatable; default: robust, "
        "the built-in reference, until you put yours)",
    )
    parser.add_argument(
        "--dir", type=Path, default=Path("."), help="the project's folder (default: here)"
    )
    parser.add_argument(
        "--install",
        default=DISTRIBUTION,
        metavar="SPEC",
        help="what the workflow gives pip for the harness: a version, a wheel's path or URL, "
        f"a git URL (default: {DISTRIBUTION}, from PyPI)",
    )


def main(args: argparse.Namespace) -> int:
    from harness.core.errors import PlanError
    from harness.runner.config import has_table, report_dir

    root: Path = args.dir
    if not root.is_dir():
        raise PlanError("", "no such folder", source=str(root))
    strategies = args.strategy or ["robust"]
    project = read_project(root, strategies)  # before this writes a pyproject.toml
    pyproject = root / "pyproject.toml"
    if pyproject.exists() and has_table(pyproject):
        print(f"kept    {pyproject} (it has a [tool.ses-harness] table)")
    else:
        existed = pyproject.exists()
        _append(pyproject, table(strategies))
        print(f"{'added' if existed else 'wrote'}   [tool.ses-harness] to {pyproject}")
    _write(root / SCENARIOS / "small-session-cap.toml", EXAMPLE_SCENARIO)
    reports = report_dir(root).relative_to(root).as_posix()  # the table's, if it was there
    _ignore(root / ".gitignore", reports)
    _write(root / ".github/workflows/ses-harness.yml", workflow(project, args.install, reports))
    print(f"CI installs with: {pip_install(project, args.install)}")
    if Path(args.install).is_absolute():
        print(
            f"note: {args.install} is a path on this machine, not on a CI runner: commit the "
            "wheel and give its path relative to the project, or a URL"
        )
    print("now run: ses-harness run   (or: pytest)")
    return 0


def table(strategies: list[str]) -> str:
    """The ``[tool.ses-harness]`` table, with a comment on every key."""
    listed = ", ".join(json.dumps(s) for s in strategies)
    return (
        "[tool.ses-harness]\n"
        "# Your sending code: module:attr, a function fn(messages, endpoint, clock) that yields\n"
        '# one harness.Claim per message, or a client in any language: "cmd:node send.js"\n'
        "# (see `ses-harness run --help`). Each is held to every scenario's [contract].\n"
        f"strategies = [{listed}]\n"
        '# "builtin": every built-in scenario (`ses-harness scenarios`); and your own folder.\n'
        f'scenarios = ["builtin", "{SCENARIOS}"]\n'
        "# seeds = [1, 2, 3]     # play every case with these seeds too\n"
        "# time_scale = 8        # cmd: server and client on one clock, 8x the wall (1: real)\n"
        f'# reports = "{REPORTS}"  # where `ses-harness run` and `hunt` write here\n'
        "# A bar of your own where you accept a known weakness:\n"
        '# [tool.ses-harness.expect.drop-after-accept."mymail:send_batch"]\n'
        '# misreported = "<= 12"\n'
    )


def _append(path: Path, text: str) -> None:
    """Add `text` at the end of `path`, leaving every byte before it as it was."""
    before = path.read_bytes() if path.exists() else b""
    gap = b"" if not before else (b"\n" if before.endswith(b"\n") else b"\n\n")
    with path.open("ab") as handle:
        handle.write(gap + text.encode("utf-8"))


def _write(path: Path, text: str) -> None:
    if path.exists():
        print(f"kept    {path} (it exists)")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote   {path}")


def _ignore(gitignore: Path, folder: str) -> None:
    """Keep `ses-harness run`'s reports out of git (one default run writes tens of MB)."""
    lines = gitignore.read_text(encoding="utf-8").splitlines() if gitignore.exists() else []
    if any(line.strip().strip("/") in (folder, f"{folder}/*") for line in lines):
        print(f"kept    {gitignore} (it ignores {folder}/)")
        return
    _append(gitignore, f"# ses-harness run's reports\n/{folder}/\n")
    print(f"{'added' if lines else 'wrote'}   /{folder}/ to {gitignore}")
