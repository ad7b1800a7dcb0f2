"""`ses-harness init` in a real application: its packaging intact (before and after a run),
reports ignored, and the workflow it writes green for a good mailer and red for a broken one,
step by step, in a fresh venv against a wheel of this checkout."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from setuptools.discovery import FlatLayoutPackageFinder

from harness.cli.init import EXAMPLE_SCENARIO
from harness.cli.main import main
from tests.fresh_venv import build_wheel, make_venv, offline_env, run

PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "myapp"
version = "1.0"

[project.optional-dependencies]
test = ["pytest"]
"""

# An application's mailer as its team would write it: a new connection when SES ends one.
GOOD = """
import smtplib

from harness import Claim, ClaimStatus


def send_batch(messages, endpoint, clock):
    client = None
    for message in messages:
        for attempt in (1, 2):
            try:
                if client is None:
                    client = endpoint.connect()
                client.sendmail(message.sender, list(message.recipients), message.data)
            except smtplib.SMTPResponseException as error:
                client.close()
                client = None
                if error.smtp_code == 421 and attempt == 1:
                    continue
                yield Claim(message.id, ClaimStatus.FAILED, error.smtp_code, str(error))
            else:
                yield Claim(message.id, ClaimStatus.SENT)
            break
    if client is not None:
        client.quit()
"""

# The same mailer before the fix: one connection for the whole batch, and a 421 ends it.
BROKEN = """
import smtplib

from harness import Claim, ClaimStatus


def send_batch(messages, endpoint, clock):
    client = endpoint.connect()
    for message in messages:
        try:
            client.sendmail(message.sender, list(message.recipients), message.data)
        except smtplib.SMTPException as error:
            yield Claim(message.id, ClaimStatus.FAILED, None, str(error))
        else:
            yield Claim(message.id, ClaimStatus.SENT)
"""


def flat_app(root: Path) -> Path:
    """A flat-layout application: `myapp/` beside pyproject.toml, and a requirements file."""
    (root / "myapp").mkdir(parents=True)
    (root / "myapp" / "__init__.py").write_text("")
    (root / "myapp" / "mail.py").write_text(GOOD)
    (root / "myapp" / "old_mail.py").write_text(BROKEN)
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "requirements.txt").write_text("faker>=30\n")
    return root


def init(root: Path, *argv: str) -> None:
    assert main(["init", "--dir", str(root), *argv]) == 0


def steps(root: Path) -> list[dict]:
    return yaml.safe_load((root / ".github/workflows/ses-harness.yml").read_text())["jobs"]["mail"][
        "steps"
    ]


def test_init_leaves_a_flat_layout_one_package_and_ignores_reports(tmp_path, capsys):
    app = flat_app(tmp_path)
    init(app, "--strategy", "myapp.mail:send_batch")

    assert FlatLayoutPackageFinder.find(str(app)) == ["myapp"]  # what setuptools would build
    assert (app / ".ses-harness/scenarios/small-session-cap.toml").is_file()
    assert (app / ".gitignore").read_text().splitlines()[-1] == "/ses-harness-reports/"
    assert (app / "pyproject.toml").read_text().startswith(PYPROJECT)  # not a byte changed
    out = capsys.readouterr().out
    assert "CI installs with: python -m pip install -r requirements.txt -e '.[test]' " in out


def test_init_keeps_a_gitignore_that_ignores_the_reports(tmp_path):
    (tmp_path / ".gitignore").write_text("*.pyc\nses-harness-reports/\n")
    init(tmp_path)
    assert (tmp_path / ".gitignore").read_text() == "*.pyc\nses-harness-reports/\n"


def test_run_and_hunt_leave_a_flat_layout_one_package(tmp_path, monkeypatch):
    app = flat_app(tmp_path / "app")
    small = tmp_path / "small.toml"
    small.write_text(EXAMPLE_SCENARIO)
    monkeypatch.chdir(app)
    # Before init, as a new user tries it first: a reports/ folder here was a second package.
    assert main(["run", str(small), "--strategy", "myapp.mail:send_batch"]) == 0
    assert main(["hunt", "--strategy", "naive", "--seed", "1", "--max-examples", "20"]) == 1

    assert FlatLayoutPackageFinder.find(str(app)) == ["myapp"]
    assert (app / "ses-harness-reports/hunts/scenarios/hunt-naive-seed1.toml").is_file()
    init(app, "--strategy", "myapp.mail:send_batch")
    assert "/ses-harness-reports/" in (app / ".gitignore").read_text()


