"""SES's stateful limits on the wire: session cap, send rate, daily quota, caps, idle timeout."""

from __future__ import annotations

import smtplib
import socket

import aiosmtplib
import pytest

from harness import FakeSES, VirtualClock
from harness.core.limits import TokenBucket
from tests.helpers import Replies, message, send
from tests.stepped_clock import stepped_server

SESSION_CAP = "Connection closed by server. Maximum message count per session reached."


def test_421_closes_the_session_after_the_limit_and_a_new_session_goes_on():
    with FakeSES(profile="ses", session_limit=350, rate_per_s=None, clock=VirtualClock()) as ses:
        client = smtplib.SMTP(ses.host, ses.port)
        accepted = 0
        refusal = None
        for n in range(1000):
            try:
                send(client, n)
                accepted += 1
            except smtplib.SMTPSenderRefused as error:
                refusal = error
                break
        assert accepted == 350
        assert refusal is not None
        assert (refusal.smtp_code, refusal.smtp_error.decode()) == (421, SESSION_CAP)
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.noop()

        fresh = smtplib.SMTP(ses.host, ses.port)
        send(fresh, 1000)
        fresh.quit()

        assert len(ses.ledger.messages) == 351
        first = ses.ledger.sessions[0]
        assert (first.accepted, first.closed_by, first.close_reason) == (
            350,
            "server",
            "limit:session_limit",
        )


def test_421_at_mail_really_closes_the_socket():
    """aiosmtpd leaves a hook's 421 open; ours must hang up, so the raw socket sees EOF."""
    with FakeSES(profile="ses", session_limit=1) as ses:
        with socket.create_connection(ses.address, timeout=5) as raw:
            reader = raw.makefile("rb")
            reader.readline()
            for line in (
                b"EHLO me\r\n",
                b"MAIL FROM:<a@example.com>\r\n",
                b"RCPT TO:<b@example.com>\r\n",
                b"DATA\r\n",
            ):
                raw.sendall(line)
            raw.sendall(b"Subject: x\r\n\r\nhi\r\n.\r\nMAIL FROM:<a@example.com>\r\n")
            lines = [reader.readline() for _ in range(10)]
        assert f"421 {SESSION_CAP}\r\n".encode() in lines
        assert lines[-1] == b""  # EOF: the server closed its end


def test_send_rate_matches_the_token_bucket_on_the_virtual_clock():
    clock = VirtualClock(latency_s=0.001)
    with FakeSES(profile="ses", clock=clock, session_limit=None) as ses:
        client = smtplib.SMTP(ses.host, ses.port)
        outcomes = []
        for n in range(100):
            try:
                send(client, n)
                outcomes.append("accepted")
            except smtplib.SMTPDataError as error:
                assert (error.smtp_code, error.smtp_error.decode()) == (
                    454,
                    "Throttling failure: Maximum sending rate exceeded",
                )
                outcomes.append("throttled")
        client.quit()
        # The bucket, replayed at the times the server saw each end of data.
        bucket = TokenBucket(14.0, now=ses.sessions[0].opened_at)
        expected = [
            "accepted" if bucket.try_take(1, now=line.at) else "throttled"
            for line in ses.sessions[0].transcript
            if line.direction == ">" and line.text.endswith("bytes of message data] .")
        ]
        assert outcomes == expected
        assert outcomes.count("accepted") == len(ses.ledger.messages)
        assert 14 <= outcomes.count("accepted") < 100
        throttles = [f for f in ses.ledger.faults if f.name == "rate_per_s"]
        assert len(throttles) == outcomes.count("throttled")
        closed = ses.ledger.wait_for(lambda ledger: ledger.sessions[0].closed_by)
        assert (closed, ses.sessions[0].close_reason) == ("client", "client quit")


