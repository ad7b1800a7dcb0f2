"""`profile-check`: a recording of a real server held against a profile, stage by stage."""

from __future__ import annotations

import smtplib
import subprocess
import sys
from pathlib import Path

import pytest

from harness import FakeSES, SesProxy
from harness.core.errors import PlanError
from harness.core.profiles import PROFILES
from harness.core.transcript import check_profile, parse_transcript
from tests.helpers import send

HEAD = '{"transcript": "ses-harness", "version": 1, "upstream": "mx:25", "tls": "none"}\n'


def record(tmp_path: Path, messages: int, **upstream_limits: object) -> Path:
    """The ses profile's fake as the upstream, recorded through a proxy without limits."""
    path = tmp_path / "recording.jsonl"
    upstream = FakeSES(profile="ses", rate_per_s=None, **upstream_limits)
    with upstream, SesProxy(upstream.address, profile="plain", record=path) as proxy:
        with smtplib.SMTP(proxy.host, proxy.port) as client:
            for n in range(1, messages + 1):
                try:
                    send(client, n)
                except smtplib.SMTPSenderRefused:
                    break
        proxy.ledger.wait_for(lambda ledger: all(not s.open for s in ledger.sessions))
    return path


def check(path: Path, profile: str = "ses") -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "harness", "profile-check", str(path), "--profile", profile]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_the_ses_fake_recorded_matches_the_ses_profile(tmp_path: Path) -> None:
    done = check(record(tmp_path, 3))
    assert done.returncode == 0, done.stdout
    assert "no differences" in done.stdout


def test_a_server_that_closes_after_3_messages_differs_from_ses_at_the_cap(
    tmp_path: Path,
) -> None:
    path = record(tmp_path, 5, session_limit=3)
    differences = check_profile(parse_transcript(path.read_text(), source="r"), PROFILES["ses"])
    assert [(d.stage, d.kind, d.recorded, d.profile) for d in differences] == [
        ("MAIL", "behaviour", "421 after 3 messages", "421 after 350 messages")
    ]
    done = check(path)
    assert done.returncode == 1
    assert "MAIL     behaviour  recorded: 421 after 3 messages" in done.stdout
    assert "1 differences." in done.stdout


def test_the_plain_profile_differs_in_its_texts(tmp_path: Path) -> None:
    path = record(tmp_path, 1)
    differences = check_profile(parse_transcript(path.read_text(), source="r"), PROFILES["plain"])
    stages = [d.stage for d in differences]
    assert stages == sorted(stages, key=["CONNECT", "EHLO", "MAIL", "RCPT", "DATA", "EOM"].index)
    eom = next(d for d in differences if d.stage == "EOM")
    assert eom.recorded.startswith("250 Ok ") and eom.profile == "250 OK …"


def test_a_server_that_goes_on_after_its_421_is_a_behaviour_difference() -> None:
    text = HEAD + "\n".join(
        [
            '{"session": 1, "stage": "MAIL", "sent": "MAIL FROM:<a@x>"}',
            '{"session": 1, "stage": "MAIL", "code": 421, "text": "4.7.0 Busy", "last": true}',
            '{"session": 1, "stage": "RSET", "sent": "RSET"}',
            '{"session": 1, "stage": "RSET", "code": 250, "text": "Ok", "last": true}',
        ]
    )
    differences = check_profile(parse_transcript(text, source="t"), PROFILES["ses"])
    assert ("RSET", "behaviour") in [(d.stage, d.kind) for d in differences]
    assert ("MAIL", "text") in [(d.stage, d.kind) for d in differences]  # not SES's 421 text


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty: not a transcript"),
        ('{"hello": 1}', "line 1"),
        (HEAD + "{not json", "line 2"),
        (HEAD + '{"session": "one", "stage": "MAIL"}', "line 2"),
        (HEAD + '{"session": 1, "stage": "MAIL", "code": 9999, "text": "x"}', "bad reply code"),
    ],
)
def test_a_file_that_is_not_a_transcript_is_a_plan_error_naming_the_line(
    text: str, problem: str
) -> None:
    with pytest.raises(PlanError) as error:
        parse_transcript(text, source="rec.jsonl")
    assert "rec.jsonl" in str(error.value) and problem in str(error.value)


def test_the_command_exits_2_on_a_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    path.write_text('{"hello": 1}\n')
    done = check(path)
    assert done.returncode == 2
    assert done.stderr.startswith("ses-harness: ") and "Traceback" not in done.stderr
    missing = check(tmp_path / "nope.jsonl")
    assert missing.returncode == 2 and "cannot read" in missing.stderr