def test_the_workflow_installs_what_a_python_mailer_needs_and_no_more(tmp_path):
    app = flat_app(tmp_path)
    init(app, "--strategy", "myapp.mail:send_batch", "--install", "ses-fault-harness==0.1.0")

    runs = [s["run"].strip() for s in steps(app) if "run" in s]
    assert runs[0] == (
        "python -m pip install -r requirements.txt -e '.[test]' ses-fault-harness==0.1.0"
    )
    assert runs[1:] == [
        "ses-harness run",
        'cat ses-harness-reports/*/summary.md >> "$GITHUB_STEP_SUMMARY"',
    ]
    uses = [s["uses"] for s in steps(app) if "uses" in s]
    assert uses == ["actions/checkout@v4", "actions/setup-python@v5", "actions/upload-artifact@v4"]
    artifact = steps(app)[-1]
    assert artifact["if"] == "always()" and artifact["with"]["path"] == "ses-harness-reports/"


def test_a_node_client_brings_node_its_packages_and_libfaketime(tmp_path):
    (tmp_path / "package.json").write_text("{}")
    (tmp_path / "package-lock.json").write_text("{}")
    init(tmp_path, "--strategy", "cmd[time_scale=4]:node worker/send.js")

    found = steps(tmp_path)
    runs = [s["run"].strip() for s in found if "run" in s]
    assert "actions/setup-node@v4" in [s.get("uses") for s in found]
    assert any("apt-get install" in r and "faketime" in r for r in runs)
    assert "npm ci" in runs
    assert "python -m pip install ses-fault-harness" in runs  # no requirements, no package


def test_a_cmd_client_in_python_gets_libfaketime_but_not_node(tmp_path):
    init(tmp_path, "--strategy", "cmd:python send.py")
    found = steps(tmp_path)
    assert "actions/setup-node@v4" not in [s.get("uses") for s in found]
    assert any("faketime" in s.get("run", "") for s in found)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("built") / "wheels")


def play_steps(app: Path, env: dict[str, str]) -> list[subprocess.CompletedProcess[str]]:
    """Each `run:` step of the workflow in turn, as a runner would (bash -e), until one fails
    and then only the `if: always()` ones."""
    done = []
    failed = False
    for step in steps(app):
        if "run" not in step or (failed and step.get("if") != "always()"):
            continue
        result = run(["bash", "-e", "-c", step["run"]], cwd=app, env=env)
        done.append(result)
        failed = failed or result.returncode != 0
    return done


@pytest.mark.slow
def test_the_workflow_runs_green_for_a_good_mailer_and_red_for_a_broken_one(tmp_path, wheel):
    app = flat_app(tmp_path / "myapp-repo")
    assert run(["git", "init", "-q"], cwd=app).returncode == 0
    init(app, "--strategy", "myapp.mail:send_batch", "--install", str(wheel))
    pyproject = app / "pyproject.toml"
    # The built-in scenarios take minutes; the example init wrote is the same check in seconds.
    pyproject.write_text(pyproject.read_text().replace('"builtin", ', ""))
    summary = tmp_path / "summary.md"
    env = offline_env(make_venv(tmp_path / "venv"), wheel.parent, GITHUB_STEP_SUMMARY=str(summary))

    good = play_steps(app, env)

    assert [r.returncode for r in good] == [0, 0, 0], [r.stdout + r.stderr for r in good]
    assert "small-session-cap" in summary.read_text()
    reports = list(app.glob("ses-harness-reports/*/results.json"))
    assert reports and run(["git", "check-ignore", "-q", *map(str, reports)], app).returncode == 0
    installed = run(["python", "-c", "import myapp, harness; print(harness.__file__)"], app, env)
    assert str(tmp_path / "venv") in installed.stdout  # the wheel's, not this checkout's

    pyproject.write_text(pyproject.read_text().replace("myapp.mail:", "myapp.old_mail:"))
    broken = play_steps(app, env)

    assert [r.returncode for r in broken] == [0, 1, 0], [r.stdout + r.stderr for r in broken]
    assert "missed the scenario's contract" in broken[1].stdout
    assert "myapp.old_mail:send_batch" in summary.read_text().split("small-session-cap")[-1]


def test_a_wheel_on_this_machine_is_flagged_for_ci(tmp_path, capsys):
    init(tmp_path, "--install", "/home/me/ses_fault_harness-0.1.0-py3-none-any.whl")
    assert "is a path on this machine, not on a CI runner" in capsys.readouterr().out

    (tmp_path / "other").mkdir()
    init(tmp_path / "other", "--install", "vendor/ses_fault_harness-0.1.0-py3-none-any.whl")
    assert "not on a CI runner" not in capsys.readouterr().out