def test_throttled_message_is_dropped_but_the_session_is_kept():
    clock = VirtualClock()
    with FakeSES(profile="ses", clock=clock, rate_per_s=1.0) as ses:
        client = smtplib.SMTP(ses.host, ses.port)
        send(client, 1)
        with pytest.raises(smtplib.SMTPDataError) as refused:
            send(client, 2)
        assert refused.value.smtp_code == 454
        clock.sleep(1.0)
        send(client, 3)  # same connection, after a second
        client.quit()
        assert [m.message_id for m in ses.ledger.messages] == [
            "<msg-1@test.example>",
            "<msg-3@test.example>",
        ]


def test_daily_quota_counts_recipients_over_a_rolling_24_hours():
    clock = VirtualClock()
    with FakeSES(
        profile="ses", clock=clock, daily_quota=5, rate_per_s=None, idle_timeout_s=None
    ) as ses:
        client = smtplib.SMTP(ses.host, ses.port, timeout=5)
        send(client, 1, ["a@example.com", "b@example.com", "c@example.com"])  # 3 of 5
        clock.sleep(3600)
        send(client, 2, ["d@example.com", "e@example.com"])  # 5 of 5
        with pytest.raises(smtplib.SMTPDataError) as refused:
            send(client, 3)
        assert (
            refused.value.smtp_error.decode() == "Throttling failure: Daily message quota exceeded"
        )
        client.quit()
        # 24 h after the first send its 3 recipients leave the window; the later 2 do not.
        clock.sleep(24 * 3600 - 3600 + 1)
        client = smtplib.SMTP(ses.host, ses.port, timeout=5)
        send(client, 4, ["f@example.com", "g@example.com", "h@example.com"])
        with pytest.raises(smtplib.SMTPDataError):
            send(client, 5)
        client.quit()
        assert [m.message_id for m in ses.ledger.messages] == [
            "<msg-1@test.example>",
            "<msg-2@test.example>",
            "<msg-4@test.example>",
        ]


def test_concurrent_connection_cap_answers_421_instead_of_the_greeting():
    with FakeSES(profile="ses", max_connections=2) as ses:
        first = smtplib.SMTP(ses.host, ses.port)
        second = smtplib.SMTP(ses.host, ses.port)
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            smtplib.SMTP(ses.host, ses.port)
        assert refused.value.smtp_code == 421
        assert refused.value.smtp_error.decode() == "Too many concurrent SMTP connections"
        first.quit()
        ses.ledger.wait_for(lambda ledger: not ledger.sessions[0].open)
        third = smtplib.SMTP(ses.host, ses.port)
        assert third.noop()[0] == 250
        second.quit()
        third.quit()
        refused_session = ses.ledger.sessions[2]
        assert refused_session.close_reason == "limit:max_connections"


def test_recipient_cap_and_size_cap_use_the_ses_texts():
    with FakeSES(profile="ses", max_recipients=2, max_message_bytes=2000) as ses:
        client = smtplib.SMTP(ses.host, ses.port)
        with pytest.raises(smtplib.SMTPDataError) as too_many:
            send(client, 1, ["a@example.com", "b@example.com", "c@example.com"])
        assert (too_many.value.smtp_code, too_many.value.smtp_error.decode()) == (
            554,
            "Transaction failed: Recipient count exceeds 50.",
        )
        big = message(2) + (b"x" * 70 + b"\r\n") * 50  # short lines, too many of them
        with pytest.raises(smtplib.SMTPDataError) as too_large:
            client.sendmail("app@example.com", ["a@example.com"], big)
        assert (too_large.value.smtp_code, too_large.value.smtp_error.decode()) == (
            552,
            "Message is too long.",
        )
        assert client.noop()[0] == 250  # neither closes the session
        client.quit()
        assert ses.ledger.messages == []
        assert [f.name for f in ses.ledger.faults] == ["max_recipients", "max_message_bytes"]


def test_sandbox_rejects_unverified_recipients_with_the_ses_554():
    with FakeSES(profile="ses-sandbox", clock=VirtualClock()) as ses:
        client = smtplib.SMTP(ses.host, ses.port)
        send(client, 1, ["someone@example.com"])
        with pytest.raises(smtplib.SMTPDataError) as refused:
            send(client, 2, ["stranger@elsewhere.test"])
        assert refused.value.smtp_code == 554
        assert refused.value.smtp_error.decode().startswith(
            "Message rejected: Email address is not verified."
        )
        assert "stranger@elsewhere.test" in refused.value.smtp_error.decode()
        client.quit()


