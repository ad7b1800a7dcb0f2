"""Providers beyond SES on the wire: Microsoft 365's connections a mailbox and its minute rate
that delays, Gmail's limits at AUTH and DATA, SendGrid's credits at AUTH and its connection cap,
and a user's own provider from a TOML file."""

from __future__ import annotations

import json
import smtplib
import socket
import subprocess
import sys
import textwrap

import pytest

from harness import PROFILES, FakeSES, PlanError, VirtualClock, load_scenario
from harness.core.evidence import Evidence
from tests.helpers import Replies
from tests.stepped_clock import stepped_server

MAILBOX = ("app@contoso.example", "app-password")


def body(n: int) -> bytes:
    return f"Message-ID: <m{n}@contoso.example>\r\nSubject: {n}\r\n\r\nhello {n}\r\n".encode()


def login(ses: FakeSES, user: str = MAILBOX[0], password: str = MAILBOX[1]) -> smtplib.SMTP:
    client = smtplib.SMTP(ses.host, ses.port, timeout=10)
    client.login(user, password)
    return client


def test_a_fourth_connection_of_one_mailbox_gets_432_and_another_mailbox_does_not():
    users = {MAILBOX[0]: MAILBOX[1], "other@contoso.example": "pw"}
    with FakeSES(profile="microsoft365", auth=users) as ses:
        first_three = [login(ses) for _ in range(3)]
        fourth = login(ses)  # AUTH itself succeeds: the limit is on sessions that submit
        for n, client in enumerate(first_three):
            client.sendmail(MAILBOX[0], ["a@example.com"], body(n))
        with pytest.raises(smtplib.SMTPDataError) as refused:
            fourth.sendmail(MAILBOX[0], ["a@example.com"], body(3))
        assert refused.value.smtp_code == 432
        assert refused.value.smtp_error.decode().startswith(
            "4.3.2 Concurrent connections limit exceeded."
        )
        other = login(ses, "other@contoso.example", "pw")  # its own three
        other.sendmail("other@contoso.example", ["a@example.com"], body(4))
        first_three[0].quit()  # one of the three leaves: the fourth is now among three
        fourth.rset()
        fourth.sendmail(MAILBOX[0], ["a@example.com"], body(5))
        for client in (*first_three[1:], fourth, other):
            client.quit()
    assert sorted(m.message_id for m in ses.messages) == [
        f"<m{n}@contoso.example>" for n in (0, 1, 2, 4, 5)
    ]
    refusals = [f for f in ses.faults if f.name == "max_connections_per_user"]
    assert [(f.session, f.stage) for f in refusals] == [(4, "EOM")]


def test_without_logins_the_sessions_are_one_mailbox_and_a_fourth_gets_432():
    # As the provider scenarios run (require_auth off): the account is the mailbox.
    with FakeSES(profile="microsoft365", require_auth=False) as ses:
        clients = [smtplib.SMTP(ses.host, ses.port, timeout=10) for _ in range(4)]
        for n, client in enumerate(clients[:3]):
            client.sendmail(MAILBOX[0], ["a@example.com"], body(n))
        with pytest.raises(smtplib.SMTPDataError) as refused:
            clients[3].sendmail(MAILBOX[0], ["a@example.com"], body(3))
        for client in clients:
            client.quit()
    assert refused.value.smtp_code == 432
    assert len(ses.messages) == 3


