"""The ledger records what happened as data: each command's verb, address, size and the engine's
number for it; each reply's code, enhanced code and what decided it. Written by the server from
what it did (real smtplib sessions here); nothing outside the server reads SMTP text back."""

from __future__ import annotations

import re
import smtplib
from pathlib import Path

import pytest

import harness
from harness import FakeSES
from harness.base.records import EOM, ClientLine, ServerLine, line_from_json, line_json

MESSAGE = b"From: app@example.com\r\nTo: user@example.com\r\nSubject: records\r\n\r\nhello\r\n"


def replies(session) -> list[ServerLine]:
    return [line for line in session.transcript if isinstance(line, ServerLine)]


def test_commands_carry_verb_address_size_and_the_engines_number():
    with FakeSES("ses", rate_per_s=None, session_limit=1) as ses:
        with smtplib.SMTP(ses.endpoint.host, ses.endpoint.port, timeout=10) as client:
            client.sendmail("app@example.com", ["user@example.com"], MESSAGE)
            with pytest.raises(smtplib.SMTPSenderRefused):
                client.sendmail("app@example.com", ["other@example.com"], MESSAGE)
        session = ses.ledger.sessions[0]
        sent = session.commands_sent()
        assert [(c.verb, c.address) for c in sent[:4]] == [
            ("EHLO", None),
            ("MAIL", "app@example.com"),
            ("RCPT", "user@example.com"),
            ("DATA", None),
        ]
        eom = sent[4]
        assert (eom.verb, eom.size, eom.text) == (
            EOM,
            len(MESSAGE),
            f"[{len(MESSAGE)} bytes of message data] .",
        )
        assert [c.number for c in sent[:6]] == [1, 2, 3, 4, 5, 6]
        # The fault names the command it answered by the same number.
        (cap,) = ses.ledger.faults
        assert (cap.name, cap.command) == ("session_limit", sent[5].number)
        assert sent[5].verb == "MAIL"


def test_replies_carry_code_enhanced_code_and_what_decided_them():
    with FakeSES("ses", rate_per_s=None, session_limit=1, max_message_bytes=1000) as ses:
        with smtplib.SMTP(ses.endpoint.host, ses.endpoint.port, timeout=10) as client:
            with pytest.raises(smtplib.SMTPDataError) as too_big:
                client.sendmail(
                    "app@example.com", ["user@example.com"], MESSAGE + (b"x" * 70 + b"\r\n") * 30
                )
            client.sendmail("app@example.com", ["user@example.com"], MESSAGE)
            with pytest.raises(smtplib.SMTPSenderRefused) as capped:
                client.sendmail("app@example.com", ["user@example.com"], MESSAGE)
        lines = replies(ses.ledger.sessions[0])
        by_code = {line.code: line for line in lines}
        assert by_code[552].decided_by == "limit:max_message_bytes"
        assert by_code[552].text.encode() == b"552 " + too_big.value.smtp_error
        assert by_code[421].decided_by == "limit:session_limit"
        assert by_code[421].text.encode() == b"421 " + capped.value.smtp_error
        assert {line.decided_by for line in lines if line.code == 250} == {None}
        ehlo = [line for line in lines if line.code == 250][:3]
        assert ehlo[0].last is False and ehlo[0].text.startswith("250-")
        accepted = next(line for line in lines if line.message.startswith("Ok "))
        assert accepted.enhanced is None  # SES's "250 Ok <id>" has none


def test_a_rule_reply_names_its_rule_and_its_enhanced_code():
    rule = harness.Rule.from_spec("stage=RCPT,nth=1,action=reply,code=451,text=4.7.1 Greylisted")
    with FakeSES("plain", faults=[rule]) as ses:
        with (
            smtplib.SMTP(ses.endpoint.host, ses.endpoint.port, timeout=10) as client,
            pytest.raises(smtplib.SMTPRecipientsRefused),
        ):
            client.sendmail("app@example.com", ["user@example.com"], MESSAGE)
        (line,) = [r for r in replies(ses.ledger.sessions[0]) if r.code == 451]
        (fault,) = ses.ledger.faults
        assert (line.enhanced, line.decided_by) == ("4.7.1", fault.key)


def test_records_round_trip_through_json():
    lines = [
        ClientLine(1.0, "RCPT", "TO:<a@x> NOTIFY=NEVER", address="a@x", number=3),
        ClientLine(2.0, EOM, size=99, number=5),
        ServerLine(3.0, 421, "4.4.2 Timeout waiting", decided_by="limit:idle_timeout_s"),
        ServerLine(4.0, 250, "PIPELINING", last=False),
        ServerLine(5.0, None, "[TLS handshake failed: x]"),
    ]
    assert [line_from_json(line_json(line)) for line in lines] == lines


#: Ways of reading SMTP text back, each of which a reader outside the server once used.
TEXT_READING = [
    re.compile(r"bytes of message data"),
    re.compile(r"\bdirection\s*[!=]="),
    re.compile(r"\.text\[:\d+\]"),
    re.compile(r"\.text\.(startswith|endswith|split|partition)\("),
]
OUTSIDE_THE_SERVER = [
    p
    for p in Path(harness.__file__).parent.rglob("*.py")
    if "server" not in p.relative_to(Path(harness.__file__).parent).parts[:1]
    and p.name != "records.py"  # where a line's text is rendered from its fields
]


@pytest.mark.parametrize("path", OUTSIDE_THE_SERVER, ids=lambda p: p.name)
def test_no_module_outside_the_server_reads_smtp_text(path: Path):
    source = path.read_text()
    found = [pattern.pattern for pattern in TEXT_READING if pattern.search(source)]
    assert found == [], f"{path} reads SMTP text: {found}"


def test_the_text_check_finds_a_reader():
    old_scoring = 'elif text.endswith("bytes of message data] ."):\n    if line.direction != ">":'
    assert [p for p in TEXT_READING if p.search(old_scoring)] == TEXT_READING[:2]
