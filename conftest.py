"""README.md and docs/*.md as tests: every Python and shell block runs as written (sybil).

- A ``python`` block runs as a script (its imports included).
- A ``sh`` block runs line by line in bash, from a fresh folder with this checkout's
  ``examples``, ``clients`` and ``scenarios`` in it; a line must exit 0 (``ses-harness hunt``,
  whose documented find is exit 1, must exit 1). ``ses-harness serve`` gets free ports in place
  of the ones written, runs until its READY line, and is stopped.
- A block after ``<!-- excerpt: PATH -->`` is an excerpt of PATH (relative to the document, like
  its links; a complete file the suite runs): it must appear there verbatim, so changing
  either side without the other fails.
- A block after ``<!-- skip: next "why" -->`` is not run, and the test report says why.

Each block is written to stand alone: under xdist a document's blocks may run on any worker,
in any order, so none may lean on another's names or files.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sybil import Example, Sybil
from sybil.evaluators.python import PythonEvaluator
from sybil.parsers.markdown import CodeBlockParser

ROOT = Path(__file__).resolve().parent
_EXCERPT = re.compile(r"<!--\s*excerpt:\s*(?P<path>\S+)\s*-->\s*$")
_SKIP = re.compile(r'<!--\s*skip:\s*next\s+"(?P<why>[^"]+)"\s*-->\s*$')
_PORT_FLAGS = re.compile(r"(--(?:api-)?port)(?:\s+|=)\d+")
#: Wall seconds one shell line may take; a working one is far inside it.
LINE_TIMEOUT_S = 600.0
SERVE_READY_S = 60.0


def _line_before(example: Example) -> str:
    return example.document.text[: example.start].rstrip("\n").rsplit("\n", 1)[-1]


def excerpt_path(example: Example) -> Path | None:
    """The file a block is an excerpt of, from the comment on the line right before its fence."""
    found = _EXCERPT.search(_line_before(example))
    return Path(example.path).parent / found.group("path") if found else None


def skip_if_marked(example: Example) -> None:
    found = _SKIP.search(_line_before(example))
    if found:
        pytest.skip(found.group("why"))


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in textwrap.dedent(text).strip("\n").splitlines()]


def check_excerpt(example: Example, path: Path) -> None:
    block = _lines(str(example.parsed))
    whole = _lines(path.read_text(encoding="utf-8"))
    for start in range(len(whole) - len(block) + 1):
        if whole[start : start + len(block)] == block:
            return
    raise AssertionError(f"this block is not in {path.name} ({path}) as written")


_python = PythonEvaluator()


def evaluate_python(example: Example) -> None:
    skip_if_marked(example)
    path = excerpt_path(example)
    if path is not None:
        return check_excerpt(example, path)
    return _python(example)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _commands(source: str) -> list[str]:
    """One command per line, backslash continuations joined, comments and blanks dropped."""
    joined = re.sub(r"\\\n\s*", " ", source)
    commands = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            commands.append(line)
    return commands


def _workdir(example: Example) -> Path:
    folder = Path(example.namespace.setdefault("_workdir", _fresh_folder()))
    return folder


def _fresh_folder() -> str:
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="docs-sh-"))
    for name in ("examples", "clients", "scenarios"):
        (folder / name).symlink_to(ROOT / name, target_is_directory=True)
    return str(folder)


def _env() -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)  # ses-harness and python of this venv
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def _serve(command: str, cwd: Path) -> None:
    command = _PORT_FLAGS.sub(lambda m: f"{m.group(1)} {_free_port()}", command)
    if "--api-port" not in command:
        command += f" --api-port {_free_port()}"
    process = subprocess.Popen(
        ["bash", "-c", f"exec {command}"],
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    seen = []
    try:
        assert process.stdout is not None
        for line in process.stdout:  # the banner ends with a READY line
            seen.append(line)
            if line.startswith("READY"):
                break
        else:
            raise AssertionError(f"{command!r} ended before it was ready:\n{''.join(seen)}")
    finally:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: its summary, then exit
        try:
            process.wait(timeout=SERVE_READY_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode in (0, 130), f"{command!r} exited {process.returncode}"


def evaluate_shell(example: Example) -> None:
    skip_if_marked(example)
    path = excerpt_path(example)
    if path is not None:
        return check_excerpt(example, path)
    cwd = _workdir(example)
    for command in _commands(str(example.parsed)):
        if command.lstrip().startswith("ses-harness serve"):
            _serve(command, cwd)
            continue
        expected = 1 if command.lstrip().startswith("ses-harness hunt") else 0
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=cwd,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=LINE_TIMEOUT_S,
            check=False,
        )
        output = done.stdout + done.stderr
        assert done.returncode == expected, f"{command!r} exited {done.returncode}:\n{output}"
        assert "Traceback" not in output, f"{command!r} printed a traceback:\n{output}"


def _cleanup(namespace: dict) -> None:
    folder = namespace.get("_workdir")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


pytest_collect_file = Sybil(
    parsers=[
        CodeBlockParser(language="python", evaluator=evaluate_python),
        CodeBlockParser(language="sh", evaluator=evaluate_shell),
    ],
    patterns=["README.md", "docs/*.md"],
    teardown=_cleanup,
).pytest()