def test_idle_timeout_sends_an_unprompted_451_and_closes():
    with FakeSES(profile="ses", idle_timeout_s=0.2) as ses:
        with socket.create_connection(ses.address, timeout=5) as raw:
            reader = raw.makefile("rb")
            assert reader.readline().startswith(b"220 ")
            # Say nothing: the server speaks first, then hangs up.
            assert reader.readline() == b"451 4.4.2 Timeout waiting for data from client.\r\n"
            assert reader.readline() == b""
        record = ses.ledger.wait_for(
            lambda ledger: not ledger.sessions[0].open and ledger.sessions[0]
        )
        assert (record.closed_by, record.close_reason) == ("server", "limit:idle_timeout_s")


def test_every_command_restarts_the_idle_timeout(monkeypatch):
    # On a clock the test steps: the timer is the server's real one, and fires only when the
    # test moves time past it, however loaded the machine is.
    timeout_s = 1.0
    with (
        stepped_server(monkeypatch, profile="ses", idle_timeout_s=timeout_s) as (ses, clock),
        socket.create_connection(ses.address, timeout=10) as raw,
    ):
        replies = Replies(raw)
        assert replies.next().startswith(b"220 ")
        # Commands 0.9 of a timeout apart: each restarts the timer, or the second meets a 451.
        for _ in range(3):
            assert replies.command(b"NOOP").startswith(b"250 ")
            clock.step(0.9 * timeout_s)
        # Then silence: nothing at 0.99 of a timeout after the last command; past it, unprompted:
        clock.step(0.09 * timeout_s)
        assert replies.nothing_yet()
        clock.step(0.02 * timeout_s)
        assert replies.next() == b"451 4.4.2 Timeout waiting for data from client."
        assert replies.next() == b""
    record = ses.ledger.wait_for(lambda ledger: not ledger.sessions[0].open and ledger.sessions[0])
    assert (record.closed_by, record.close_reason) == ("server", "limit:idle_timeout_s")
    last_command = [line.at for line in record.transcript if line.direction == ">"][-1]
    assert record.closed_at - last_command >= timeout_s  # on the stepped clock


def test_idle_timeout_on_the_virtual_clock_answers_the_next_command():
    clock = VirtualClock()
    with FakeSES(profile="ses", clock=clock) as ses:
        client = smtplib.SMTP(ses.host, ses.port)
        send(client, 1)
        clock.sleep(10.5)  # SES's ~10 s, without waiting for it
        with pytest.raises(smtplib.SMTPSenderRefused) as stale:
            send(client, 2)
        assert (stale.value.smtp_code, stale.value.smtp_error.decode()) == (
            451,
            "4.4.2 Timeout waiting for data from client.",
        )
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.noop()
        assert len(ses.ledger.messages) == 1


def test_auth_required_before_mail_with_the_ses_530():
    with FakeSES(profile="ses", require_auth=True) as ses:
        client = smtplib.SMTP(ses.host, ses.port)
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            send(client, 1)
        assert (refused.value.smtp_code, refused.value.smtp_error.decode()) == (
            530,
            "Authentication required",
        )
        client.login("user", "secret")
        send(client, 2)
        client.quit()


async def test_aiosmtplib_sees_the_cap_too():
    async with FakeSES(profile="ses", session_limit=2) as ses:
        client = aiosmtplib.SMTP(hostname=ses.host, port=ses.port, start_tls=False)
        await client.connect()
        for n in range(2):
            await client.sendmail("app@example.com", ["u@example.com"], message(n))
        with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
            await client.sendmail("app@example.com", ["u@example.com"], message(3))
        assert refused.value.code == 421
        assert len(ses.ledger.messages) == 2
