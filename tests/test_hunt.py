"""`ses-harness hunt`: the smallest fault schedule that breaks a strategy, its story, its replay."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.core.plan import DropAfterAccept, Stage
from harness.hunting.search import breaks, broken_classes, hunt, write_scenario
from harness.runner.matrix import run_case
from harness.runner.scenario import load_scenario

CAP_421 = "421 Connection closed by server. Maximum message count per session reached."


def _hunt(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run the command; its output with the story's line wrapping undone."""
    code = main(["hunt", *args, "--out", str(tmp_path / "scenarios" / "found.toml")])
    return code, " ".join(capsys.readouterr().out.split())


def test_hunt_finds_the_session_cap_loss_in_naive(tmp_path, capsys) -> None:
    code, out = _hunt(tmp_path, capsys, "--strategy", "naive", "--messages", "6", "--seed", "1")

    assert code == 1
    scenario = load_scenario(tmp_path / "scenarios" / "found.toml")
    assert dict(scenario.plan.limits) == {"session_limit": 1}
    assert scenario.plan.faults == ()
    # What a correct client achieves under the schedule: its contract, and naive's own table.
    bar = [
        "duplicated == 0",
        "silently_lost == 0",
        "misreported == 0",
        "given_up == 0",
        "abandoned == 0",
        "uncertain == 0",
    ]
    assert [e.expr for e in scenario.contract] == bar
    assert [e.expr for e in scenario.expectations["naive"]] == bar
    assert "session limit: 1 message per connection" in out
    assert "session 1, MAIL FROM for message 2: the server said" in out
    assert "given up" in out and "messages 3-6: never sent: the client never tried it" in out
    assert "session limit: 1 message per connection" in scenario.description

    replayed = run_case(scenario, "naive")
    assert not replayed["passed"]
    assert broken_classes(replayed) == {"given_up": 1, "abandoned": 4}
    assert replayed["messages"][1]["reply"] == CAP_421


def test_hunt_finds_the_duplicate_in_reconnect_under_drop_after_accept(
    tmp_path, capsys, pytester: pytest.Pytester
) -> None:
    code, out = _hunt(tmp_path, capsys, "--strategy", "reconnect", "--messages", "6", "--seed", "1")

    assert code == 1
    scenario = load_scenario(tmp_path / "scenarios" / "found.toml")
    (rule,) = scenario.plan.faults
    assert rule.match.stage is Stage.EOM and isinstance(rule.action, DropAfterAccept)
    assert scenario.plan.limits == {}
    assert "the server kept the message and dropped the connection before its 250" in out
    assert "the client resent it in session 2 (accepted)" in out
    assert "duplicated: 2 copies on the server (sessions 1, 2)" in out
    assert "replayed from the file: the same verdict" in out

    replayed = run_case(scenario, "reconnect")
    assert broken_classes(replayed) == {"duplicated": 1}
    # The pytest suite collects the folder and fails on the same duplicate.
    result = pytester.runpytest(str(tmp_path / "scenarios"))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*duplicated == 0 (actual 1)*", "*reproduce: ses-harness run *found.toml*"]
    )


def test_hunt_finds_nothing_in_robust_without_ambiguous_drops(tmp_path, capsys) -> None:
    code, out = _hunt(
        tmp_path,
        capsys,
        *("--strategy", "robust", "--messages", "8", "--max-examples", "100", "--seed", "3"),
        "--exclude-ambiguous",
    )

    assert code == 0
    assert "No schedule broke robust: 100 schedules drawn" in out
    assert not (tmp_path / "scenarios").exists()


def test_an_honest_uncertain_claim_breaks_robust_only_when_asked(tmp_path) -> None:
    # robust does not resend an ambiguous send: never a duplicate, never a silent loss. It
    # says it cannot know, which is honest: not a break.
    honest = hunt("robust", messages=3, max_examples=100, seed=2, path=tmp_path / "r.toml")
    assert honest.found is None

    strict = hunt(
        "robust",
        messages=3,
        max_examples=100,
        seed=2,
        path=tmp_path / "r.toml",
        strict_uncertain=True,
    )

    assert strict.found is not None
    (rule,) = strict.found.schedule.faults
    assert rule.match.stage is Stage.EOM and rule.action.kind in ("drop", "drop_after_accept")
    assert strict.found.broken == {"uncertain": 1}
    # The file it writes asks of robust what the user asked for, and of every client only
    # what a correct one achieves: never a delivered-once score of 1.0 across a cut.
    path = write_scenario(strict.found, "ses-harness hunt ...")
    scenario = load_scenario(path)
    assert "uncertain <= 1" in [e.expr for e in scenario.contract]
    assert "uncertain == 0" in [e.expr for e in scenario.expectations["robust"]]
    written = path.read_text()
    assert "delivered_once_score" not in written
    assert "may be reported uncertain instead" in scenario.best_possible
    assert "--strict-uncertain" in written


def test_the_written_contract_is_met_by_a_client_that_says_uncertain(tmp_path) -> None:
    result = hunt("reconnect", messages=6, seed=1, path=tmp_path / "scenarios" / "r.toml")
    assert result.found is not None and result.found.broken == {"duplicated": 1}
    scenario = load_scenario(write_scenario(result.found, "ses-harness hunt ..."))
    assert "uncertain <= 1" in [e.expr for e in scenario.contract]

    # robust, under the same schedule, claims the cut message uncertain: within the contract.
    played = run_case(scenario, "robust")
    assert played["held_to"] == "contract" and played["passed"], played["expectations"]
    assert played["score"]["uncertain"] == 1


