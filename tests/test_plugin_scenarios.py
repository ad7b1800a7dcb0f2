"""Scenario files as pytest items: `pytest scenarios/` is the CI regression suite."""

from __future__ import annotations

import pytest

CAP = """
name = "tiny-cap"
description = "five messages per session"

[workload]
count = 12
seed = 3

[plan]
profile = "ses"
seed = 3
limits = { session_limit = 5 }

[expect.naive]
delivered_once = 5

[expect.reconnect]
delivered_once_score = ">= 1.0"
duplicated = 0

[expect.naive-continue]
delivered_once_score = ">= 1.0"
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".toml", pyproject='[project]\nname = "mailer"\n')
    pytester.mkdir("scenarios")
    (pytester.path / "scenarios" / "cap.toml").write_text(CAP)
    return pytester


def test_each_scenario_and_strategy_is_one_item(project: pytest.Pytester) -> None:
    result = project.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "scenarios/cap.toml::naive",
            "scenarios/cap.toml::reconnect",
            "scenarios/cap.toml::naive-continue",
            "3 tests collected*",
        ]
    )
    assert "pyproject" not in result.stdout.str()


def test_a_missed_expectation_shows_the_trouble_and_a_reproducer(
    project: pytest.Pytester,
) -> None:
    result = project.runpytest("scenarios/")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ scenario tiny-cap, strategy naive-continue _*",
            "scenario 'tiny-cap' with strategy 'naive-continue' failed",
            "  missed its own expectations:",
            "    delivered_once_score >= 1 (actual 0.4167)",
            "  given up: reported failed after transient refusals only (7):",
            "    <*.5@example.com> 421 Connection closed by server.*",
            "  faults (1 near the trouble, of 1):",
            "    t=*s session 1 MAIL: limit 'session_limit' -> 421 *",
            "  reproduce: ses-harness run scenarios/cap.toml --strategy naive-continue",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_an_invalid_scenario_is_a_collection_error_naming_file_key_and_allowed(
    project: pytest.Pytester,
) -> None:
    (project.path / "scenarios" / "bad.toml").write_text(
        '[workload]\ncount = 5\n[plan]\nprofile = "ses"\n[expect.naive]\ndelivered_twice = 3\n'
    )
    result = project.runpytest("scenarios/")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting scenarios/bad.toml*",
            "*scenarios/bad.toml: key 'expect.naive.delivered_twice': is not a metric "
            "(allowed: messages, delivered_once,*",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_toml_files_elsewhere_are_collected_only_when_an_ini_glob_names_them(
    project: pytest.Pytester,
) -> None:
    project.mkdir("ci")
    (project.path / "ci" / "cap.scenario.toml").write_text(CAP)
    assert project.runpytest("ci", "--collect-only", "-q").ret == pytest.ExitCode.NO_TESTS_COLLECTED
    project.makeini("[pytest]\nfake_ses_scenarios = *.scenario.toml\n")
    result = project.runpytest("ci", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["ci/cap.scenario.toml::naive", "3 tests collected*"])


@pytest.mark.slow
def test_scenarios_run_in_parallel_under_xdist(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("scenarios/", "-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*reproduce: ses-harness run scenarios/cap.toml --strategy*"])


def test_the_seed_option_reseeds_scenario_items_and_their_reproducer(
    project: pytest.Pytester,
) -> None:
    result = project.runpytest("scenarios/", "-k", "naive-continue", "--fake-ses-seed", "9")
    result.assert_outcomes(failed=1, deselected=2)
    result.stdout.fnmatch_lines(
        ["  reproduce: ses-harness run scenarios/cap.toml --strategy naive-continue --seed 9"]
    )


def test_a_strategy_that_cannot_be_imported_fails_its_item_without_a_traceback(
    project: pytest.Pytester,
) -> None:
    (project.path / "scenarios" / "custom.toml").write_text(
        '[workload]\ncount = 2\n[plan]\nprofile = "plain"\n'
        '[expect."nosuch.module:send"]\nduplicated = 0\n'
    )
    result = project.runpytest("scenarios/custom.toml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*scenarios/custom.toml: strategy 'nosuch.module:send': cannot import 'nosuch.module'*"]
    )
    assert "Traceback" not in result.stdout.str()
