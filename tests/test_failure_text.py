"""Failure texts that say what happened: a dropped connection in words, hundreds of faults cut to
what a reader can take in, and what a correct client does in the scenario (issue 26, item 4)."""

from __future__ import annotations

import copy

from harness.base.ledger import FaultRecord, MessageRecord
from harness.reports.failure import case_report
from harness.server.verdicts import delivery_report, delivery_verdict, describe_fault
from tests.test_reports import flaky_eom_case, session_cap_case

THROTTLE = "454 Throttling failure: Maximum sending rate exceeded"


def fault(
    command: int, stage: str, source: str, name: str, reply: str | None, action: str = "reply"
) -> FaultRecord:
    return FaultRecord(
        session=1,
        command=command,
        stage=stage,
        source=source,
        name=name,
        action=action,
        reply=reply,
        at=command * 0.1,
    )


def test_a_dropped_connection_is_told_in_words_not_as_none() -> None:
    case = flaky_eom_case("reconnect")  # drop_after_accept on message 4: a duplicate
    case["timeline"]["sessions"][0]["close_reason"] = "rule:drop-eom-4"  # as the server writes it

    text = case_report(case)

    assert "-> None" not in text
    assert (
        "session 1 EOM: rule 'drop-eom-4' -> kept the message, then dropped the connection "
        "before its 250" in text
    )
    # A newer results.json names the action; a plain drop reads as one.
    case["timeline"]["faults"][0]["action"] = "drop"
    assert "rule 'drop-eom-4' -> dropped the connection, no reply" in case_report(case)
    record = fault(5, "EOM", "rule", "cut", None, action="drop")
    assert describe_fault(record).endswith("-> dropped the connection, no reply")


def test_a_failure_shows_what_a_correct_client_does_there() -> None:
    case = session_cap_case("naive", 40, 15, rotate=False)
    best = """
    1,000 of 1,000 delivered once, no duplicate: a client that opens a new session before or at
    the 421 loses nothing.
    """

    text = case_report(case, best)

    lines = text.splitlines()
    at = lines.index("  what a correct client does here:")
    assert lines[at + 1].startswith("    1,000 of 1,000 delivered once, no duplicate: a client")
    assert lines[-1].startswith("  reproduce: ")
    assert "what a correct client" not in case_report(case)  # nothing said when none is known


def test_each_kind_of_undelivered_message_is_named_in_the_failure_text() -> None:
    case = copy.deepcopy(session_cap_case("naive", 40, 15, rotate=False))
    for number, message in enumerate(case["messages"][15:]):
        if number == 0:
            message.update({"class": "given_up", "claim": "failed", "reply": "421 closing"})
        elif number < 3:
            message.update({"class": "uncertain", "claim": "uncertain"})
        else:
            message.update({"class": "abandoned", "claim": "not_attempted"})

    text = case_report(case)

    assert "  uncertain: the client said it cannot know" in text
    assert "  given up: reported failed after transient refusals only (1):" in text
    assert "  never sent: the client never tried it (22):" in text
    assert "abandoned" not in text


def test_a_fixture_failure_shows_a_few_of_hundreds_of_faults_and_counts_the_rest() -> None:
    faults = [fault(4 * n + 3, "EOM", "limit", "rate_per_s", THROTTLE) for n in range(940)]
    greylist = "451 4.7.1 Greylisted, try again later"
    faults[500:500] = [fault(2000 + n, "RCPT", "rule", "greylist", greylist) for n in range(6)]
    messages = [
        MessageRecord(
            sequence=n,
            session=1,
            ses_id=f"ses-{n}",
            mail_from="a@example.com",
            rcpt_tos=("b@example.com",),
            message_id=f"<m{n}@x>",
            subject=None,
            headers=(),
            size=100,
            sha256="0" * 64,
            at=0.1 * n,
            wall_at=0.1 * n,
            acknowledged=True,
        )
        for n in range(1, 4)
    ]
    verdict = delivery_verdict(["<m1@x>", "<m2@x>", "<m3@x>", "<m4@x>"], messages)

    text = delivery_report(verdict, messages, faults, "@pytest.mark.fake_ses(...)")

    lines = text.splitlines()
    assert "  946 faults in session 1:" in lines
    assert "sessions involved (1)" not in text
    shown = [line for line in lines if line.startswith("    session 1 command")]
    assert len(shown) <= 10
    # The six greylisting refusals are not hidden behind the first ten throttles.
    assert any("rule 'greylist'" in line for line in shown)
    assert lines[lines.index(shown[-1]) + 1] == (
        f"    ... and {946 - len(shown)} more: 937 limit 'rate_per_s', 3 rule 'greylist'"
    )
    assert len(lines) < 20