def test_a_31st_message_in_a_minute_is_delayed_on_the_servers_clock_not_refused(monkeypatch):
    with (
        stepped_server(monkeypatch, profile="microsoft365", auth=MAILBOX) as (ses, clock),
    ):
        client = login(ses)
        for n in range(30):
            client.sendmail(MAILBOX[0], ["a@example.com"], body(n))
        client.quit()
        with socket.create_connection(ses.address, timeout=10) as raw:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            replies = Replies(raw)
            assert replies.next().startswith(b"220 ")
            assert replies.command(b"EHLO me").startswith(b"250 ")
            assert replies.command(b"AUTH PLAIN AGFwcEBjb250b3NvLmV4YW1wbGUAYXBwLXBhc3N3b3Jk") == (
                b"235 2.7.0 Authentication successful"
            )
            assert replies.command(b"MAIL FROM:<app@contoso.example>").startswith(b"250 ")
            assert replies.command(b"RCPT TO:<a@example.com>").startswith(b"250 ")
            assert replies.command(b"DATA").startswith(b"354 ")
            raw.sendall(body(30) + b".\r\n")
            ses.ledger.wait_for(lambda ledger: ledger.faults)  # the wait has begun
            assert len(ses.messages) == 30
            clock.step(59.9)
            assert replies.nothing_yet()  # neither refused nor accepted yet
            clock.step(0.2)
            assert replies.next().startswith(b"250 2.0.0 OK ")
            assert replies.command(b"QUIT").startswith(b"221 ")
    assert len(ses.messages) == 31
    assert ses.messages[30].at - ses.messages[0].at == pytest.approx(60.0, abs=0.2)
    assert [(f.name, f.action) for f in ses.faults] == [("tarpit_per_minute", "delay")]


def test_the_minute_rate_on_a_virtual_clock_costs_no_wall_time_and_refuses_nothing():
    clock = VirtualClock()
    with FakeSES(profile="microsoft365", auth=MAILBOX, clock=clock) as ses:
        client = login(ses)
        start = clock.now()
        for n in range(65):
            client.sendmail(MAILBOX[0], ["a@example.com"], body(n))
        client.quit()
    assert len(ses.messages) == 65
    times = [m.at - start for m in ses.messages]
    assert max(times[:30]) < 1.0 and times[30] == pytest.approx(60.0, abs=1.0)
    assert times[60] == pytest.approx(120.0, abs=1.0)


def test_gmail_refuses_logins_past_its_rate_at_auth():
    with FakeSES(profile="gmail", auth=("me@gmail.com", "app-pw"), auth_per_minute=2) as ses:
        for _ in range(2):
            login(ses, "me@gmail.com", "app-pw").quit()
        client = smtplib.SMTP(ses.host, ses.port, timeout=10)
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            client.login("me@gmail.com", "app-pw")
        client.close()
    assert refused.value.smtp_code == 454
    assert refused.value.smtp_error.startswith(b"4.7.0 Too many login attempts")


def test_gmail_refuses_past_the_daily_limit_at_data_with_its_550():
    with FakeSES(profile="gmail", auth=("me@gmail.com", "app-pw"), daily_quota=2) as ses:
        client = login(ses, "me@gmail.com", "app-pw")
        assert ses.sessions[0].transcript[0].text.startswith("220 smtp.gmail.com ESMTP ")
        for n in range(2):
            client.sendmail("me@gmail.com", ["a@example.com"], body(n))
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("me@gmail.com", ["a@example.com"], body(2))
        client.close()
    assert refused.value.smtp_code == 550
    assert b"5.4.5 Daily user sending limit exceeded" in refused.value.smtp_error
    assert len(ses.messages) == 2
    assert [(f.name, f.stage) for f in ses.faults] == [("daily_quota", "DATA")]


def test_sendgrid_refuses_spent_credits_at_auth_and_caps_messages_a_connection():
    with FakeSES(profile="sendgrid", auth=("apikey", "SG.x"), session_limit=2) as ses:
        client = login(ses, "apikey", "SG.x")
        greeting = ses.sessions[0].transcript[0].text
        for n in range(2):
            client.sendmail("app@example.com", ["a@example.com"], body(n))
        with pytest.raises(smtplib.SMTPSenderRefused) as capped:
            client.sendmail("app@example.com", ["a@example.com"], body(2))
        assert capped.value.smtp_code == 421
    assert "sendgrid.net" in greeting
    with FakeSES(profile="sendgrid", auth=("apikey", "SG.x"), daily_quota=1) as ses:
        client = login(ses, "apikey", "SG.x")
        client.sendmail("app@example.com", ["a@example.com"], body(0))
        client.quit()
        client = smtplib.SMTP(ses.host, ses.port, timeout=10)
        with pytest.raises(smtplib.SMTPAuthenticationError) as spent:
            client.login("apikey", "SG.x")
        client.close()
    assert spent.value.smtp_code == 451
    assert spent.value.smtp_error == b"Authentication failed: Maximum credits exceeded"


