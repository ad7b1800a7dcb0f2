"""Scenario files: the built-in ones load and ship with the package; bad ones say what is wrong."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness import PlanError
from harness.runner.scenario import builtin_scenarios, load_scenario, scenario_paths
from harness.runner.strategies import BUILTINS, UNAVAILABLE

REPO = Path(__file__).resolve().parent.parent
MINIMAL = '[workload]\ncount = 3\n[plan]\nprofile = "ses"\n'


def test_there_are_nine_or_more_builtin_scenarios_with_unique_names():
    scenarios = [load_scenario(p) for p in builtin_scenarios()]
    assert len(scenarios) >= 9
    assert len({s.name for s in scenarios}) == len(scenarios)


@pytest.mark.parametrize("path", builtin_scenarios(), ids=lambda p: p.stem)
def test_each_builtin_scenario_explains_itself_and_expects_something_of_every_strategy(path):
    scenario = load_scenario(path)
    assert scenario.description and scenario.best_possible
    assert set(scenario.strategies) == set(BUILTINS) | set(UNAVAILABLE)  # sdk-*: aws extra
    for strategy in scenario.strategies:
        metrics = {e.metric for e in scenario.expectations[strategy]}
        assert "duplicated" in metrics
        assert metrics & {"delivered_once", "delivered_once_score"}


def test_builtin_scenarios_are_found_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert [p.name for p in builtin_scenarios()] == sorted(
        p.name for p in (REPO / "scenarios").glob("*.toml")
    )


def test_a_built_package_carries_the_scenarios_and_finds_them(tmp_path):
    """What a wheel holds (build_py's output) finds its scenarios without the repository."""
    if not (REPO / "pyproject.toml").exists():
        pytest.skip("needs the source tree")
    build = tmp_path / "lib"
    setup = [sys.executable, "setup.py", "-q", "build_py"]  # setup.py: the long description
    subprocess.run(
        [*setup, "--build-lib", str(build)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    shipped = sorted((build / "harness" / "scenarios").glob("*.toml"))
    assert [p.name for p in shipped] == sorted(p.name for p in (REPO / "scenarios").glob("*.toml"))
    assert all(not p.is_symlink() for p in shipped)
    probe = (
        "import harness, harness.runner.scenario as s; "
        "print(harness.__file__); print(len(s.builtin_scenarios()))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={"PYTHONPATH": str(build), "PATH": ""},
        check=True,
        capture_output=True,
        text=True,
    )
    module_file, count = result.stdout.split()
    assert Path(module_file).is_relative_to(build)
    assert int(count) == len(shipped)


def test_scenario_paths_expand_folders_and_refuse_missing_files(tmp_path):
    (tmp_path / "b.toml").write_text(MINIMAL)
    (tmp_path / "a.toml").write_text(MINIMAL)
    assert [p.name for p in scenario_paths([tmp_path])] == ["a.toml", "b.toml"]
    with pytest.raises(PlanError, match="no such scenario file"):
        scenario_paths([tmp_path / "nope.toml"])


def test_a_minimal_file_gets_the_defaults(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(MINIMAL)
    scenario = load_scenario(path)
    assert scenario.name == "tiny"
    assert scenario.workload.count == 3
    assert scenario.strategies == ()


def test_expectations_read_numbers_as_equality_and_strings_as_comparisons(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text(
        MINIMAL + '[expect.robust]\ndelivered_once = 3\nefficiency = ">= 0.5"\nduplicated = "< 1"\n'
    )
    expectations = load_scenario(path).expectations["robust"]
    assert [e.expr for e in expectations] == [
        "delivered_once == 3",
        "efficiency >= 0.5",
        "duplicated < 1",
    ]
    assert [e.check(v) for e, v in zip(expectations, (3, 0.4, 0), strict=True)] == [
        True,
        False,
        True,
    ]


@pytest.mark.parametrize(
    ("text", "key", "allowed"),
    [
        ("[workload]\ncount = 3\n", "plan", None),
        ("colour = 1\n" + MINIMAL, "colour", "best_possible"),
        (MINIMAL.replace("count = 3", "count = 0"), "workload.count", ">= 1"),
        (MINIMAL.replace("count = 3", "count = 3\nsize = 4"), "workload.size", "body_bytes"),
        (
            MINIMAL.replace("count = 3", "count = 3\nrecipients = [3, 1]"),
            "workload.recipients",
            "min",
        ),
        (
            MINIMAL.replace("count = 3", "count = 3\nunicode = 2.0"),
            "workload.unicode",
            "0.0 to 1.0",
        ),
        (MINIMAL.replace("count = 3", 'count = 3\nsender = "nobody"'), "workload.sender", "local@"),
        (MINIMAL.replace('"ses"', '"sess"'), "plan.profile", "ses-sandbox"),
        (MINIMAL + "limits = { session_limit = 0 }\n", "plan.limits.session_limit", ">= 1"),
        (
            MINIMAL + '[[plan.faults]]\nstage = "RCPT"\naction = "explode"\n',
            "plan.faults[0].action",
            "drop_after_accept",
        ),
        (MINIMAL + "[expect.robst]\ndelivered_once = 1\n", "expect.robst", "naive-continue"),
        (MINIMAL + "[expect.naive]\ndelivered = 1\n", "expect.naive.delivered", "delivered_once"),
        (MINIMAL + '[expect.naive]\nduplicated = "about 0"\n', "expect.naive.duplicated", "OP"),
        ("latency_s = -1\n" + MINIMAL, "latency_s", ">= 0"),
    ],
)
def test_an_invalid_file_names_the_file_the_key_and_what_is_allowed(tmp_path, text, key, allowed):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(PlanError) as raised:
        load_scenario(path)
    error = raised.value
    assert error.source == str(path)
    assert error.key == key
    assert str(path) in str(error) and f"'{key}'" in str(error)
    if allowed is not None:
        assert allowed in (error.allowed or "")


def test_a_file_that_is_not_toml_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("name = \n")
    with pytest.raises(PlanError, match=r"broken\.toml: not valid TOML"):
        load_scenario(path)
