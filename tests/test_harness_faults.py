"""The runner survives its own faults: a strategy that raises, exits, hangs or kills its process is
reported in its case, the rest of the matrix completes, nothing is left running, and Ctrl-C stops
the workers and exits 130. Misbehaving strategies are in tests/strategies_misbehaving.py."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.reports.schema import validate_results
from harness.runner.matrix import run_case, run_matrix
from harness.runner.scenario import load_scenario
from tests.strategies_misbehaving import ANNOUNCE

REPO = Path(__file__).resolve().parent.parent
BAD = "tests.strategies_misbehaving:"
# Bounds that only a broken runner reaches; a working one is far inside them.
WAIT_S = 120.0
TIMEOUT_S = 4  # the scenario's timeout_s: what a hung case costs each run

SCENARIO = f"""
name = "tiny"
timeout_s = {TIMEOUT_S}

[workload]
count = 5
seed = 1

[plan]
profile = "plain"

[expect.naive]
delivered_once = 5
"""

EXPECTED_ERRORS = {
    "naive": None,
    f"{BAD}raises": "strategy raised ValueError: misbehaving on purpose",
    f"{BAD}exits": "strategy raised SystemExit: 4",
    f"{BAD}hangs": f"strategy timed out after {TIMEOUT_S} s",
    f"{BAD}exits_hard": "strategy process died (exit 3)",
    f"{BAD}kills_itself": "strategy process died (exit -9)",
}


@pytest.fixture
def scenario_path(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(SCENARIO)
    return path


@pytest.fixture
def announcements(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A FIFO that hanging strategies write their pids to; yields a descriptor to read it.

    Opened read-write, so a strategy's open() never blocks and a read never sees end of file.
    """
    fifo = tmp_path / "announce.fifo"
    os.mkfifo(fifo)
    monkeypatch.setenv(ANNOUNCE, str(fifo))
    fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    yield fd
    os.close(fd)


def read_pids(fd: int, count: int) -> list[int]:
    """Wait for `count` announced pids (bounded by WAIT_S)."""
    data = b""
    while data.count(b"\n") < count:
        ready, _, _ = select.select([fd], [], [], WAIT_S)
        assert ready, f"only {data!r} announced after {WAIT_S} s"
        data += os.read(fd, 4096)
    return [int(line) for line in data.split()]


def gone(pid: int) -> bool:
    """True when process `pid` has ended (waits for it up to WAIT_S: a kill takes effect
    asynchronously, and a killed grandchild is reaped by whoever adopted it)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], WAIT_S)[0])
    finally:
        os.close(fd)


def without_wall_time(case: dict) -> dict:
    case = json.loads(json.dumps(case))
    case["score"].pop("wall_s")
    return case


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_each_misbehaving_strategy_is_reported_and_the_rest_of_the_matrix_completes(
    scenario_path: Path, workers: int
) -> None:
    scenario = load_scenario(scenario_path)
    strategies = list(EXPECTED_ERRORS)
    seen: list[str] = []
    results = run_matrix(
        [scenario], strategies, workers=workers, on_case=lambda c: seen.append(c["strategy"])
    )
    validate_results(results)
    cases = {c["strategy"]: c for c in results["cases"]}
    assert [c["strategy"] for c in results["cases"]] == strategies  # fixed order
    assert sorted(seen) == sorted(strategies)
    assert {name: case["error"] for name, case in cases.items()} == EXPECTED_ERRORS
    assert cases["naive"]["passed"] is True
    assert cases["naive"]["score"]["delivered_once"] == 5
    for name in strategies[1:]:
        assert cases[name]["passed"] is False
    # A strategy that raised is scored on what it did: its one message went through.
    assert cases[f"{BAD}raises"]["score"]["delivered_once"] == 1
    # A process that hung or died leaves no score and no made-up numbers.
    for name in (f"{BAD}hangs", f"{BAD}exits_hard", f"{BAD}kills_itself"):
        assert cases[name]["score"] is None and cases[name]["messages"] == []
        assert cases[name]["reproducer"].endswith(f"--strategy {name}")


def test_cases_from_worker_processes_equal_cases_run_in_this_process(scenario_path: Path) -> None:
    scenario = load_scenario(scenario_path)
    results = run_matrix([scenario], ["naive", "robust"], seed=3, workers=2)
    here = [run_case(scenario, name, 3) for name in ("naive", "robust")]
    assert [without_wall_time(c) for c in results["cases"]] == [without_wall_time(c) for c in here]


@pytest.mark.slow
def test_a_timed_out_strategy_leaves_no_process_behind(scenario_path: Path, announcements) -> None:
    results = run_matrix([load_scenario(scenario_path)], [f"{BAD}hangs_with_child", "naive"])
    assert [c["error"] for c in results["cases"]] == [
        f"strategy timed out after {TIMEOUT_S} s",
        None,
    ]
    worker, child = read_pids(announcements, 2)
    assert gone(worker) and gone(child)


def test_case_timeout_on_the_command_line_overrides_the_scenario(
    scenario_path: Path, tmp_path: Path
) -> None:
    scenario_path.write_text(SCENARIO.replace(f"timeout_s = {TIMEOUT_S}", "timeout_s = 600"))
    run = [sys.executable, "-m", "harness", "run", str(scenario_path), "--case-timeout", "2"]
    result = subprocess.run(
        [*run, "--strategy", f"{BAD}hangs", "--strategy", "naive", "--report-dir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert result.returncode == 1, result.stderr
    assert "strategy timed out after 2 s" in result.stdout
    assert "1 passed, 1 failed" in result.stdout
    assert "Traceback" not in result.stderr
    (results_file,) = tmp_path.glob("*/results.json")
    results = json.loads(results_file.read_text())
    validate_results(results)
    assert "--case-timeout 2" in results["run"]["command"]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_ctrl_c_stops_every_worker_and_exits_130(
    scenario_path: Path, tmp_path: Path, announcements, workers: str
) -> None:
    scenario_path.write_text(SCENARIO.replace(f"timeout_s = {TIMEOUT_S}", "timeout_s = 600"))
    strategies = [f"{BAD}hangs_with_child", f"{BAD}hangs"][: int(workers)]
    argv = [sys.executable, "-m", "harness", "run", str(scenario_path), "-n", workers]
    for strategy in [*strategies, "naive"]:
        argv += ["--strategy", strategy]
    process = subprocess.Popen(
        [*argv, "--report-dir", str(tmp_path / "out")],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group, as a shell gives a foreground job
    )
    try:
        pids = read_pids(announcements, 1 + len(strategies))  # every hung case is running
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        _, stderr = process.communicate(timeout=WAIT_S)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, stderr
    assert "interrupted:" in stderr and "no report written" in stderr
    assert "Traceback" not in stderr
    assert all(gone(pid) for pid in pids)
    assert not (tmp_path / "out").exists()


def test_a_worker_whose_runner_is_killed_ends_with_it(
    scenario_path: Path, tmp_path: Path, announcements
) -> None:
    scenario_path.write_text(SCENARIO.replace(f"timeout_s = {TIMEOUT_S}", "timeout_s = 600"))
    run = [sys.executable, "-m", "harness", "run", str(scenario_path)]
    process = subprocess.Popen(
        [*run, "--strategy", f"{BAD}hangs_with_child", "--report-dir", str(tmp_path / "out")],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        pids = read_pids(announcements, 2)
        process.kill()  # no chance to clean up: the worker must notice by itself
        process.wait(timeout=WAIT_S)
    finally:
        process.kill()
    assert all(gone(pid) for pid in pids)