def test_every_provider_line_and_limit_says_its_evidence():
    for profile in PROFILES.values():
        for name in profile.evidence:
            assert hasattr(profile.limits, name), (profile.name, name)
        for cite in profile.evidence.values():
            assert cite.evidence in Evidence and (cite.source or cite.evidence is Evidence.INFERRED)
    assert PROFILES["microsoft365"].evidence["tarpit_per_minute"].evidence is Evidence.DOCUMENTED
    assert PROFILES["ses"].evidence["idle_timeout_s"].evidence is Evidence.DOCUMENTED
    observed = PROFILES["ses-observed-idle"]
    assert observed.evidence["idle_timeout_s"].evidence is Evidence.USER_REPORTED
    assert (observed.limits.idle_timeout_s, observed.limits.idle_timeout_max_s) == (30.0, 90.0)


ACME = """\
name = "acme-relay"
description = "Our relay: 3 messages a connection"
base = "plain"

[limits]
session_limit = 3

[replies]
host = "smtp.acme.example"
session_cap = { code = 421, text = "4.7.0 Only 3 a connection", evidence = "documented" }

[evidence]
session_limit = "documented: https://acme.example/smtp"
"""


def test_a_users_toml_profile_runs_a_scenario(tmp_path):
    (tmp_path / "acme.toml").write_text(ACME)
    scenario = tmp_path / "acme-cap.toml"
    scenario.write_text(
        textwrap.dedent(
            """\
            name = "acme-cap"
            [workload]
            count = 7
            [plan]
            profile = "acme.toml"
            [contract]
            delivered_once = 7
            duplicated = 0
            """
        )
    )
    loaded = load_scenario(scenario)
    assert loaded.plan.profile_name == "acme-relay"
    assert loaded.plan.resolved_limits().session_limit == 3
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            str(scenario),
            "--strategy",
            "naive",
            "--strategy",
            "reconnect",
            "--report-dir",
            str(tmp_path / "reports"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1, run.stderr  # naive stops at the cap; reconnect does not
    (results,) = (tmp_path / "reports").glob("*/results.json")
    cases = {c["strategy"]: c for c in json.loads(results.read_text())["cases"]}
    assert (cases["reconnect"]["passed"], cases["naive"]["passed"]) == (True, False)
    replies = {m["reply"] for m in cases["naive"]["messages"] if m["reply"]}
    assert replies == {"421 4.7.0 Only 3 a connection"}
    with FakeSES(profile=str(tmp_path / "acme.toml")) as ses:
        client = smtplib.SMTP(ses.host, ses.port, timeout=10)
        assert client.ehlo()[1].startswith(b"smtp.acme.example")
        for n in range(3):
            client.sendmail("a@example.com", ["b@example.com"], body(n))
        with pytest.raises(smtplib.SMTPSenderRefused) as capped:
            client.sendmail("a@example.com", ["b@example.com"], body(3))
    assert capped.value.smtp_error == b"4.7.0 Only 3 a connection"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("name = 'x'\n[limits]\nsesion_limit = 3\n", "key 'limits.sesion_limit': unknown key"),
        ("name = 'x'\n[replies]\nsession_cap = 'soon'\n", "key 'replies.session_cap': 'soon'"),
        ("name = 'x'\nbase = 'yahoo'\n", "key 'base': 'yahoo' is not a built-in profile"),
        ("name = 'x'\n[evidence]\nsession_limit = 'rumoured'\n", "'rumoured' is not allowed"),
        ("description = 'no name'\n", "key 'name': is required"),
    ],
)
def test_a_bad_profile_file_gets_one_line_naming_file_and_key(tmp_path, text, says):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(PlanError) as error:
        FakeSES(profile=str(path))
    message = str(error.value)
    assert "\n" not in message and message.startswith(str(path)) and says in message


