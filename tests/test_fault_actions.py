"""Each fault action at each stage it applies to, over real sockets."""

from __future__ import annotations

import smtplib
import socket

import pytest

from harness import FakeSES, Rule, VirtualClock
from tests.helpers import Replies, message, send
from tests.stepped_clock import stepped_server

# (stage, the smtplib call that reaches it from a fresh EHLO'd connection)
SESSION_STAGES = ["EHLO", "MAIL", "RCPT", "DATA", "EOM", "RSET", "NOOP", "QUIT"]


def drive_to(client: smtplib.SMTP, stage: str) -> tuple[int, bytes]:
    """Run the commands up to `stage` and return the reply to the command at `stage`."""
    if stage == "EHLO":
        return client.ehlo()
    client.ehlo()
    if stage == "RSET":
        return client.rset()
    if stage == "NOOP":
        return client.noop()
    if stage == "QUIT":
        return client.docmd("QUIT")
    reply = client.mail("app@example.com")
    if stage == "MAIL":
        return reply
    reply = client.rcpt("user@example.com")
    if stage == "RCPT":
        return reply
    if stage == "DATA":
        return client.docmd("DATA")
    return client.data(message(1))


@pytest.mark.parametrize("stage", SESSION_STAGES)
def test_reply_action_answers_with_the_arranged_code_and_text(stage):
    rule = Rule.from_dict(
        {"stage": stage, "first": 1, "action": "reply", "code": 451, "text": "4.3.0 Try later"}
    )
    with FakeSES(profile="plain", faults=[rule]) as ses:
        client = smtplib.SMTP(ses.host, ses.port)
        assert drive_to(client, stage) == (451, b"4.3.0 Try later")
        assert client.noop()[0] == 250  # not closed
        client.close()
        (fault,) = ses.ledger.faults
        assert (fault.stage, fault.source, fault.action, fault.reply) == (
            stage,
            "rule",
            "reply",
            "451 4.3.0 Try later",
        )


@pytest.mark.parametrize("stage", SESSION_STAGES)
def test_reply_with_close_hangs_up_after_the_reply(stage):
    rule = Rule.from_dict(
        {"stage": stage, "action": "reply", "code": 554, "text": "Go away", "close": True}
    )
    with FakeSES(profile="plain", faults=[rule]) as ses:
        client = smtplib.SMTP(ses.host, ses.port)
        assert drive_to(client, stage) == (554, b"Go away")
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.noop()
        session = ses.ledger.wait_for(
            lambda ledger: ledger.sessions[0].closed_by and ledger.sessions[0]
        )
        assert (session.closed_by, session.close_reason) == ("server", f"rule:{stage}:reply")


def test_a_421_reply_closes_by_default_as_rfc_5321_says():
    rule = Rule.from_spec("stage=RCPT,action=reply,code=421,text=4.4.2 Closing")
    with FakeSES(profile="plain", faults=[rule]) as ses:
        client = smtplib.SMTP(ses.host, ses.port)
        assert drive_to(client, "RCPT") == (421, b"4.4.2 Closing")
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.noop()


@pytest.mark.parametrize("stage", SESSION_STAGES)
def test_drop_closes_without_a_reply(stage):
    with FakeSES(profile="plain", faults=[Rule.from_spec(f"stage={stage},action=drop")]) as ses:
        client = smtplib.SMTP(ses.host, ses.port)
        with pytest.raises(smtplib.SMTPServerDisconnected):
            drive_to(client, stage)
        assert ses.ledger.messages == []
        (session,) = ses.ledger.sessions
        assert session.transcript[-1].direction == ">"  # the command, and no answer after it


def test_drop_at_connect_sends_no_greeting():
    with FakeSES(profile="plain", faults=[Rule.from_spec("stage=CONNECT,action=drop")]) as ses:
        raw = socket.create_connection(ses.address, timeout=5)
        assert raw.recv(100) == b""
        raw.close()


def test_reply_at_connect_replaces_the_greeting():
    rule = Rule.from_spec("stage=CONNECT,action=reply,code=554,text=No service,close=true")
    with FakeSES(profile="plain", faults=[rule]) as ses:
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            smtplib.SMTP(ses.host, ses.port)
        assert refused.value.smtp_code == 554


def test_drop_after_accept_records_the_message_but_the_client_never_sees_250():
    rule = Rule.from_spec("stage=EOM,nth=2,action=drop_after_accept")
    with FakeSES(profile="ses", faults=[rule], clock=VirtualClock()) as ses:
        client = smtplib.SMTP(ses.host, ses.port)
        send(client, 1)
        with pytest.raises(smtplib.SMTPServerDisconnected):
            send(client, 2)
        client = smtplib.SMTP(ses.host, ses.port)
        send(client, 2)  # the careless resend: now there are two copies
        client.quit()
        ids = [m.message_id for m in ses.ledger.messages]
        assert ids == ["<msg-1@test.example>", "<msg-2@test.example>", "<msg-2@test.example>"]
        assert [m.acknowledged for m in ses.ledger.messages] == [True, False, True]
        replies = [line.text for line in ses.ledger.sessions[0].transcript if line.direction == "<"]
        assert sum(r.startswith("250 Ok 0100") for r in replies) == 1


