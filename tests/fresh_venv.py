"""A fresh venv with ses-fault-harness installed from a wheel of this checkout, offline.

The wheel is built without build isolation and installed with --no-index; the dependencies come
from this venv through a .pth file (the fresh venv sees them, not this checkout: it runs from
folders outside it). `offline_env` gives a shell in that venv the same rules, so a user's own
`pip install` lines (a workflow's, a README's) run there without reaching the network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run(
    argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout_s: float = 600
) -> subprocess.CompletedProcess[str]:
    if env is None:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
    )


def source_tree(folder: Path) -> Path:
    """A copy of this checkout's files (tracked, and new ones git does not ignore) in `folder`:
    a build writes build/ and *.egg-info beside its source, and two xdist workers building
    from this checkout at once would write over each other's."""
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], REPO)
    assert listed.returncode == 0, listed.stderr
    for name in filter(None, listed.stdout.split("\0")):
        source, copy = REPO / name, folder / name
        copy.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():  # harness/scenarios -> ../scenarios
            copy.symlink_to(os.readlink(source))
        elif source.is_file():
            shutil.copy2(source, copy)
    return folder


def build_wheel(folder: Path) -> Path:
    """A wheel of this checkout in `folder`."""
    source = source_tree(folder.parent / "source")
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    built = run([*pip, "--no-index", "-q", "-w", str(folder), str(source)], cwd=folder.parent)
    assert built.returncode == 0, built.stderr
    return next(folder.glob("ses_fault_harness-*.whl"))


def make_venv(folder: Path) -> Path:
    """A venv in `folder` that sees this venv's packages (pip, setuptools, the dependencies)
    but not this checkout; returns its bin/."""
    venv.EnvBuilder(with_pip=False).create(folder)
    python = folder / "bin" / "python"
    purelib = run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        cwd=folder,
    ).stdout.strip()
    (Path(purelib) / "outer-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return folder / "bin"


def offline_env(bin_dir: Path, wheels: Path, **extra: str) -> dict[str, str]:
    """The environment of a shell in that venv: its bin/ first, pip offline (only `wheels`,
    and builds with the venv's own setuptools)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(wheels),
        PIP_NO_BUILD_ISOLATION="0",  # pip reads "0" as: do not isolate the build
        **extra,
    )
    return env
