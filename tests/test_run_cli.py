"""`ses-harness run`: the matrix from the command line, its table, reports and exit status."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.runner.scenario import builtin_scenarios

SCENARIO = """
name = "tiny-cap"
description = "A session cap of 5 over 12 messages."
best_possible = "12 of 12."

[workload]
count = 12
seed = 2

[plan]
profile = "ses"
seed = 2
limits = { session_limit = 5 }

[expect.naive]
delivered_once = 5

[expect.robust]
delivered_once = 12
duplicated = 0
"""


@pytest.fixture
def scenario(tmp_path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(SCENARIO)
    return path


def only_run(report_dir: Path) -> Path:
    (run_dir,) = report_dir.iterdir()
    return run_dir


def test_run_without_scenarios_runs_every_builtin_one_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status = main(["run", "--strategy", "naive", "--report-dir", "out"])
    assert status == 0
    run_dir = only_run(tmp_path / "out")
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "junit.xml",
        "report.html",
        "results.json",
        "summary.md",
    ]
    results = json.loads((run_dir / "results.json").read_text())
    assert len(results["scenarios"]) == len(builtin_scenarios()) >= 9
    assert {c["strategy"] for c in results["cases"]} == {"naive"}
    assert all(c["passed"] for c in results["cases"])


def test_run_chosen_scenarios_and_strategies_with_a_seed_in_parallel(scenario, tmp_path, capsys):
    argv = ["run", str(scenario), "--strategy", "robust", "--strategy", "naive", "--seed", "3"]
    status = main([*argv, "-n", "2", "--report-dir", str(tmp_path / "out")])
    assert status == 0
    out = capsys.readouterr().out
    assert out.index("robust") < out.index("naive")  # ranked, best first
    assert "2 passed, 0 failed" in out
    results = json.loads((only_run(tmp_path / "out") / "results.json").read_text())
    assert results["run"]["seed"] == 3 and results["run"]["workers"] == 2
    assert results["run"]["command"].startswith("ses-harness run ")
    assert "--seed 3 -n 2" in results["run"]["command"]
    assert [c["strategy"] for c in results["cases"]] == ["robust", "naive"]
    assert all(c["seed"] == 3 for c in results["cases"])


def test_run_exits_1_and_shows_the_reproducer_when_an_expectation_fails(tmp_path, capsys):
    path = tmp_path / "wrong.toml"
    path.write_text(SCENARIO.replace("delivered_once = 5", "delivered_once = 12"))
    status = main(["run", str(path), "--strategy", "naive", "--report-dir", str(tmp_path)])
    assert status == 1
    out = capsys.readouterr().out
    assert "    delivered_once == 12 (actual 5)" in out
    assert f"ses-harness run {path} --strategy naive" in out.replace("\n", "")


def test_run_refuses_an_invalid_scenario_file_naming_file_key_and_allowed(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(SCENARIO.replace('profile = "ses"', 'profile = "aws"'))
    assert main(["run", str(path), "--report-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "plan.profile" in err and "ses-sandbox" in err
    assert not (tmp_path / "out").exists()


def test_run_refuses_an_unknown_strategy_listing_the_builtins(scenario, tmp_path, capsys):
    argv = ["run", str(scenario), "--strategy", "robst", "--report-dir", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "'robst' is not a known strategy" in err and "retry-same-session" in err


def test_run_through_the_command_line_entry_point(scenario, tmp_path):
    argv = ["run", str(scenario), "--strategy", "robust", "--report-dir", str(tmp_path / "out")]
    result = subprocess.run(
        [sys.executable, "-m", "harness", *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "1 passed, 0 failed" in result.stdout


# What the terminal says (issue 26, item 4)


def test_two_strategies_of_one_module_stay_told_apart_in_a_narrow_table():
    from tests.test_reports import outcome_results, terminal

    results = outcome_results()
    names = {
        "careful": "newsletter_mailer.batch:send_batch_fixed",
        "naive": "newsletter_mailer.batch:send_batch",
    }
    for strategy in results["strategies"]:
        strategy["name"] = names[strategy["name"]]
    for case in results["cases"]:
        case["strategy"] = names[case["strategy"]]

    table = terminal(results, width=80)

    rows = [
        line.split()[0] for line in table.splitlines() if re.match(r"\s+\S+\s+0\.\d{3}\s", line)
    ]
    assert len(rows) == 2 and len(set(rows)) == 2
    assert rows[0].endswith(":send_batch_fixed") and rows[1].endswith(":send_batch")


def test_brackets_in_names_and_hints_are_printed_as_they_are(
    scenario, tmp_path, capsys, monkeypatch
):
    from harness.runner import strategies

    hint = "needs boto3: pip install 'ses-fault-harness[aws]'"
    monkeypatch.setattr(strategies, "UNAVAILABLE", {"sdk-v9": hint})
    monkeypatch.setattr(
        strategies, "BUILTINS", {k: v for k, v in strategies.BUILTINS.items() if k == "robust"}
    )
    status = main(["run", str(scenario), "--report-dir", str(tmp_path / "out")])
    captured = capsys.readouterr()

    assert status == 0
    assert "left out: sdk-v9 (needs boto3: pip install 'ses-fault-harness[aws]')" in captured.err


def test_run_in_an_initd_project_says_which_suite_it_plays(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["init", "--strategy", "robust"]) == 0
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"builtin", ', ""))
    capsys.readouterr()

    assert main(["run", "--report-dir", "out"]) == 0
    err = capsys.readouterr().err

    assert "()" not in err
    assert "the suite of pyproject.toml [tool.ses-harness]: 1 scenario x 1 strategy (robust)" in err


def test_a_failure_in_the_terminal_shows_what_a_correct_client_does(tmp_path, capsys):
    path = tmp_path / "wrong.toml"
    path.write_text(SCENARIO.replace("delivered_once = 5", "delivered_once = 12"))
    assert main(["run", str(path), "--strategy", "naive", "--report-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out

    assert "  what a correct client does here:\n    12 of 12.\n  reproduce: " in out
    assert "  given up: reported failed after transient refusals only (1):" in out
    assert "  never sent: the client never tried it (6):" in out


OWN = '''
from harness.runner.strategy import Claim, ClaimStatus


def send_batch(messages, endpoint, clock):
    """Claims everything sent, sends nothing."""
    for message in messages:
        yield Claim(message.id, ClaimStatus.SENT)
'''


def test_run_plays_a_strategy_the_file_has_a_table_for(tmp_path, capsys, monkeypatch):
    (tmp_path / "liar_mail.py").write_text(OWN)
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "own.toml"
    path.write_text(SCENARIO + '\n[expect."liar_mail:send_batch"]\nsilently_lost = 0\n')

    assert main(["run", str(path), "--report-dir", str(tmp_path / "out")]) == 1
    out = capsys.readouterr().out

    assert "scenario 'tiny-cap' with strategy 'liar_mail:send_batch' failed" in out
    assert "silently_lost == 0 (actual 12)" in out
