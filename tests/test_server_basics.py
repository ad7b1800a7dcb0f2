"""What the `ses` profile looks like on the wire, determinism, and the server's lifecycle."""

from __future__ import annotations

import gc
import os
import re
import smtplib
import socket
import threading

import aiosmtplib

from harness import FakeSES, Rule, VirtualClock
from harness.server.protocol import READ_SIZE
from tests.helpers import message, send

SES_ID = re.compile(
    r"^0100[0-9a-f]{12}-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}-000000$"
)


def test_ses_profile_greets_and_answers_like_ses():
    with FakeSES(profile="ses") as ses:
        client = smtplib.SMTP()
        code, banner = client.connect(ses.host, ses.port)
        assert code == 220
        assert re.fullmatch(
            rb"email-smtp\.amazonaws\.com ESMTP SimpleEmailService-d-[A-Z0-9]{9} [A-Za-z0-9]{20}",
            banner,
        )
        assert client.ehlo("client.example") == (
            250,
            b"email-smtp.amazonaws.com\n8BITMIME\nAUTH PLAIN LOGIN\nOk",
        )
        assert client.mail("app@example.com") == (250, b"Ok")
        assert client.rcpt("user@example.com") == (250, b"Ok")
        code, text = client.data(message(1))
        assert code == 250 and text.startswith(b"Ok ")
        assert SES_ID.match(text[3:].decode())
        assert client.mail("app@example.com") == (250, b"Ok")
        assert client.mail("app@example.com") == (503, b"Sender already specified.")
        assert client.quit() == (221, b"Bye")
        (record,) = ses.ledger.messages
        assert record.ses_id == text[3:].decode()
        assert (record.message_id, record.subject) == ("<msg-1@test.example>", "message 1")
        assert record.rcpt_tos == ("user@example.com",)
        assert record.data == message(1)


def run_client(seed: int) -> tuple[list, list, list]:
    """One fixed client against a server full of random faults; what the server saw."""
    faults = [
        Rule.from_spec("stage=RCPT,probability=0.2,action=reply,code=451,text=4.3.0 Busy"),
        Rule.from_spec("stage=EOM,probability=0.1,action=drop_after_accept"),
        Rule.from_spec("stage=MAIL,probability=0.1,action=reply,code=421,text=Bye now"),
    ]
    with FakeSES(
        profile="ses", seed=seed, faults=faults, clock=VirtualClock(latency_s=0.01)
    ) as ses:
        client = None
        for n in range(40):
            try:
                client = client or smtplib.SMTP(ses.host, ses.port)
                send(client, n)
            except (smtplib.SMTPException, OSError):
                client = None
        ses.ledger.wait_for(lambda ledger: all(not s.open for s in ledger.sessions[:-1]))
        transcripts = [
            [(t.at, t.direction, t.text) for t in s.transcript] for s in ses.ledger.sessions[:-1]
        ]
        return (
            transcripts,
            ses.ledger.faults,
            [(m.ses_id, m.message_id) for m in ses.ledger.messages],
        )


def test_same_seed_gives_byte_identical_transcripts_and_fault_logs():
    first, second = run_client(seed=11), run_client(seed=11)
    assert first == second
    assert len(first[1]) > 5  # the faults really fired


def test_another_seed_gives_another_schedule():
    assert run_client(seed=11)[1] != run_client(seed=12)[1]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_fifty_servers_start_and_stop_on_their_own_ports_without_leaks():
    gc.collect()
    fds_before, threads_before = open_fds(), threading.active_count()
    ports = set()
    for n in range(50):
        with FakeSES(profile="ses") as ses:
            ports.add(ses.port)
            assert ses.port != 0
            client = smtplib.SMTP(ses.host, ses.port)
            send(client, n)
            # Left open on purpose: stopping the server must close it from its side.
    gc.collect()
    assert len(ports) > 1
    assert threading.active_count() == threads_before
    assert open_fds() <= fds_before + 2  # the open smtplib clients are closed by gc above


def test_stop_closes_open_sessions_with_a_reason():
    with FakeSES(profile="ses") as ses:
        client = smtplib.SMTP(ses.host, ses.port)
        client.ehlo()
    (session,) = ses.ledger.sessions
    assert (session.closed_by, session.close_reason) == ("server", "server stopped")
    client.close()


