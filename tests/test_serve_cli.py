"""`ses-harness serve` end to end, as a new user works: the command in a subprocess, mail over
smtplib, the ledger read back over the HTTP API, the plan changed over HTTP."""

from __future__ import annotations

import json
import signal
import smtplib
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli.serve import is_loopback

SESSION_CAP_TEXT = "Connection closed by server. Maximum message count per session reached."


def mail(number: int) -> bytes:
    return (
        f"From: app@example.com\r\nTo: user@example.com\r\nSubject: Hello {number}\r\n"
        f"Message-ID: <cli-{number}@example.com>\r\n\r\nMessage number {number}.\r\n"
    ).encode()


def test_banner_gives_the_real_ports_and_the_ses_behaviours(start) -> None:
    server = start("--limit", "session_limit=3", "--fault", "stage=RCPT,nth=2,action=drop")
    assert server.ready["smtp_port"] > 0
    assert server.ready["api_url"].startswith("http://127.0.0.1:")
    banner = "\n".join(server.lines)
    assert f"smtp://127.0.0.1:{server.ready['smtp_port']}" in banner
    assert "session cap 3 (421 at MAIL FROM)" in banner
    assert "rate 14/s (454 at end of data)" in banner
    assert "RCPT:drop: stage=RCPT,nth=2,action=drop" in banner
    assert f"{server.ready['api_url']}/" in banner
    assert server.ready["tls"] == "none" and server.ready["ca_file"] is None


def test_the_banner_names_the_limit_a_fast_sender_meets_first_and_it_is_so(start) -> None:
    server = start()
    banner = "\n".join(server.lines)
    assert (
        "first     a fast sender meets the send rate first: message 15 within a second gets "
        "454 (--limit rate_per_s=none switches it off)"
    ) in banner
    assert "example settings: set your account's" in banner
    refused = []
    with smtplib.SMTP(*server.smtp) as client:
        for number in range(1, 21):
            try:
                client.sendmail("app@example.com", ["user@example.com"], mail(number))
            except smtplib.SMTPDataError as error:
                refused.append((number, error.smtp_code))
    # Each message takes a few ms here, and the bucket refills meanwhile: the 15th or a little
    # later, never earlier, and long before the session cap.
    assert refused and refused[0][1] == 454 and refused[0][0] >= 15

    off = start("--limit", "rate_per_s=none")
    assert "a fast sender meets the session cap first: message 351 on one connection gets 421" in (
        "\n".join(off.lines)
    )


def test_mail_sent_with_smtplib_is_read_back_over_the_api(start) -> None:
    server = start("--profile", "plain")
    with smtplib.SMTP(*server.smtp) as client:
        client.sendmail("app@example.com", ["user@example.com"], mail(1))
        client.sendmail("app@example.com", ["user@example.com"], mail(2))
    status, messages = server.api("GET", "/api/messages")
    assert status == 200
    assert [(m["sequence"], m["message_id"]) for m in messages] == [
        (1, "<cli-1@example.com>"),
        (2, "<cli-2@example.com>"),
    ]
    status, raw = server.api("GET", "/api/messages/2/raw")
    assert status == 200 and raw.startswith(b"From: app@example.com") and b"number 2." in raw
    status, sessions = server.api("GET", "/api/sessions")
    assert [s["accepted"] for s in sessions] == [2]


def test_the_plan_changed_over_http_shows_its_fault_on_the_wire(start) -> None:
    server = start("--profile", "plain")
    with smtplib.SMTP(*server.smtp) as client:
        client.sendmail("app@example.com", ["user@example.com"], mail(1))
        status, plan = server.api("GET", "/api/plan")
        assert status == 200 and "faults" not in plan
        plan["faults"] = [
            {"name": "throttle", "stage": "EOM", "action": "reply", "code": 454,
             "text": "Throttling failure: Maximum sending rate exceeded"},
        ]  # fmt: skip
        status, _ = server.api("PUT", "/api/plan", plan)
        assert status == 200
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("app@example.com", ["user@example.com"], mail(2))
        assert refused.value.smtp_code == 454
        assert refused.value.smtp_error == b"Throttling failure: Maximum sending rate exceeded"
    status, faults = server.api("GET", "/api/faults")
    assert [(f["name"], f["stage"], f["reply"][:3]) for f in faults] == [("throttle", "EOM", "454")]


def test_sigint_prints_the_log_and_a_summary_and_exits_0(start) -> None:
    server = start("--limit", "session_limit=1", "--limit", "rate_per_s=none")
    with smtplib.SMTP(*server.smtp) as client:
        client.sendmail("app@example.com", ["user@example.com"], mail(1))
        with pytest.raises(smtplib.SMTPSenderRefused) as capped:
            client.sendmail("app@example.com", ["user@example.com"], mail(2))
    assert (capped.value.smtp_code, capped.value.smtp_error.decode()) == (421, SESSION_CAP_TEXT)
    code, output, stderr = server.stop(signal.SIGINT)
    assert code == 0, stderr
    log = output.splitlines()
    accepted = (
        f"message #1 in session 1: app@example.com -> user@example.com, {len(mail(1))} bytes, "
        "Message-ID <cli-1@example.com>, 250 0100"
    )
    assert any(accepted in line for line in log)
    assert any(
        "fault limit:session_limit in session 1 at MAIL" in line and SESSION_CAP_TEXT in line
        for line in log
    )
    assert any("session 1 from 127.0.0.1:" in line and "closed by server" in line for line in log)
    summary = output.split("stopped.", 1)[1]
    assert "sessions: 1" in summary
    assert "messages: 1 accepted" in summary
    assert "faults: 1" in summary and "limit:session_limit: 1" in summary


