"""Bad input everywhere a plan or scenario comes in: scenario files, `serve --plan` files (TOML and
JSON), `--fault` and `--limit` flags, and `PUT /api/plan`. Each mistake is one clear line naming
the file (or flag, or API path), the key and what is allowed; the CLI exits 2, never with a
traceback."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from aiohttp.test_utils import TestClient, TestServer

from harness import FakeSES
from harness.cli.main import main
from harness.console.app import create_app

REPO = Path(__file__).resolve().parent.parent
GOOD_PLAN: dict[str, Any] = {"profile": "ses", "seed": 1}
GOOD_RULE: dict[str, Any] = {"stage": "RCPT", "action": "reply", "code": 451, "text": "Later"}

# (plan, key, a phrase the error must hold): the same mistakes in every place a plan comes in.
BAD_PLANS = [
    ({"colour": "red"}, "colour", "allowed: profile, seed, limits, faults"),
    ({"profile": "aws"}, "profile", "allowed: ses, ses-sandbox, ses-observed-idle, plain"),
    ({"profile": 3}, "profile", "3 is not a string"),
    ({"seed": "x"}, "seed", "'x' is not an integer"),
    ({"limits": {"session_limit": 0}}, "limits.session_limit", "allowed: >= 1"),
    ({"limits": {"session_limit": "x"}}, "limits.session_limit", "'x' is not an integer"),
    ({"limits": {"rate_per_s": -1}}, "limits.rate_per_s", "allowed: > 0"),
    ({"limits": {"daily_quotaa": 5}}, "limits.daily_quotaa", "daily_quota"),
    ({"limits": {"verified": "a@example.com"}}, "limits.verified", "is not a list"),
    ({"limits": {"require_auth": "yes"}}, "limits.require_auth", "is not true or false"),
    ({"faults": {"stage": "RCPT"}}, "faults", "must be a list of tables"),
    ({"faults": [3]}, "faults[0]", "a fault rule is a table"),
    ({"faults": [{**GOOD_RULE, "code": 999}]}, "faults[0].code", "allowed: 200-599"),
    ({"faults": [{**GOOD_RULE, "code": "451"}]}, "faults[0].code", "is not an integer"),
    ({"faults": [{**GOOD_RULE, "stage": "RCPX"}]}, "faults[0].stage", "RSET"),
    ({"faults": [{**GOOD_RULE, "action": "explode"}]}, "faults[0].action", "drop_after_accept"),
    ({"faults": [{**GOOD_RULE, "action": {}}]}, "faults[0].action", "{} is not an action (allowed"),
    ({"faults": [{**GOOD_RULE, "action": []}]}, "faults[0].action", "[] is not an action (allowed"),
    ({"faults": [{"stage": "RCPT"}]}, "faults[0].action", "is required (allowed: reply"),
    ({"faults": [{"action": "drop"}]}, "faults[0].stage", "is required (allowed: CONNECT"),
    ({"faults": [{**GOOD_RULE, "colour": 1}]}, "faults[0].colour", "probability"),
    ({"faults": [{**GOOD_RULE, "delay_s": 1}]}, "faults[0].delay_s", "does not apply"),
    ({"faults": [{**GOOD_RULE, "probability": 2}]}, "faults[0].probability", "0.0-1.0"),
    ({"faults": [{**GOOD_RULE, "nth": 0}]}, "faults[0].nth", "allowed: >= 1"),
    (
        {"faults": [{"stage": "RCPT", "action": "drop_after_accept"}]},
        "faults[0].action",
        "stage = EOM",
    ),
    (
        {"faults": [{"stage": "EHLO", "attempts": 2, "action": "drop"}]},
        "faults[0].attempts",
        "stage = RCPT, EOM, API or NOTIFY",
    ),
    (
        {"faults": [GOOD_RULE, {"stage": "EOM", "action": "delay", "delay_s": -1}]},
        "faults[1].delay_s",
        "allowed: >= 0",
    ),
]
PLAN_IDS = [key for _, key, _ in BAD_PLANS]

MINIMAL = {"workload": {"count": 3}, "plan": GOOD_PLAN}
# (scenario with one mistake, key, phrase): mistakes only a scenario file can make.
BAD_SCENARIOS = [
    ({**MINIMAL, "colour": 1}, "colour", "allowed: name, description"),
    ({**MINIMAL, "name": 3}, "name", "3 is not a string"),
    ({**MINIMAL, "latency_s": "fast"}, "latency_s", "is not a number"),
    ({**MINIMAL, "timeout_s": 0}, "timeout_s", "allowed: > 0"),
    ({**MINIMAL, "timeout_s": "1h"}, "timeout_s", "is not a number"),
    ({**MINIMAL, "workload": 3}, "workload", "3 is not a table"),
    ({"workload": {"count": 3}}, "plan", "is required"),
    ({**MINIMAL, "workload": {"seed": 1}}, "workload.count", "is required"),
    ({**MINIMAL, "workload": {"count": 0}}, "workload.count", ">= 1 and <= 100,000"),
    ({**MINIMAL, "workload": {"count": 10**9}}, "workload.count", "is too large"),
    ({**MINIMAL, "workload": {"count": 2.5}}, "workload.count", "is not an integer"),
    (
        {**MINIMAL, "workload": {"count": 3, "recipients": [1, 5000]}},
        "workload.recipients",
        "1 <= min <= max <= 1,000",
    ),
    (
        {**MINIMAL, "workload": {"count": 3, "body_bytes": [1, 10**10]}},
        "workload.body_bytes",
        "out of range",
    ),
    ({**MINIMAL, "workload": {"count": 3, "unicode": 2.0}}, "workload.unicode", "0.0 to 1.0"),
    ({**MINIMAL, "workload": {"count": 3, "burst_size": 0}}, "workload.burst_size", ">= 1"),
    ({**MINIMAL, "workload": {"count": 3, "domains": []}}, "workload.domains", "a.com"),
    ({**MINIMAL, "workload": {"count": 3, "size": 5}}, "workload.size", "body_bytes"),
    ({**MINIMAL, "expect": {"robst": {"duplicated": 0}}}, "expect.robst", "naive-continue"),
    (
        {**MINIMAL, "expect": {"naive": {"delivered": 1}}},
        "expect.naive.delivered",
        "delivered_once",
    ),
    (
        {**MINIMAL, "expect": {"naive": {"duplicated": "about 0"}}},
        "expect.naive.duplicated",
        "OP one of == != >= <= > <",
    ),
    (
        {**MINIMAL, "expect": {"naive": {"duplicated": "=< 0"}}},
        "expect.naive.duplicated",
        "'=< 0' is not an expectation",
    ),
    ({**MINIMAL, "expect": {"naive": 3}}, "expect.naive", "3 is not a table"),
]


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Run `ses-harness ARGV` in this process: the exit status and what went to stderr."""
    try:
        status = main(list(argv))
    except SystemExit as exit:  # argparse's own usage errors
        status = exit.code
    captured = capsys.readouterr()
    return status, captured.err