def test_delay_holds_the_reply_on_the_servers_clock():
    clock = VirtualClock()
    with FakeSES(
        profile="plain", clock=clock, faults=[Rule.from_spec("stage=MAIL,action=delay,delay_s=90")]
    ) as ses:
        client = smtplib.SMTP(ses.host, ses.port)
        before = clock.elapsed()
        send(client, 1)
        assert clock.elapsed() - before == pytest.approx(90.0)
        client.quit()
        assert len(ses.ledger.messages) == 1
        assert [f.action for f in ses.ledger.faults] == ["delay"]


def test_delay_on_a_wall_clock_holds_the_reply_on_the_loops_timer(monkeypatch):
    # A clock the server takes for the wall (its delay is a timer of its loop, as on RealClock)
    # but the test steps, so the reply comes when time passes 90 s, not when the machine is free.
    rule = Rule.from_spec("stage=NOOP,action=delay,delay_s=90")
    with (
        stepped_server(monkeypatch, profile="plain", faults=[rule]) as (ses, clock),
        socket.create_connection(ses.address, timeout=10) as raw,
    ):
        replies = Replies(raw)
        assert replies.next().startswith(b"220 ")
        raw.sendall(b"NOOP\r\n")
        ses.ledger.wait_for(lambda ledger: ledger.faults)  # the delay has begun
        clock.step(89.9)
        assert replies.nothing_yet()
        clock.step(0.2)
        assert replies.next() == b"250 OK"  # and then it proceeds
        raw.sendall(b"QUIT\r\n")
        assert replies.next().startswith(b"221")
    transcript = ses.ledger.sessions[0].transcript
    noop, reply = [line for line in transcript if line.text in ("NOOP", "250 OK")]
    assert reply.at - noop.at == pytest.approx(90.1)  # on the stepped clock
    assert [f.action for f in ses.ledger.faults] == ["delay"]


def test_stall_never_answers_and_hangs_up_after_stall_s():
    with FakeSES(
        profile="plain", faults=[Rule.from_spec("stage=DATA,action=stall,stall_s=0.05")]
    ) as ses:
        client = smtplib.SMTP(ses.host, ses.port, timeout=5)
        with pytest.raises(smtplib.SMTPServerDisconnected):
            drive_to(client, "DATA")
        assert ses.ledger.messages == []


def test_stall_without_a_limit_lasts_until_the_client_gives_up():
    with FakeSES(profile="plain", faults=[Rule.from_spec("stage=NOOP,action=stall")]) as ses:
        client = smtplib.SMTP(ses.host, ses.port, timeout=10)
        client.ehlo()
        client.sock.settimeout(0.2)  # only the stalled command is given up on so soon
        with pytest.raises((TimeoutError, smtplib.SMTPServerDisconnected)):
            client.noop()
        client.close()
        session = ses.ledger.wait_for(
            lambda ledger: ledger.sessions[0].closed_by and ledger.sessions[0]
        )
        assert session.closed_by == "client"


def test_greylisting_fails_the_first_attempts_of_each_recipient_then_accepts():
    rule = Rule.from_spec(
        "name=greylist,stage=RCPT,attempts=2,action=reply,code=451,text=4.7.1 Greylisted"
    )
    with FakeSES(profile="plain", faults=[rule]) as ses:
        client = smtplib.SMTP(ses.host, ses.port)
        codes = []
        for _ in range(3):
            client.ehlo()
            client.mail("app@example.com")
            codes.append(client.rcpt("user@example.com")[0])
            client.rset()
        client.mail("app@example.com")
        codes.append(client.rcpt("other@example.com")[0])
        client.quit()
        assert codes == [451, 451, 250, 451]


def test_rules_match_on_sender_and_recipient_patterns():
    rule = Rule.from_spec("stage=RCPT,recipient=*@blocked.test,action=reply,code=550,text=No")
    with FakeSES(profile="plain", faults=[rule]) as ses:
        client = smtplib.SMTP(ses.host, ses.port)
        client.ehlo()
        client.mail("app@example.com")
        assert client.rcpt("a@ok.test")[0] == 250
        assert client.rcpt("b@BLOCKED.test")[0] == 550
        client.quit()


def test_session_matcher_fires_only_in_that_session():
    rule = Rule.from_spec("stage=MAIL,session=2,action=reply,code=451,text=Not now")
    with FakeSES(profile="plain", faults=[rule]) as ses:
        codes = []
        for _ in range(3):
            client = smtplib.SMTP(ses.host, ses.port)
            client.ehlo()
            codes.append(client.mail("app@example.com")[0])
            client.quit()
        assert codes == [250, 451, 250]
