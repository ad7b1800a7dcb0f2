"""A mailer that stamps its own Message-ID (Django, nodemailer, `email.utils.make_msgid`: most
do) is judged on what it delivered: its copies are tied to the workload's messages by envelope,
each case says how, and a copy that matches no message is reported, never counted."""

from __future__ import annotations

import dataclasses
import email.utils
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.runner.matrix import run_case
from harness.runner.scenario import builtin_scenario, load_scenario
from harness.runner.strategies import BUILTINS
from harness.runner.strategy import Claim, OutgoingMessage
from tests.test_clients import counts, node_client, python_client, scenario

CLIENTS = Path(__file__).resolve().parents[1] / "clients"
_MESSAGE_ID = re.compile(rb"^Message-ID:[^\r\n]*\r\n", re.IGNORECASE | re.MULTILINE)


def restamped(message: OutgoingMessage) -> OutgoingMessage:
    """The message as a framework sends it: with a Message-ID of its own making."""
    own = email.utils.make_msgid(domain="app.example").encode()
    return dataclasses.replace(
        message, data=_MESSAGE_ID.sub(b"Message-ID: " + own + b"\r\n", message.data, 1)
    )


def own_ids(name: str):
    """Built-in strategy `name`, sending through a framework that stamps its own Message-IDs."""
    strategy = BUILTINS[name].send_batch

    def send(messages, endpoint, clock) -> Iterator[Claim]:
        yield from strategy([restamped(m) for m in messages], endpoint, clock)

    send.__name__ = f"{name}-own-ids"
    return send


def test_a_reconnecting_sender_with_its_own_message_ids_passes_session_cap():
    case = run_case(load_scenario(builtin_scenario("session-cap")), own_ids("reconnect"))
    score = case["score"]
    assert (score["delivered_once"], score["silently_lost"], score["stray_copies"]) == (1000, 0, 0)
    assert case["passed"]
    assert case["matching"]["envelope"] == 1000
    assert (
        case["matching"]["explained"] == "1,000 by envelope (your mailer sets its own Message-ID)"
    )


def test_its_naive_twin_delivers_350_and_loses_none_silently():
    case = run_case(load_scenario(builtin_scenario("session-cap")), own_ids("naive"))
    score = case["score"]
    assert (score["delivered_once"], score["silently_lost"]) == (350, 0)
    assert score["given_up"] + score["abandoned"] == 650
    assert not case["passed"]


def test_a_copy_that_matches_no_message_is_reported_as_a_stray(tmp_path):
    def elsewhere(messages, endpoint, clock):
        # Every message sent to another recipient, under another id: nothing ties it back.
        moved = [
            dataclasses.replace(restamped(m), recipients=("nobody@elsewhere.example",))
            for m in messages
        ]
        yield from BUILTINS["naive"].send_batch(moved, endpoint, clock)

    case = run_case(scenario(tmp_path, 3), elsewhere)
    assert case["score"]["stray_copies"] == 3
    assert case["matching"]["stray_copies"][0]["rcpt_tos"] == ["nobody@elsewhere.example"]
    assert case["matching"]["explained"] == "no copy matched; 3 copies matched no message"


def test_django_with_its_own_message_ids_is_scored_by_envelope(tmp_path):
    pytest.importorskip("django", reason="needs Django: pip install -e '.[clients]'")
    case = run_case(scenario(tmp_path, 14), python_client("django_batch.py", "--own-message-id"))
    # One connection, the cap at 10: Django's send_messages raises at the 421, so the app
    # believes the whole batch failed; 10 were delivered (misreported), none silently lost.
    assert counts(case) == {"misreported": 10, "given_up": 4}
    assert case["matching"]["envelope"] == 10
    assert not any(m["message_id"] for m in case["matching"]["stray_copies"])


@pytest.mark.skipif(
    shutil.which("node") is None or not (CLIENTS / "nodemailer/node_modules/nodemailer").is_dir(),
    reason="needs node and nodemailer installed: (cd clients/nodemailer && npm ci)",
)
def test_nodemailer_with_its_default_message_ids_is_scored_by_envelope(tmp_path):
    case = run_case(scenario(tmp_path, 12), node_client("--own-message-id"))
    # nodemailer's default transport opens a connection per message: all 12 arrive once.
    assert counts(case) == {"delivered_once": 12}
    assert case["matching"]["envelope"] == 12


def test_the_plugins_assertion_says_when_the_mailer_stamped_its_own_ids():
    import smtplib
    from email.message import EmailMessage

    from harness import FakeSES

    recipients = ["a@example.com", "b@example.com"]
    with FakeSES("plain") as server:
        ses = server.view(strict=False)
        with smtplib.SMTP(ses.endpoint.host, ses.endpoint.port, timeout=10) as client:
            for rcpt in recipients:
                mail = EmailMessage()
                mail["From"], mail["To"], mail["Subject"] = "app@example.com", rcpt, "hi"
                mail["Message-ID"] = email.utils.make_msgid(domain="framework.example")
                client.send_message(mail)
        with pytest.raises(AssertionError) as failed:
            ses.assert_delivered_once(["<1@app.example>", "<2@app.example>"])
        assert "2 recorded messages carry none of the expected Message-IDs" in str(failed.value)
        assert "assert_delivered_once_to(recipients)" in str(failed.value)
        ses.assert_delivered_once_to(recipients)


def test_the_run_and_its_summary_say_how_copies_were_matched(tmp_path, monkeypatch):
    from harness.cli.main import main

    (tmp_path / "ownids.py").write_text(
        "import dataclasses, email.utils, re\n"
        "from harness.runner.strategies import BUILTINS\n"
        "ID = re.compile(rb'^Message-ID:[^\\r\\n]*\\r\\n', re.I | re.M)\n"
        "def restamp(m):\n"
        "    own = b'Message-ID: ' + email.utils.make_msgid().encode() + b'\\r\\n'\n"
        "    return dataclasses.replace(m, data=ID.sub(own, m.data, 1))\n"
        "def send(messages, endpoint, clock):\n"
        "    own = [restamp(m) for m in messages]\n"
        "    yield from BUILTINS['reconnect'].send_batch(own, endpoint, clock)\n"
    )
    monkeypatch.chdir(tmp_path)
    status = main(["run", "session-cap", "--strategy", "ownids:send", "--report-dir", "out"])
    assert status == 0
    (summary,) = (tmp_path / "out").glob("*/summary.md")
    assert "ownids:send: 1,000 copies matched by envelope (it sets its own Message-ID)" in (
        summary.read_text()
    )