def test_run_plays_one_providers_scenarios_and_names_the_ones_there_are(capsys, tmp_path):
    from harness.cli.main import main
    from harness.runner.scenario import builtin_scenarios, provider_scenarios

    assert [p.stem for p in provider_scenarios("gmail")] == ["gmail-daily-limit"]
    assert not set(provider_scenarios()) & set(builtin_scenarios())  # not in the default run
    assert main(["run", "--provider", "yahoo"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("ses-harness: key '--provider': 'yahoo' has no scenarios (allowed:")
    assert "gmail" in error and "microsoft365" in error and "\n" not in error
    reports = str(tmp_path / "reports")
    assert (
        main(["run", "--provider", "microsoft365", "--strategy", "naive", "--report-dir", reports])
        == 0
    )
    (results,) = (tmp_path / "reports").glob("*/results.json")
    cases = json.loads(results.read_text())["cases"]
    assert sorted((case["scenario"], case["passed"]) for case in cases) == [
        ("microsoft365-connections", True),
        ("microsoft365-minute-rate", True),
    ]


def test_serve_takes_a_profile_file(tmp_path):
    from harness.cli.main import build_parser
    from harness.cli.serve import build_plan

    (tmp_path / "acme.toml").write_text(ACME)
    args = build_parser().parse_args(["serve", "--profile-file", str(tmp_path / "acme.toml")])
    plan = build_plan(args)
    assert plan.profile_name == "acme-relay" and plan.resolved_limits().session_limit == 3
    assert plan.to_dict()["profile"]["replies"]["host"] == "smtp.acme.example"


def test_the_fake_ses_marker_takes_a_profile_file_or_a_providers_name(tmp_path):
    from harness import Plan
    from harness.plugin.arrange import plan_from_marker

    (tmp_path / "acme.toml").write_text(ACME)
    plan, _ = plan_from_marker(Plan(), {"profile": str(tmp_path / "acme.toml"), "rate_per_s": 2})
    assert plan.profile_name == "acme-relay"
    assert (plan.resolved_limits().session_limit, plan.resolved_limits().rate_per_s) == (3, 2.0)
    plan, _ = plan_from_marker(Plan(), {"profile": "gmail"})
    assert plan.resolved_limits().quota_stage == "DATA"


def test_emailit_refuses_at_mail_from_and_gmail_counts_each_user_apart():
    with FakeSES(profile="emailit", auth=("key", "secret"), daily_quota=1) as ses:
        client = login(ses, "key", "secret")
        client.sendmail("app@example.com", ["a@example.com"], body(0))
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("app@example.com", ["a@example.com"], body(1))
        client.close()
    assert (refused.value.smtp_code, refused.value.smtp_error) == (
        452,
        b"4.5.3 Daily message limit exceeded",
    )
    assert [(f.name, f.stage) for f in ses.faults] == [("daily_quota", "MAIL")]
    users = {"a@gmail.com": "pw", "b@gmail.com": "pw"}
    with FakeSES(profile="gmail", auth=users, daily_quota=1) as ses:
        first = login(ses, "a@gmail.com", "pw")
        first.sendmail("a@gmail.com", ["x@example.com"], body(0))
        with pytest.raises(smtplib.SMTPDataError):
            first.sendmail("a@gmail.com", ["x@example.com"], body(1))
        second = login(ses, "b@gmail.com", "pw")
        second.sendmail("b@gmail.com", ["x@example.com"], body(2))  # a quota of its own
        first.close()
        second.quit()
    assert [m.message_id for m in ses.messages] == ["<m0@contoso.example>", "<m2@contoso.example>"]


def test_run_plays_any_scenario_against_a_profile_file_and_says_so_in_the_reproducer(tmp_path):
    from harness.cli.main import main

    (tmp_path / "acme.toml").write_text(ACME)
    scenario = tmp_path / "small.toml"
    scenario.write_text('name = "small"\n[workload]\ncount = 5\n[plan]\nprofile = "plain"\n')
    reports = tmp_path / "reports"
    profile = str(tmp_path / "acme.toml")
    argv = ["run", str(scenario), "--strategy", "naive", "--profile-file", profile]
    assert main([*argv, "--report-dir", str(reports)]) == 0  # no contract broken: none given
    (results,) = reports.glob("*/results.json")
    (case,) = json.loads(results.read_text())["cases"]
    assert case["reproducer"].endswith(f"--strategy naive --profile-file {profile}")
    assert {m["reply"] for m in case["messages"] if m["reply"]} == {"421 4.7.0 Only 3 a connection"}
