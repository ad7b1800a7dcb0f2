"""`RemoteFakeSES` against a real `ses-harness serve` process, through nothing but the client:
what a test suite whose mailer runs elsewhere (a container, another language) does."""

from __future__ import annotations

import smtplib
import threading
from collections.abc import Iterator

import pytest

from harness import Plan, RemoteFakeSES, Rule
from tests.serve_process import ServeProcess

CAP = 5
BATCH = 12


@pytest.fixture
def server() -> Iterator[ServeProcess]:
    process = ServeProcess("--profile", "ses", "--limit", f"session_limit={CAP}")
    yield process
    process.close()


def mail(number: int) -> bytes:
    return (
        f"From: app@example.com\r\nTo: user{number}@example.com\r\n"
        f"Subject: Batch {number}\r\nMessage-ID: <batch-{number}@example.com>\r\n\r\n"
        f"Message {number}.\r\n"
    ).encode()


def send_batch_reconnecting(host: str, port: int, numbers: range) -> int:
    """A careful mailer: a 421 at MAIL FROM means "reconnect and send that one again".
    Returns the number of connections it opened."""
    pending = list(numbers)
    connections = 0
    while pending:
        connections += 1
        with smtplib.SMTP(host, port) as client:
            while pending:
                number = pending[0]
                try:
                    client.sendmail("app@example.com", [f"user{number}@example.com"], mail(number))
                except smtplib.SMTPSenderRefused as refused:
                    assert refused.smtp_code == 421
                    break
                pending.pop(0)
    return connections


def test_a_batch_that_meets_the_session_cap_is_delivered_once(server: ServeProcess) -> None:
    remote = RemoteFakeSES(server.ready["api_url"])
    remote.reset()
    ids = [f"<batch-{n}@example.com>" for n in range(BATCH)]
    # The mailer runs while the test waits on the server: the wait returns when all are in.
    mailer = threading.Thread(target=send_batch_reconnecting, args=(*server.smtp, range(BATCH)))
    mailer.start()
    messages = remote.wait_for_messages(BATCH, timeout_s=30)
    mailer.join()

    assert len(messages) == BATCH
    remote.assert_delivered_once(ids)
    fired = remote.faults_fired
    assert [f.name for f in fired] == ["session_limit", "session_limit"]
    assert all(f.reply and f.reply.startswith("421") for f in fired)
    sessions = remote.sessions
    assert [s.accepted for s in sessions] == [CAP, CAP, BATCH - 2 * CAP]
    assert sessions[0].close_reason == "limit:session_limit"
    assert any(line.text.startswith("421") for line in sessions[0].transcript)
    assert {m.session for m in remote.find_messages(session=2)} == {2}
    assert [m.subject for m in remote.find_messages("subject:'batch 3'")] == ["Batch 3"]


def test_a_lost_or_duplicated_message_fails_with_the_faults_and_the_plan(
    server: ServeProcess,
) -> None:
    remote = RemoteFakeSES(server.ready["api_url"])
    send_batch_reconnecting(*server.smtp, range(3))
    send_batch_reconnecting(*server.smtp, range(1, 2))  # message 1 twice
    remote.wait_for_messages(4)
    with pytest.raises(AssertionError) as failure:
        remote.assert_delivered_once([f"<batch-{n}@example.com>" for n in range(4)])
    text = str(failure.value)
    assert "2 of 4 messages were not delivered exactly once" in text
    assert "not delivered (1, no copy on the server):\n    <batch-3@example.com>" in text
    assert "<batch-1@example.com> x2 (sessions 1, 2)" in text
    assert "curl -X PUT http://127.0.0.1:" in text  # the plan to reproduce it with
    assert '"session_limit": 5' in text
    remote.assert_delivered_once_to([f"user{n}@example.com" for n in (0, 2)])
    with pytest.raises(AssertionError, match="1 of 1 recipients"):
        remote.assert_delivered_once_to(["user1@example.com"])


def test_set_plan_reset_and_a_wait_that_times_out(server: ServeProcess) -> None:
    remote = RemoteFakeSES(server.ready["api_url"])
    rule = Rule.from_spec("name=grey,stage=RCPT,first=1,action=reply,code=451,text=Later")
    plan = remote.set_plan(Plan(profile="plain", faults=(rule,)))
    assert plan.faults[0].name == "grey"
    assert remote.plan == plan
    with smtplib.SMTP(*server.smtp) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail("app@example.com", ["user@example.com"], mail(1))
        client.sendmail("app@example.com", ["user@example.com"], mail(1))
    assert [m.message_id for m in remote.wait_for_messages(1)] == ["<batch-1@example.com>"]
    assert [f.name for f in remote.faults_fired] == ["grey"]
    assert b"Message 1." in remote.raw(1)
    assert remote.message(1)["body"]["text"].startswith("Message 1.")

    remote.reset()
    assert remote.messages == [] and remote.faults_fired == []
    with pytest.raises(AssertionError, match=r"waited 0.2s for 1 messages; .* recorded 0"):
        remote.wait_for_messages(1, timeout_s=0.2)