async def test_async_api_runs_inside_a_running_loop():
    import asyncio

    tasks_before = len(asyncio.all_tasks())
    async with FakeSES(profile="ses") as ses:
        client = aiosmtplib.SMTP(hostname=ses.host, port=ses.port, start_tls=False)
        await client.connect()
        response = await client.sendmail("app@example.com", ["u@example.com"], message(7))
        assert response[1].startswith("Ok 0100")
        await client.quit()
    assert len(asyncio.all_tasks()) == tasks_before
    assert [m.message_id for m in ses.ledger.messages] == ["<msg-7@test.example>"]


def test_a_port_in_use_is_a_clear_error_not_a_hang():
    with FakeSES(profile="plain") as first:
        try:
            FakeSES(profile="plain", port=first.port).start()
        except OSError as error:
            assert "address already in use" in str(error).lower()
        else:
            raise AssertionError("a second server on the same port must not start")


def test_set_plan_changes_faults_for_the_next_commands():
    with FakeSES(profile="plain") as ses:
        client = smtplib.SMTP(ses.host, ses.port)
        assert client.noop()[0] == 250
        ses.set_plan(
            ses.plan.with_faults(Rule.from_spec("stage=NOOP,action=reply,code=452,text=Full"))
        )
        assert client.noop() == (452, b"Full")
        client.quit()


def test_reset_clears_the_ledger_and_restarts_rule_counters():
    with FakeSES(
        profile="plain", faults=[Rule.from_spec("stage=NOOP,nth=1,action=reply,code=452,text=Once")]
    ) as ses:
        client = smtplib.SMTP(ses.host, ses.port)
        assert client.noop()[0] == 452
        client.quit()
        ses.ledger.wait_for(lambda ledger: not ledger.sessions[0].open)
        ses.reset()
        assert ses.ledger.sessions == [] and ses.ledger.faults == []
        client = smtplib.SMTP(ses.host, ses.port)
        assert client.noop()[0] == 452
        client.quit()
        assert ses.ledger.sessions[0].number == 1


def test_a_client_that_has_the_221_finds_its_session_closed_in_the_ledger():
    # Closed in the ledger before the 221 is written: no waiting for the socket to close.
    with FakeSES(profile="plain") as ses:
        for _ in range(50):
            client = smtplib.SMTP(ses.host, ses.port)
            send(client, 1)
            client.quit()
            last = ses.sessions[-1]
            assert not last.open
            assert (last.closed_by, last.close_reason) == ("client", "client quit")
            assert [line.text for line in last.transcript][-2:] == ["QUIT", "221 Bye"]


def test_quit_with_an_argument_is_refused_and_the_session_goes_on():
    with FakeSES(profile="plain") as ses, smtplib.SMTP(ses.host, ses.port) as client:
        assert client.docmd("QUIT", "now") == (501, b"Syntax: QUIT")
        assert ses.sessions[0].open
        send(client, 1)
    assert ses.ledger.wait_for(lambda ledger: not ledger.sessions[0].open)


def test_a_multi_line_reply_goes_out_in_one_write():
    # One wake-up of the client per reply, not one per EHLO line (white-box: the writes of the
    # connection's own StreamWriter are counted).
    with FakeSES(profile="ses") as ses, socket.create_connection(ses.address, timeout=10) as raw:
        reader = raw.makefile("rb")
        assert reader.readline().startswith(b"220 ")
        (protocol,) = ses._state.live
        writes: list[bytes] = []
        write = protocol._writer.write
        protocol._writer.write = lambda data: (writes.append(bytes(data)), write(data))[1]
        raw.sendall(b"EHLO client.example\r\n")
        lines = [reader.readline()]
        while lines[-1][3:4] == b"-":
            lines.append(reader.readline())
    assert len(lines) == 4
    assert writes == [b"".join(lines)]


def test_a_socket_read_asks_for_less_than_an_mmap_sized_buffer():
    # asyncio's reads ask for 256 KiB, which glibc maps and unmaps on every read (three system
    # calls a command); the server's connections ask for READ_SIZE (white-box), and a message
    # larger than that still arrives whole, in several reads.
    data = message(1) + b"".join(b"%07d " % i + b"x" * 70 + b"\r\n" for i in range(4000))
    assert READ_SIZE < 128 * 1024 < len(data)
    with FakeSES(profile="plain") as ses, smtplib.SMTP(ses.host, ses.port) as client:
        (protocol,) = ses._state.live
        assert protocol.transport.max_size == READ_SIZE
        client.sendmail("app@example.com", ["user@example.com"], data)
    assert ses.ledger.messages[0].data == data
