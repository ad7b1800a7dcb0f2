"""A new user's first steps, in a fresh venv with the package installed from its wheel.

Nothing here reaches the network (tests/fresh_venv.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.runner.scenario import builtin_scenarios
from tests.fresh_venv import build_wheel, make_venv, run

LIAR = '''
from harness import Claim, ClaimStatus


def send_batch(messages, endpoint, clock):
    """Claims every message sent and sends nothing."""
    for message in messages:
        yield Claim(message.id, ClaimStatus.SENT)
'''

GOOD = """
from harness.runner.strategies import BUILTINS

send_batch = BUILTINS["robust"].send_batch
"""


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with ses-fault-harness installed from a wheel of this checkout; returns its bin/."""
    root = tmp_path_factory.mktemp("fresh")
    wheel = build_wheel(root / "wheels")
    bin_dir = make_venv(root / "venv")
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index"]
    installed = run([*pip, str(wheel)], cwd=root)
    assert installed.returncode == 0, installed.stderr
    return bin_dir


def test_a_built_in_scenario_runs_by_name_from_any_folder(fresh, tmp_path):
    where = run([str(fresh / "python"), "-c", "import harness; print(harness.__file__)"], tmp_path)
    assert str(fresh.parent) in where.stdout  # the installed copy, not this checkout

    done = run([str(fresh / "ses-harness"), "run", "session-cap", "--strategy", "robust"], tmp_path)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed, 0 failed" in done.stdout


@pytest.mark.slow
def test_init_then_pytest_plays_the_projects_strategies(fresh, tmp_path):
    (tmp_path / "liar.py").write_text(LIAR)
    (tmp_path / "good.py").write_text(GOOD)
    init = run(
        [
            str(fresh / "ses-harness"),
            "init",
            "--strategy",
            "good:send_batch",
            "--strategy",
            "liar:send_batch",
        ],
        tmp_path,
    )
    assert init.returncode == 0, init.stderr
    assert (tmp_path / ".ses-harness" / "scenarios" / "small-session-cap.toml").is_file()
    assert (tmp_path / ".github" / "workflows" / "ses-harness.yml").is_file()
    again = run([str(fresh / "ses-harness"), "init"], tmp_path)
    assert "kept" in again.stdout and again.returncode == 0

    tested = run(
        [str(fresh / "python"), "-m", "pytest", "-n", "2", "-p", "no:cacheprovider", "-q", "-rfE"],
        tmp_path,
    )

    out = tested.stdout
    assert tested.returncode == 1, out + tested.stderr
    cases = len(builtin_scenarios()) + 1  # every built-in and the example, for each strategy
    assert f"{cases} failed, {cases} passed" in out
    failed = [line for line in out.splitlines() if line.startswith("FAILED")]
    assert len(failed) == cases and all("[liar:send_batch]" in line for line in failed)
