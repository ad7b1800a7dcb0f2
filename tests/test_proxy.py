"""`ses-harness proxy` / `SesProxy` in front of real servers nobody here wrote (maildev from
npm, Postfix's smtp-sink from Debian), and in front of the fake itself where TLS and AUTH are
the point. Each test asserts on the upstream's own side where it lets us read it."""

from __future__ import annotations

import contextlib
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import FakeSES, Rule, SesProxy
from harness.base.records import ClientLine, ServerLine, UpstreamCommand, UpstreamReply
from harness.server.tls import shared_certificates
from tests.helpers import message, send
from tests.serve_process import ServeProcess
from tests.upstreams import (
    maildev,
    maildev_missing,
    postfix,
    postfix_missing,
    smtp_sink,
    smtp_sink_missing,
)

needs_maildev = pytest.mark.skipif(bool(maildev_missing()), reason=str(maildev_missing()))
needs_sink = pytest.mark.skipif(bool(smtp_sink_missing()), reason=str(smtp_sink_missing()))
needs_postfix = pytest.mark.skipif(bool(postfix_missing()), reason=str(postfix_missing()))
UNLIMITED = {"rate_per_s": None, "daily_quota": None}


def sent_upstream(proxy: SesProxy, stage: str) -> list[UpstreamCommand]:
    return [
        line
        for session in proxy.sessions
        for line in session.transcript
        if isinstance(line, UpstreamCommand) and line.stage == stage
    ]