def test_sigterm_also_prints_the_summary_and_exits_0(start) -> None:
    server = start("--profile", "plain")
    code, output, _ = server.stop(signal.SIGTERM)
    assert code == 0
    assert "sessions: 0" in output.split("stopped.", 1)[1]


def test_the_summary_counts_the_whole_run_across_resets(start) -> None:
    server = start(
        "--profile", "plain", "--fault", "name=cut,stage=EOM,nth=1,action=drop_after_accept"
    )
    with pytest.raises(smtplib.SMTPServerDisconnected), smtplib.SMTP(*server.smtp) as client:
        client.sendmail("app@example.com", ["user@example.com"], mail(1))
    assert server.api("POST", "/api/reset")[0] == 200
    assert server.api("GET", "/api/messages")[1] == []
    with pytest.raises(smtplib.SMTPServerDisconnected), smtplib.SMTP(*server.smtp) as client:
        client.sendmail("app@example.com", ["user@example.com"], mail(2))  # nth=1 again
    code, output, _ = server.stop()
    assert code == 0
    summary = output.split("stopped.", 1)[1].strip().splitlines()
    assert summary == [
        "sessions: 2",
        "messages: 2 accepted (2 without a 250: connection cut)",
        "faults: 2",
        "  rule:cut: 2",
    ]


def test_a_plan_file_sets_limits_and_faults_and_flags_add_to_it(start, tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        'profile = "plain"\nseed = 5\n[limits]\nsession_limit = 1\n'
        '[[faults]]\nname = "greylist"\nstage = "RCPT"\nattempts = 1\naction = "reply"\n'
        'code = 451\ntext = "4.7.1 Greylisted"\n'
    )
    server = start("--plan", str(plan), "--seed", "9", "--fault", "stage=QUIT,action=drop")
    status, loaded = server.api("GET", "/api/plan")
    assert status == 200
    assert loaded["profile"] == "plain" and loaded["seed"] == 9
    assert loaded["limits"] == {"session_limit": 1}
    assert [f.get("name", f["stage"]) for f in loaded["faults"]] == ["greylist", "QUIT"]
    with smtplib.SMTP(*server.smtp) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as greylisted:
            client.sendmail("app@example.com", ["user@example.com"], mail(1))
        assert greylisted.value.recipients == {"user@example.com": (451, b"4.7.1 Greylisted")}
        client.sendmail("app@example.com", ["user@example.com"], mail(1))
        with pytest.raises(smtplib.SMTPSenderRefused) as capped:
            client.sendmail("app@example.com", ["user@example.com"], mail(2))
        assert capped.value.smtp_code == 421


def test_a_json_plan_file_works_too(start, tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"profile": "ses-sandbox", "limits": {"rate_per_s": 2}}))
    server = start("--plan", str(plan))
    assert "rate 2/s (454 at end of data)" in "\n".join(server.lines)
    assert "only verified identities" in "\n".join(server.lines)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "harness", "serve", "--port", "0", "--api-port", "0", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_a_bad_fault_flag_exits_2_naming_the_key_and_allowed_values() -> None:
    result = run_cli("--fault", "stage=MAIL,action=boom")
    assert result.returncode == 2
    assert result.stderr.startswith("ses-harness: --fault 'stage=MAIL,action=boom': key 'action'")
    assert "allowed: reply, drop, drop_after_accept, delay, stall" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_limit_flag_exits_2_naming_the_key() -> None:
    result = run_cli("--limit", "session_limt=3")
    assert result.returncode == 2
    assert "key 'limits.session_limt': unknown key" in result.stderr
    assert "session_limit" in result.stderr


def test_a_bad_plan_file_exits_2_naming_the_file_and_key(tmp_path: Path) -> None:
    plan = tmp_path / "bad.toml"
    plan.write_text('[[faults]]\nstage = "RCPT"\naction = "explode"\n')
    result = run_cli("--plan", str(plan))
    assert result.returncode == 2
    assert f"{plan}: key 'faults[0].action': 'explode' is not an action" in result.stderr


def test_a_plan_file_that_is_not_toml_exits_2(tmp_path: Path) -> None:
    plan = tmp_path / "broken.toml"
    plan.write_text("profile = \n")
    result = run_cli("--plan", str(plan))
    assert result.returncode == 2
    assert f"{plan}: not valid TOML" in result.stderr


def test_a_port_in_use_is_a_clear_error(start) -> None:
    server = start("--profile", "plain")
    result = subprocess.run(
        [sys.executable, "-m", "harness", "serve", "--api-port", "0",
         "--port", str(server.ready["smtp_port"])],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("ses-harness: cannot listen:")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("192.168.1.10", False), ("::", False), ("mail.example.com", False)],
)  # fmt: skip
def test_only_loopback_hosts_pass_without_a_warning(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
