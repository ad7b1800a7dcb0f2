"""`serve`'s options from SES_HARNESS_<OPTION> variables (harness.cli.environment), as the image
sets them: the command line wins, repeatable options take lines and _<NAME> suffixes, a bad
value is a one-line error naming the variable."""

from __future__ import annotations

import argparse
import smtplib
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import environment, serve


def serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    return parser


def test_every_serve_option_has_a_variable_named_for_it() -> None:
    names = {environment.variable(a) for a in serve_parser()._actions} - {None}
    assert {
        "SES_HARNESS_PROFILE",
        "SES_HARNESS_LIMIT",
        "SES_HARNESS_FAULT",
        "SES_HARNESS_API_TOKEN",
        "SES_HARNESS_STORE",
        "SES_HARNESS_API_PORT",
        "SES_HARNESS_STARTTLS",
    } <= names
    assert len(names) == len(serve_parser()._actions) - 1  # all but --help


def test_repeatable_options_take_lines_then_suffixed_variables_in_name_order() -> None:
    found = environment.defaults(
        serve_parser(),
        {
            "SES_HARNESS_LIMIT": "session_limit=3\n\nrate_per_s=none\n",
            "SES_HARNESS_LIMIT_B": "daily_quota=9",
            "SES_HARNESS_LIMIT_A": "max_recipients=2",
            "SES_HARNESS_STARTTLS": "yes",
            "SES_HARNESS_TLS": "off",
            "SES_HARNESS_API_PORT": "0",
            "OTHER": "1",
        },
    )
    assert found == {
        "limit": [
            ("session_limit", 3),
            ("rate_per_s", None),
            ("max_recipients", 2),
            ("daily_quota", 9),
        ],
        "starttls": True,
        "tls": False,
        "api_port": 0,
    }


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"SES_HARNESS_PORT": "70000"}, "SES_HARNESS_PORT='70000': expected a port number"),
        ({"SES_HARNESS_PROFILE": "aws"}, "SES_HARNESS_PROFILE='aws': expected one of ses,"),
        ({"SES_HARNESS_TLS": "maybe"}, "SES_HARNESS_TLS='maybe': expected one of 1, true"),
        ({"SES_HARNESS_LIMIT": "session_limit"}, "SES_HARNESS_LIMIT='session_limit': expected"),
        (
            {"SES_HARNESS_TLS": "1", "SES_HARNESS_STARTTLS": "1"},
            "SES_HARNESS_TLS and SES_HARNESS_STARTTLS cannot both be set",
        ),
    ],
)
def test_a_bad_variable_is_one_line_naming_it(variables: dict[str, str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness", "serve"],
        env={"PATH": "/usr/bin:/bin", **variables},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"ses-harness serve: error: {message}"), done.stderr
    assert "Traceback" not in done.stderr


def test_serve_takes_profile_limits_faults_token_and_store_from_the_environment(
    start, tmp_path
) -> None:
    server = start(
        "--limit",
        "max_recipients=5",  # the command line adds to the variable's limits
        env={
            "SES_HARNESS_PROFILE": "plain",
            "SES_HARNESS_LIMIT": "session_limit=2",
            "SES_HARNESS_FAULT_RCPT": "stage=RCPT,nth=1,action=reply,code=451,text=Later",
            "SES_HARNESS_API_TOKEN": "from-env",
            "SES_HARNESS_STORE": str(tmp_path / "store"),
            "SES_HARNESS_PORT": "1",  # the command line's --port 0 wins
        },
    )
    banner = "\n".join(server.lines)
    assert "profile plain" in banner
    assert "session cap 2 (421 at MAIL FROM)" in banner
    assert "5 recipients per message" in banner
    assert "stage=RCPT,nth=1,action=reply,code=451,text=Later" in banner
    assert f"store     {tmp_path / 'store'}" in banner
    assert "?token=from-env" in banner
    assert server.ready["smtp_port"] not in (0, 1)
    with smtplib.SMTP(*server.smtp) as client:
        client.mail("app@example.com")
        assert client.rcpt("user@example.com")[0] == 451
    assert (tmp_path / "store" / "ledger.jsonl").exists()


def test_docs_container_md_lists_every_variable() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "container.md").read_text()
    names = {environment.variable(a) for a in serve_parser()._actions} - {None}
    assert sorted(name for name in names if f"`{name}`" not in doc) == []
