"""The GitHub Actions workflow `ses-harness init` writes, fitted to the project it is in.

What a runner needs before ``ses-harness run`` can judge the project's mailer: the project's
own dependencies (its requirements files, or the project itself with its test extra), the
harness (``--install SPEC``), libfaketime when a ``cmd:`` client runs on the server's fast
clock, and Node when a client is a Node program. Every step says why it is there, so the
file can be edited by someone who has not read this.
"""

from __future__ import annotations

import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

from harness.runner.command.spec import PREFIX, parse_spec

#: What ``--install`` defaults to: the name on PyPI.
DISTRIBUTION = "ses-fault-harness"
#: Extras of the project's own that hold its test dependencies, in the order they are tried.
TEST_EXTRAS = ("test", "tests", "testing", "dev")
_REQUIREMENTS_GLOBS = ("requirements*.txt", "*requirements.txt", "requirements/*.txt")
_NODE_WORDS = {"node", "npm", "npx", "yarn", "pnpm", "bun", "tsx", "ts-node", "deno"}
_NODE_SUFFIXES = (".js", ".mjs", ".cjs", ".ts")


@dataclass(frozen=True)
class Project:
    """What the workflow installs for a project, read from its files."""

    requirements: tuple[str, ...]  # requirements files, relative to the project
    install_self: str | None  # "." or ".[test]" when the project is a package, else None
    node_install: str | None  # "npm ci" / "npm install" when a Node client needs packages
    uses_node: bool
    uses_cmd: bool  # a cmd: client: it runs under libfaketime on the fast clock


def read_project(root: Path, strategies: list[str]) -> Project:
    """Look at `root` (before init writes anything) and the strategies it will judge."""
    commands = [parse_spec(s)[0] for s in strategies if s.startswith((f"{PREFIX}:", f"{PREFIX}["))]
    uses_node = any(_is_node(argv) for argv in commands)
    node_install = None
    if uses_node and (root / "package.json").is_file():
        node_install = "npm ci" if (root / "package-lock.json").is_file() else "npm install"
    return Project(
        requirements=_requirements(root),
        install_self=_install_self(root),
        node_install=node_install,
        uses_node=uses_node,
        uses_cmd=bool(commands),
    )


def workflow(project: Project, install: str = DISTRIBUTION, reports: str = "reports") -> str:
    """The workflow's YAML: one job that installs, runs the suite and keeps its reports (the
    folder `ses-harness run` writes to in the project)."""
    steps = [
        "      - uses: actions/checkout@v4",
        "      - uses: actions/setup-python@v5",
        "        with:",
        '          python-version: "3.12"',
    ]
    if project.uses_node:
        steps += [
            "      - uses: actions/setup-node@v4  # your Node client runs under `cmd:`",
            "        with:",
            '          node-version: "lts/*"',
        ]
    if project.uses_cmd:
        steps += [
            '      - name: "libfaketime: cmd clients run on the fake server\'s fast clock"',
            "        run: sudo apt-get update -qq && sudo apt-get install -y -qq faketime",
        ]
    steps += [
        '      - name: "The project\'s dependencies and ses-fault-harness, in one resolve"',
        "        run: |",
        f"          {pip_install(project, install)}",
    ]
    if project.node_install:
        steps += [f"      - run: {project.node_install}"]
    steps += [
        '      - name: "The suite of [tool.ses-harness]: exit 1 on lost or duplicated mail"',
        "        run: ses-harness run",
        '      - name: "summary.md as the job summary"',
        "        if: always()",
        f'        run: cat {reports}/*/summary.md >> "$GITHUB_STEP_SUMMARY"',
        "      - uses: actions/upload-artifact@v4",
        "        if: always()",
        "        with:",
        "          name: ses-harness-reports",
        f"          path: {reports}/",
        "          if-no-files-found: ignore",
    ]
    return (
        "# Plays this project's mailer against Amazon SES's limits and faults on every push.\n"
        "# Written by `ses-harness init` (ses-fault-harness); edit it as your own.\n"
        "name: ses-harness\n"
        "on: [push, pull_request]\n"
        "jobs:\n"
        "  mail:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n" + "\n".join(steps) + "\n"
    )


def pip_install(project: Project, install: str) -> str:
    """One pip command for the project's dependencies and the harness."""
    words = ["python", "-m", "pip", "install"]
    for path in project.requirements:
        words += ["-r", path]
    if project.install_self is not None:
        words += ["-e", project.install_self]
    words.append(install)
    return " ".join(shlex.quote(w) for w in words)


def _is_node(argv: list[str]) -> bool:
    return bool(argv) and (
        Path(argv[0]).name in _NODE_WORDS or any(w.endswith(_NODE_SUFFIXES) for w in argv)
    )


def _requirements(root: Path) -> tuple[str, ...]:
    found = {p for pattern in _REQUIREMENTS_GLOBS for p in root.glob(pattern) if p.is_file()}
    return tuple(sorted(p.relative_to(root).as_posix() for p in found))


def _install_self(root: Path) -> str | None:
    """``.`` (with the first test extra it has) when pip can install the project, else None."""
    pyproject = root / "pyproject.toml"
    data: dict = {}
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            data = {}
    buildable = "project" in data or "build-system" in data
    if not buildable and not any((root / f).is_file() for f in ("setup.py", "setup.cfg")):
        return None
    extras = data.get("project", {}).get("optional-dependencies", {})
    extra = next((e for e in TEST_EXTRAS if e in extras), None)
    return f".[{extra}]" if extra else "."