@needs_maildev
def test_400_messages_on_one_connection_meet_the_421_at_351_and_maildev_holds_350(
    tmp_path: Path,
) -> None:
    record = tmp_path / "maildev.jsonl"
    with (
        maildev() as upstream,
        SesProxy(
            ("127.0.0.1", upstream.port), session_limit=350, record=record, **UNLIMITED
        ) as proxy,
    ):
        delivered, refusal = 0, None
        with smtplib.SMTP(proxy.host, proxy.port) as client:
            for n in range(1, 401):
                try:
                    send(client, n)
                except smtplib.SMTPSenderRefused as error:
                    refusal = (n, error.smtp_code, error.smtp_error)
                    break
                delivered += 1
        proxy.ledger.wait_for(lambda ledger: not ledger.sessions[0].open)
        emails = upstream.emails(at_least=350)
        session = proxy.sessions[0]
        lines = session.transcript

    assert refusal is not None and refusal[:2] == (351, 421)
    assert refusal[2].startswith(b"Connection closed by server. Maximum message count")
    assert delivered == 350
    # Upstream's side: each of the 350 exactly once, none of the rest.
    ids = Counter(email["messageId"].strip("<>") for email in emails)
    assert ids == Counter(f"msg-{n}@test.example" for n in range(1, 351))
    # The proxy's ledger: the same 350, and both sides of the conversation.
    assert len(proxy.messages) == 350
    assert session.close_reason == "limit:session_limit"
    assert any(isinstance(line, ClientLine) and line.verb == "EOM" for line in lines)
    assert any(isinstance(line, UpstreamCommand) and line.stage == "EOM" for line in lines)
    queued = [line for line in lines if isinstance(line, UpstreamReply) and line.stage == "EOM"]
    assert queued and all(line.code == 250 for line in queued)
    back = [
        line for line in lines if isinstance(line, ServerLine) and line.decided_by == "upstream"
    ]
    assert {line.message for line in back} >= {queued[-1].message}
    cap = [line for line in lines if isinstance(line, ServerLine) and line.code == 421]
    assert [line.decided_by for line in cap] == ["limit:session_limit"]
    # Nothing of the 351st transaction reached the upstream: its MAIL FROM was the plan's.
    assert lines.index(cap[0]) > max(
        n
        for n, line in enumerate(lines)
        if isinstance(line, UpstreamCommand) and line.stage == "MAIL"
    )

    checked = subprocess.run(
        [sys.executable, "-m", "harness", "profile-check", str(record), "--profile", "ses"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 1, checked.stderr
    out = checked.stdout
    assert "1 sessions" in out
    assert "CONNECT  text       recorded: 220 " in out  # maildev's greeting is not SES's
    assert "EOM      text       recorded: 250 Message queued as" in out
    assert "and 349 more like it" in out  # one difference, not 350
    assert "Traceback" not in checked.stderr


@needs_postfix
def test_postfixs_own_limits_come_back_through_the_proxy_and_profile_check_names_them(
    tmp_path: Path,
) -> None:
    record = tmp_path / "postfix.jsonl"
    limits = {"smtpd_recipient_limit": "3", "smtpd_client_message_rate_limit": "4"}
    with (
        postfix(**limits, anvil_rate_time_unit="3600s") as upstream,
        SesProxy(("127.0.0.1", upstream.port), record=record, **UNLIMITED) as proxy,
    ):
        with smtplib.SMTP(proxy.host, proxy.port) as client:
            refused = send(client, 1, [f"user{n}@example.com" for n in range(5)])
            for n in (2, 3, 4):
                send(client, n)
            with pytest.raises(smtplib.SMTPSenderRefused) as throttled:
                send(client, 5)
        held = upstream.message_ids(at_least=4)
        assert [m.message_id for m in proxy.messages] == [
            f"<msg-{n}@test.example>" for n in range(1, 5)
        ]
    # Postfix's replies, as it said them, at the stage it said them.
    assert refused == {
        "user3@example.com": (452, b"4.5.3 Error: too many recipients"),
        "user4@example.com": (452, b"4.5.3 Error: too many recipients"),
    }
    assert (throttled.value.smtp_code, throttled.value.smtp_error) == (
        450,
        b"4.7.1 Error: too much mail from 127.0.0.1",
    )
    assert held == [f"<msg-{n}@test.example>" for n in range(1, 5)]  # each once, upstream
    checked = subprocess.run(
        [sys.executable, "-m", "harness", "profile-check", str(record)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = checked.stdout
    assert "RCPT     behaviour  recorded: refused recipient 4 (452 4.5.3" in out
    assert (
        "refuses a message of more than 50 recipients at the end of its data: "
        "554 Transaction failed: Recipient count exceeds 50." in out
    )
    assert "MAIL     code       recorded: 450 4.7.1 Error: too much mail from 127.0.0.1" in out


@needs_sink
def test_the_upstreams_refusal_goes_back_and_nothing_is_recorded_accepted() -> None:
    with smtp_sink("-f", ".") as upstream, SesProxy(("127.0.0.1", upstream.port)) as proxy:
        with (
            smtplib.SMTP(proxy.host, proxy.port) as client,
            pytest.raises(smtplib.SMTPDataError) as refused,
        ):
            send(client, 1)
        assert (refused.value.smtp_code, refused.value.smtp_error) == (
            500,
            b"5.3.0 Error: command failed",
        )
        assert proxy.messages == []
        line = next(
            line
            for line in proxy.sessions[0].transcript
            if isinstance(line, ServerLine) and line.code == 500
        )
        assert line.decided_by == "upstream"


@needs_sink
def test_the_plans_454_at_end_of_data_is_not_relayed_and_the_next_message_is() -> None:
    with (
        smtp_sink() as upstream,
        SesProxy(
            ("127.0.0.1", upstream.port),
            faults=[
                Rule.from_spec("stage=EOM,nth=1,action=reply,code=454,text=Throttling failure")
            ],
        ) as proxy,
    ):
        with smtplib.SMTP(proxy.host, proxy.port) as client:
            with pytest.raises(smtplib.SMTPDataError) as throttled:
                send(client, 1)
            send(client, 2)
        assert throttled.value.smtp_code == 454
        assert [m.message_id for m in proxy.messages] == ["<msg-2@test.example>"]
        assert len(sent_upstream(proxy, "EOM")) == 1
        dumped = upstream.messages()
    assert len(dumped) == 1 and b"Message-ID: <msg-2@test.example>" in dumped[0]


@needs_sink
def test_a_rule_at_rcpt_answers_without_relaying_the_recipient() -> None:
    rule = Rule.from_spec("stage=RCPT,nth=1,action=reply,code=451,text=4.3.0 Try later")
    with smtp_sink() as upstream, SesProxy(("127.0.0.1", upstream.port), faults=[rule]) as proxy:
        with smtplib.SMTP(proxy.host, proxy.port) as client:
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                send(client, 1)
            send(client, 2)
        assert len(sent_upstream(proxy, "RCPT")) == 1  # only message 2's
        assert len(upstream.messages()) == 1


@needs_sink
def test_drop_after_accept_relays_then_cuts_the_client_before_the_250() -> None:
    rule = Rule.from_spec("stage=EOM,nth=1,action=drop_after_accept")
    with smtp_sink() as upstream, SesProxy(("127.0.0.1", upstream.port), faults=[rule]) as proxy:
        client = smtplib.SMTP(proxy.host, proxy.port)
        with pytest.raises(smtplib.SMTPServerDisconnected):
            send(client, 1)
        client.close()
        proxy.ledger.wait_for(lambda ledger: not ledger.sessions[0].open)
        assert [m.acknowledged for m in proxy.messages] == [False]
        upstream_said = [
            line
            for line in proxy.sessions[0].transcript
            if isinstance(line, UpstreamReply) and line.stage == "EOM"
        ]
        assert [line.code for line in upstream_said] == [250]
        assert len(upstream.messages()) == 1


@needs_sink
def test_delay_holds_the_client_then_relays() -> None:
    rule = Rule.from_spec("stage=MAIL,nth=1,action=delay,delay_s=0.2")
    with smtp_sink() as upstream, SesProxy(("127.0.0.1", upstream.port), faults=[rule]) as proxy:
        with smtplib.SMTP(proxy.host, proxy.port) as client:
            send(client, 1)
        assert [f.action for f in proxy.faults] == ["delay"]
        assert len(upstream.messages()) == 1


@needs_sink
def test_the_upstreams_421_goes_back_and_ends_the_session() -> None:
    with smtp_sink("-Q", "RCPT") as upstream, SesProxy(("127.0.0.1", upstream.port)) as proxy:
        client = smtplib.SMTP(proxy.host, proxy.port)
        with client, pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            send(client, 1)
        proxy.ledger.wait_for(lambda ledger: not ledger.sessions[0].open)
        [(code, _)] = refused.value.recipients.values()
        assert code == 421
        assert proxy.sessions[0].close_reason.startswith("upstream: 421")


@needs_sink
def test_a_client_waiting_for_a_slow_upstream_is_not_idle() -> None:
    # The upstream takes 2 s to answer MAIL FROM; the plan's idle timeout is 1 s. Without the
    # proxy's care the client, waiting for that reply, got SES's unprompted 451.
    with (
        smtp_sink("-W", "MAIL:2") as upstream,
        SesProxy(("127.0.0.1", upstream.port), idle_timeout_s=1.0) as proxy,
    ):
        with smtplib.SMTP(proxy.host, proxy.port) as client:
            send(client, 1)
        assert len(proxy.messages) == 1
        assert [f.name for f in proxy.faults] == []


@needs_sink
def test_a_client_that_leaves_mid_command_cuts_the_upstream_and_nothing_breaks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with smtp_sink("-W", "MAIL:1") as upstream, SesProxy(("127.0.0.1", upstream.port)) as proxy:
        with socket.create_connection(proxy.address) as raw:
            raw.recv(1024)  # the greeting
            raw.sendall(b"EHLO me\r\nMAIL FROM:<a@example.com>\r\n")
            raw.recv(1024)  # the EHLO reply; MAIL FROM's is 1 s away at the upstream
        proxy.ledger.wait_for(lambda ledger: not ledger.sessions[0].open)
        with smtplib.SMTP(proxy.host, proxy.port) as client:
            send(client, 1)
        assert len(upstream.messages()) == 1
    assert [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")] == []


def test_starttls_to_the_upstream_verified_and_the_clients_auth_relayed() -> None:
    ca = shared_certificates().ca_file
    upstream = FakeSES(profile="plain", tls="starttls", auth=("alice", "s3cret"))
    with (
        upstream,
        SesProxy(
            upstream.address, upstream_tls="starttls", upstream_ca_file=ca, tls="starttls"
        ) as proxy,
    ):
        with smtplib.SMTP(proxy.host, proxy.port) as client:
            client.starttls(context=ssl.create_default_context(cafile=ca))
            with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
                client.login("alice", "wrong")
            client.login("alice", "s3cret")
            send(client, 1)
        assert refused.value.smtp_code == 535
        assert refused.value.smtp_error == b"5.7.8 Authentication credentials invalid"
        assert [m.message_id for m in upstream.messages] == ["<msg-1@test.example>"]
        assert upstream.sessions[0].tls and upstream.sessions[0].user == "alice"
        assert proxy.sessions[0].user == "alice"


def test_the_proxy_logs_in_with_its_own_credentials_over_implicit_tls() -> None:
    ca = shared_certificates().ca_file
    upstream = FakeSES(profile="plain", tls="implicit", auth=("relay", "pw"))
    with (
        upstream,
        SesProxy(
            upstream.address,
            upstream_tls="implicit",
            upstream_ca_file=ca,
            upstream_auth=("relay", "pw"),
        ) as proxy,
    ):
        with smtplib.SMTP(proxy.host, proxy.port) as client:
            send(client, 1)
        assert len(upstream.messages) == 1
        assert upstream.sessions[0].user == "relay"
        shown = [line.text for line in sent_upstream(proxy, "AUTH")]
        assert shown == ["AUTH PLAIN ****"]  # the secret stays out of the ledger


def test_an_untrusted_upstream_certificate_is_a_421_naming_it() -> None:
    upstream = FakeSES(profile="plain", tls="starttls")
    with upstream, SesProxy(upstream.address, upstream_tls="starttls") as proxy:  # system CAs
        client = smtplib.SMTP(proxy.host, proxy.port)
        with client, pytest.raises(smtplib.SMTPSenderRefused) as refused:
            send(client, 1)
        assert refused.value.smtp_code == 421
        assert b"certificate not trusted" in refused.value.smtp_error
        assert upstream.messages == []


def test_an_upstream_that_is_gone_is_a_421_not_a_hang() -> None:
    with FakeSES(profile="plain") as gone:
        address = gone.address
    with SesProxy(address) as proxy, smtplib.SMTP(proxy.host, proxy.port) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            send(client, 1)
        assert refused.value.smtp_code == 421
        assert b"cannot reach" in refused.value.smtp_error


@contextlib.contextmanager
def scripted_upstream(*replies: bytes) -> Iterator[tuple[str, int]]:
    """A server that sends `replies` one per line it reads (the first before reading), then
    goes silent until the other side closes: a misbehaving upstream."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with contextlib.suppress(OSError):
            connection, _ = listener.accept()
            with connection:
                reader = connection.makefile("rb")
                for reply in replies:
                    connection.sendall(reply)
                    if not reader.readline():
                        return
                while reader.readline():  # silent, until the proxy gives up
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()
    finally:
        listener.close()
        thread.join(30)


@pytest.mark.parametrize(
    ("replies", "reason"),
    [
        ((b"HTTP/1.1 400 Bad Request\r\n",), b"answered with a line that is not SMTP"),
        ((b"220 ok\r\n", b"250-a\r\n" + b"x" * 20000 + b"\r\n"), b"a line longer than 8,192"),
        ((b"220 ok\r\n",), b"no reply within 0.5 s"),
        ((b"554 go away\r\n",), b"answered CONNECT with 554 go away"),
    ],
)
def test_a_misbehaving_upstream_is_a_421_naming_it(
    replies: tuple[bytes, ...], reason: bytes
) -> None:
    with scripted_upstream(*replies) as address, SesProxy(address, upstream_timeout_s=0.5) as proxy:
        client = smtplib.SMTP(proxy.host, proxy.port)
        with client, pytest.raises(smtplib.SMTPSenderRefused) as refused:
            send(client, 1)
        assert refused.value.smtp_code == 421
        assert reason in refused.value.smtp_error
        proxy.ledger.wait_for(lambda ledger: not ledger.sessions[0].open)
        assert proxy.sessions[0].close_reason.startswith("upstream: ")


def test_the_cli_proxy_shows_both_sides_over_its_api(tmp_path: Path) -> None:
    record = tmp_path / "rec.jsonl"
    with FakeSES(profile="plain") as upstream:
        proxy = ServeProcess(
            "--upstream", f"127.0.0.1:{upstream.port}", "--record", str(record), subcommand="proxy"
        )
        try:
            assert any(line.startswith("  upstream  127.0.0.1:") for line in proxy.lines)
            with smtplib.SMTP(*proxy.smtp) as client:
                client.sendmail("app@example.com", ["user@example.com"], message(1))
            status, session = proxy.api("GET", "/api/sessions/1")
            ses_api, _ = proxy.api("POST", "/v2/email/outbound-emails", {"Content": {}})
        finally:
            proxy.stop()
        assert status == 200
        assert ses_api == 404  # SMTP only: an API message would never reach the upstream
        assert not any(line.startswith("  SES API") for line in proxy.lines)
        directions = Counter(item.get("direction") for item in session["conversation"])
        assert directions["»"] and directions["«"] and directions[">"] and directions["<"]
        assert len(upstream.messages) == 1
    assert record.read_text().startswith('{"transcript": "ses-harness"')


def test_proxy_refuses_a_bad_upstream_with_exit_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness", "proxy", "--upstream", "example.com"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "ses-harness proxy: --upstream: expected HOST:PORT (e.g. 127.0.0.1:25), got 'example.com'"
    )


@needs_sink
@pytest.mark.slow
def test_the_proxy_benchmark_runs_and_prints_its_ratios() -> None:
    bench = Path(__file__).resolve().parent.parent / "bench" / "proxy_overhead.py"
    tiny = ["--messages", "20", "--sessions", "1", "--commands", "5", "--rounds", "1"]
    done = subprocess.run(
        [sys.executable, str(bench), *tiny],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "the proxy adds" in done.stdout and "proxy / direct" in done.stdout