def test_same_seed_same_hunt(tmp_path) -> None:
    first = hunt("reconnect", messages=6, seed=1, path=tmp_path / "a.toml")
    again = hunt("reconnect", messages=6, seed=1, path=tmp_path / "a.toml")

    assert first.found is not None and again.found is not None
    assert first.runs == again.runs
    assert first.found.schedule == again.found.schedule
    assert first.found.story == again.found.story


OPTIMIST = '''
"""Claims every message sent, whatever the server said."""
import smtplib

from harness.runner.strategy import Claim, ClaimStatus


def send_batch(messages, endpoint, clock):
    client = None
    for message in messages:
        try:
            client = client or endpoint.connect()
            client.sendmail(message.sender, list(message.recipients), message.data)
        except (smtplib.SMTPException, OSError):
            client = None
        yield Claim(message.id, ClaimStatus.SENT)
'''


def test_a_user_strategy_that_claims_too_much_is_caught_silently_losing(
    tmp_path, capsys, monkeypatch
) -> None:
    (tmp_path / "hunt_optimist.py").write_text(textwrap.dedent(OPTIMIST))
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = "hunt_optimist:send_batch"

    code, out = _hunt(tmp_path, capsys, "--strategy", spec, "--messages", "4", "--seed", "2")

    assert code == 1
    assert "session 1, MAIL FROM for message 2: the server said" in out
    assert "the client counted it sent" in out
    assert "message 2: silently lost: the client counted it sent, the server has no copy" in out
    scenario = load_scenario(tmp_path / "scenarios" / "found.toml")
    assert scenario.strategies == (spec,)
    assert set(broken_classes(run_case(scenario, spec))) == {"silently_lost"}


def test_a_bad_strategy_is_a_clear_error(tmp_path, capsys) -> None:
    assert main(["hunt", "--strategy", "nope"]) == 2
    err = capsys.readouterr().err
    assert "'nope' is not a known strategy" in err and "robust" in err

    assert main(["hunt", "--strategy", "no_such_module_here:send"]) == 2
    assert "cannot import 'no_such_module_here'" in capsys.readouterr().err


def test_a_bad_budget_is_refused_by_the_parser(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["hunt", "--strategy", "naive", "--messages", "0"])
    assert exit_.value.code == 2
    assert "0 is too small" in capsys.readouterr().err


def test_the_property_accepts_rejections_and_refuses_every_other_miss() -> None:
    def case(*classes: str, error: str | None = None) -> dict:
        return {"error": error, "messages": [{"class": c} for c in classes]}

    assert not breaks(case("delivered_once", "rejected_reported"))
    for bad in ("duplicated", "silently_lost", "misreported", "given_up", "abandoned"):
        assert breaks(case("delivered_once", bad))
    assert breaks(case("delivered_once", error="strategy raised ValueError: boom"))
    # "I cannot know" is honest; it breaks the property only when asked.
    assert not breaks(case("delivered_once", "uncertain"))
    assert breaks(case("delivered_once", "uncertain"), strict_uncertain=True)


def test_the_replay_hint_runs_the_file_from_a_folder_not_named_scenarios(tmp_path, capsys) -> None:
    found = tmp_path / "elsewhere" / "found.toml"
    (tmp_path / "test_users_own.py").write_text(
        "def test_own():\n    raise AssertionError('mine')\n"
    )
    argv = ["hunt", "--strategy", "naive", "--messages", "6", "--seed", "1", "--out", str(found)]
    assert main(argv) == 1
    out = capsys.readouterr().out
    hint = next(line.strip() for line in out.splitlines() if line.strip().startswith("pytest "))

    replay = subprocess.run(
        [sys.executable, "-m", *shlex.split(hint), "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )

    assert replay.returncode == 1, replay.stdout  # the scenario, failing until naive is fixed
    assert "found.toml::naive" in replay.stdout and "test_own" not in replay.stdout
    # Each verdict line starts with the verdict, so a wrapped line cannot read "good: given up".
    verdict = out.split("Verdict:\n")[1].split("Written to")[0]
    starts = [line for line in verdict.splitlines() if not line.startswith("    ")]
    classes = "duplicated|silently lost|misreported|uncertain|given up|never sent"
    assert starts and all(re.match(rf"  messages? [\d-]+: ({classes}):", s) for s in starts)


def test_the_run_replay_hint_fails_for_a_users_own_strategy(tmp_path, capsys, monkeypatch) -> None:
    (tmp_path / "hunt_optimist.py").write_text(textwrap.dedent(OPTIMIST))
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = "hunt_optimist:send_batch"
    path = tmp_path / "scenarios" / "found.toml"
    argv = ["hunt", "--strategy", spec, "--messages", "4", "--seed", "2", "--out", str(path)]
    assert main(argv) == 1
    out = capsys.readouterr().out
    hint = next(line.strip() for line in out.splitlines() if line.strip().startswith("ses-harness"))

    assert hint == shlex.join(["ses-harness", "run", str(path), "--strategy", spec])
    argv = shlex.split(hint)[1:]
    assert main([*argv, "--report-dir", str(tmp_path / "reports")]) == 1
    replayed = " ".join(capsys.readouterr().out.split())
    assert f"with strategy '{spec}' failed" in replayed
    assert "silently_lost == 0 (actual 2)" in replayed
    # The file's own header says the same.
    assert f"#   {hint}" in path.read_text()