def one_line_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The CLI refuses ARGV with exit status 2 and exactly one line on stderr."""
    status, err = cli(capsys, *argv)
    assert status == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ses-harness: ")
    return lines[0]


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """An argparse refusal: exit status 2, usage, then one line naming the flag."""
    status, err = cli(capsys, *argv)
    assert status == 2, err
    assert "Traceback" not in err and err.startswith("usage: ")
    return err.strip().splitlines()[-1]


def run_scenario(capsys: pytest.CaptureFixture[str], path: Path, tmp_path: Path) -> str:
    report_dir = tmp_path / "reports"
    error = one_line_error(capsys, "run", str(path), "--report-dir", str(report_dir))
    assert not report_dir.exists()  # nothing ran
    return error


# --- scenario files ------------------------------------------------------------------------


@pytest.mark.parametrize(("plan", "key", "phrase"), BAD_PLANS, ids=PLAN_IDS)
def test_a_bad_plan_table_in_a_scenario_names_file_key_and_allowed(
    capsys, tmp_path, plan, key, phrase
):
    path = tmp_path / "bad.toml"
    path.write_text(tomli_w.dumps({**MINIMAL, "plan": {**GOOD_PLAN, **plan}}))
    error = run_scenario(capsys, path, tmp_path)
    assert error.startswith(f"ses-harness: {path}: key 'plan.{key}': ")
    assert phrase in error


@pytest.mark.parametrize(
    ("scenario", "key", "phrase"), BAD_SCENARIOS, ids=[k for _, k, _ in BAD_SCENARIOS]
)
def test_a_bad_scenario_file_names_file_key_and_allowed(capsys, tmp_path, scenario, key, phrase):
    path = tmp_path / "bad.toml"
    path.write_text(tomli_w.dumps(scenario))
    error = run_scenario(capsys, path, tmp_path)
    assert error.startswith(f"ses-harness: {path}: key '{key}': ")
    assert phrase in error


def test_a_toml_syntax_error_gives_the_line_and_column(capsys, tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('name = "x"\n[workload\ncount = 3\n')
    error = run_scenario(capsys, path, tmp_path)
    assert error.startswith(f"ses-harness: {path}: not valid TOML: ")
    assert "(at line 2, column 10)" in error


def test_a_file_that_is_not_utf8_is_refused(capsys, tmp_path):
    path = tmp_path / "binary.toml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    error = run_scenario(capsys, path, tmp_path)
    assert error == f"ses-harness: {path}: not UTF-8 text: invalid start byte at byte 0"


@pytest.mark.parametrize(
    "text",
    ['[build-system]\nrequires = ["setuptools"]\n', "", "# only a comment\n"],
    ids=["pyproject", "empty", "comment"],
)
def test_a_toml_file_that_is_not_a_scenario_says_so(capsys, tmp_path, text):
    path = tmp_path / "pyproject.toml"
    path.write_text(text)
    error = run_scenario(capsys, path, tmp_path)
    assert error.startswith(f"ses-harness: {path}: not a scenario file: it has no [workload]")
    assert "allowed: name, description" in error


def test_a_folder_holding_a_toml_that_is_not_a_scenario_names_that_file(capsys, tmp_path):
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "a.toml").write_text(tomli_w.dumps(MINIMAL))
    (folder / "b.toml").write_text("[tool.ruff]\nline-length = 100\n")
    error = run_scenario(capsys, folder, tmp_path)
    assert error.startswith(f"ses-harness: {folder / 'b.toml'}: not a scenario file")


def test_a_missing_file_is_refused(capsys, tmp_path):
    path = tmp_path / "nope.toml"
    error = run_scenario(capsys, path, tmp_path)
    assert error.startswith(f"ses-harness: {path}: no such scenario file or folder, nor a built-in")


def test_an_empty_folder_is_refused(capsys, tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    error = run_scenario(capsys, folder, tmp_path)
    assert error == f"ses-harness: {folder}: no *.toml scenario files in this folder"


@pytest.mark.parametrize(
    ("argv", "phrase"),
    [
        (["-n", "0"], "argument -n/--workers: expected a whole number >= 1, got '0'"),
        (["--case-timeout", "0"], "argument --case-timeout: expected a number of seconds > 0"),
        (["--case-timeout", "soon"], "argument --case-timeout: expected a number of seconds"),
        (["--seed", "x"], "argument --seed: invalid int value: 'x'"),
    ],
    ids=["workers", "timeout-zero", "timeout-word", "seed"],
)
def test_bad_run_flags_are_refused_by_name(capsys, tmp_path, argv, phrase):
    path = tmp_path / "ok.toml"
    path.write_text(tomli_w.dumps(MINIMAL))
    assert phrase in usage_error(capsys, "run", str(path), *argv)


def test_the_real_command_prints_one_line_and_exits_2(tmp_path):
    """The installed entry point, not just main(): no traceback reaches the terminal."""
    path = tmp_path / "binary.toml"
    path.write_bytes(b"\x00\xff")
    result = subprocess.run(
        [sys.executable, "-m", "harness", "run", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"ses-harness: {path}: not UTF-8 text: invalid start byte at byte 1"
    ]


# --- serve: plan files, --fault, --limit -----------------------------------------------------


@pytest.mark.parametrize("suffix", [".toml", ".json"])
@pytest.mark.parametrize(("plan", "key", "phrase"), BAD_PLANS, ids=PLAN_IDS)
def test_a_bad_plan_file_names_file_key_and_allowed(capsys, tmp_path, suffix, plan, key, phrase):
    path = tmp_path / f"plan{suffix}"
    full = {**GOOD_PLAN, **plan}
    path.write_text(tomli_w.dumps(full) if suffix == ".toml" else json.dumps(full))
    error = one_line_error(capsys, "serve", "--plan", str(path))
    assert error.startswith(f"ses-harness: {path}: key '{key}': ")
    assert phrase in error


@pytest.mark.parametrize(
    ("name", "content", "phrase"),
    [
        ("plan.toml", b'profile = "ses"\nseed = \n', "not valid TOML: Invalid value (at line 2"),
        ("plan.json", b'{"faults": [', "not valid JSON: Expecting value: line 1 column 13"),
        ("plan.json", b"[1, 2]", "a plan is a table of keys, got [1, 2]"),
        ("plan.json", b"\xff", "not UTF-8 text: invalid start byte at byte 0"),
        ("plan.yaml", b"profile: ses", "unknown plan file type '.yaml' (allowed: .toml, .json)"),
    ],
    ids=["toml-syntax", "json-syntax", "json-list", "binary", "yaml"],
)
def test_a_plan_file_that_cannot_be_read_says_why(capsys, tmp_path, name, content, phrase):
    path = tmp_path / name
    path.write_bytes(content)
    error = one_line_error(capsys, "serve", "--plan", str(path))
    assert error.startswith(f"ses-harness: {path}: {phrase}")


def test_a_missing_plan_file_says_so(capsys, tmp_path):
    path = tmp_path / "nope.toml"
    error = one_line_error(capsys, "serve", "--plan", str(path))
    assert error == f"ses-harness: {path}: cannot read: No such file or directory"


@pytest.mark.parametrize(
    ("spec", "key", "phrase"),
    [
        ("stage=RCPT", "action", "is required (allowed: reply, drop, drop_after_accept"),
        ("stage=RCPT,action=reply,code=abc", "code", "'abc' is not an integer"),
        ("stage=RCPT,action=reply,code=99", "code", "allowed: 200-599"),
        ("stage=RCPX,action=drop", "stage", "allowed: CONNECT, EHLO"),
        ("stage=RCPT,action=drop,colour=red", "colour", "unknown key (allowed: action, after"),
        ("garbage", "garbage", "expected key=value (allowed: action, after"),
        ("stage=MAIL,action=drop,probability=1.5", "probability", "allowed: 0.0-1.0"),
    ],
    ids=["no-action", "code-type", "code-range", "stage", "unknown", "no-equals", "probability"],
)
def test_a_bad_fault_flag_is_named_with_its_key(capsys, spec, key, phrase):
    error = one_line_error(capsys, "serve", "--fault", "stage=EOM,action=drop", "--fault", spec)
    assert error.startswith(f"ses-harness: --fault {spec!r}: key '{key}': ")
    assert phrase in error


@pytest.mark.parametrize(
    ("limit", "key", "phrase"),
    [
        ("session_limit=0", "limits.session_limit", "0 is too small (allowed: >= 1"),
        ("session_limit=abc", "limits.session_limit", "'abc' is not an integer"),
        ("rate_per_s=-1", "limits.rate_per_s", "allowed: > 0, or leave unset"),
        ("colour=1", "limits.colour", "unknown key (allowed: api_throttle, auth_per_minute, burst"),
        ("verified=x", "limits.verified", "'x' is not a list"),
    ],
    ids=["zero", "word", "negative", "unknown", "not-a-list"],
)
def test_a_bad_limit_flag_is_named_with_its_key(capsys, limit, key, phrase):
    error = one_line_error(capsys, "serve", "--limit", limit)
    assert error.startswith(f"ses-harness: --limit: key '{key}': ")
    assert phrase in error


@pytest.mark.parametrize(
    ("argv", "phrase"),
    [
        (["--limit", "session_limit"], "argument --limit: expected KEY=VALUE, got 'session_limit'"),
        (["--port", "70000"], "argument --port: expected a port number from 0 to 65535"),
        (["--api-port", "-1"], "argument --api-port: expected a port number from 0 to 65535"),
        (["--port", "smtp"], "argument --port: expected a port number from 0 to 65535"),
        (["--auth", "nopassword"], "argument --auth: expected USER:PASS"),
        (["--profile", "aws"], "argument --profile: invalid choice: 'aws'"),
    ],
    ids=["limit-form", "port", "api-port", "port-word", "auth", "profile"],
)
def test_bad_serve_flags_are_refused_by_name(capsys, argv, phrase):
    assert phrase in usage_error(capsys, "serve", *argv)


# --- PUT /api/plan -----------------------------------------------------------------------------


def put_plans(bodies: list[bytes]) -> tuple[list[tuple[int, dict]], dict]:
    """PUT each body to /api/plan of a fresh server; the answers, then the plan in force."""

    async def scenario() -> tuple[list[tuple[int, dict]], dict]:
        ses = FakeSES(profile="plain", seed=5)
        async with ses, TestClient(TestServer(create_app(ses))) as client:
            answers = []
            for body in bodies:
                response = await client.put(
                    "/api/plan", data=body, headers={"Content-Type": "application/json"}
                )
                assert response.content_type == "application/json"
                answers.append((response.status, await response.json()))
            plan = await (await client.get("/api/plan")).json()
        return answers, plan

    return asyncio.run(scenario())


def test_every_bad_plan_over_http_is_a_400_naming_the_api_path_key_and_allowed():
    bodies = [json.dumps({**GOOD_PLAN, **plan}).encode() for plan, _, _ in BAD_PLANS]
    answers, plan_after = put_plans(bodies)
    for (status, body), (_, key, phrase) in zip(answers, BAD_PLANS, strict=True):
        assert status == 400 and body["status"] == 400, body
        assert body["error"].startswith(f"PUT /api/plan: key '{key}': "), body
        assert phrase in body["error"]
        assert body["key"] == key
        assert "\n" not in body["error"]
    assert plan_after == {"profile": "plain", "seed": 5}  # nothing changed


@pytest.mark.parametrize(
    ("body", "phrase"),
    [
        (b"", "the body is not JSON"),
        (b"profile = 'ses'", "the body is not JSON"),
        (b"\xff\xfe\xfd", "the body is not"),
        (b"[1, 2]", "PUT /api/plan: a plan is a table of keys, got [1, 2]"),
        (b"null", "PUT /api/plan: a plan is a table of keys, got None"),
    ],
    ids=["empty", "toml", "binary", "list", "null"],
)
def test_a_plan_body_that_is_not_a_json_object_is_a_400(body, phrase):
    (answer,), plan_after = put_plans([body])
    status, payload = answer
    assert status == 400 and payload["error"].startswith(phrase), payload
    assert plan_after == {"profile": "plain", "seed": 5}
