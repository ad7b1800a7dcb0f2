"""The scorer on hand-built ledgers: no sockets, no server, every class and metric pinned."""

from __future__ import annotations

import pytest

from harness import FaultRecord, Limits, MessageRecord, SessionRecord
from harness.base.records import EOM, ClientLine, ServerLine, TranscriptLine
from harness.runner.scoring import (
    METRICS,
    MessageClass,
    classify,
    efficiency,
    fastest_possible_s,
    score_case,
)
from harness.runner.strategy import Claim, ClaimStatus, OutgoingMessage

SENDER = "app@example.com"
NO_LIMITS = Limits()


def outgoing(n: int, recipients: int = 1) -> OutgoingMessage:
    to = tuple(f"user{n}.{i}@example.com" for i in range(recipients))
    return OutgoingMessage(f"<m{n}@example.com>", SENDER, to, b"Subject: x\r\n\r\nbody\r\n")


def copy(message: OutgoingMessage, session: int = 1, sequence: int = 1) -> MessageRecord:
    return MessageRecord(
        sequence=sequence,
        session=session,
        ses_id=f"ses-{message.id}-{sequence}",
        mail_from=message.sender,
        rcpt_tos=message.recipients,
        message_id=message.id,
        subject="x",
        headers=(("Message-ID", message.id),),
        size=len(message.data),
        sha256="0" * 64,
        at=0.0,
        wall_at=0.0,
        acknowledged=True,
    )


def session(number: int, *lines: str, after_421: int = 0) -> SessionRecord:
    """A session from lines like "> MAIL FROM:<a@x>" and "< 250 Ok"."""
    record = SessionRecord(number, "127.0.0.1:1", float(number), 0.0)
    record.transcript = [record_of(float(number) + i / 100, line) for i, line in enumerate(lines)]
    record.commands_after_421 = after_421
    return record


def record_of(at: float, line: str) -> TranscriptLine:
    """The ledger's record for one of this file's shorthand lines (what the server records)."""
    direction, text = line[0], line[2:]
    if direction == "<":
        return ServerLine(at, int(text[:3]), text[4:])
    if text.startswith("["):  # "[N bytes of message data] ."
        return ClientLine(at, EOM, size=int(text[1:].split()[0]))
    verb, _, argument = text.partition(" ")
    address = argument.partition("<")[2].partition(">")[0] if verb in ("MAIL", "RCPT") else None
    return ClientLine(at, verb, argument or None, address=address)


def transaction(message: OutgoingMessage, end: str) -> list[str]:
    """The lines of one transaction that ends with reply `end` at end of data."""
    return [
        f"> MAIL FROM:<{message.sender}>",
        "< 250 Ok",
        f"> RCPT TO:<{message.recipients[0]}>",
        "< 250 Ok",
        "> DATA",
        "< 354 End data with <CR><LF>.<CR><LF>",
        "> [30 bytes of message data] .",
        f"< {end}",
    ]


def score(messages, claims, sessions=(), accepted=(), faults=(), **kwargs):
    options = {"limits": NO_LIMITS, "latency_s": 0.0, "elapsed_s": 1.0, **kwargs}
    return score_case(
        messages, claims, sessions=sessions, accepted=accepted, faults=faults, **options
    )


def test_each_class_follows_copies_claim_and_the_servers_refusal():
    m = [outgoing(i) for i in range(7)]
    sessions = [session(1, *transaction(m[3], "554 Message rejected: not verified"))]
    claims = [
        Claim(m[0].id, ClaimStatus.SENT, 250, "Ok"),
        Claim(m[1].id, ClaimStatus.FAILED, None, "connection lost"),
        Claim(m[2].id, ClaimStatus.SENT),
        Claim(m[3].id, ClaimStatus.FAILED, 554, "Message rejected: not verified"),
        Claim(m[4].id, ClaimStatus.FAILED, 454, "Throttling failure"),
        Claim(m[5].id, ClaimStatus.NOT_ATTEMPTED),
        Claim(m[6].id, ClaimStatus.SENT),
    ]
    accepted = [copy(m[0]), copy(m[1]), copy(m[6], 1, 7), copy(m[6], 2, 8)]
    card = score(m, claims, sessions, accepted)
    assert [v.cls for v in card.messages] == [
        MessageClass.DELIVERED_ONCE,
        MessageClass.MISREPORTED,
        MessageClass.SILENTLY_LOST,
        MessageClass.REJECTED_REPORTED,
        MessageClass.GIVEN_UP,
        MessageClass.ABANDONED,
        MessageClass.DUPLICATED,
    ]
    assert [card.score[c.value] for c in MessageClass if c is not MessageClass.UNCERTAIN] == [1] * 7
    assert card.score["uncertain"] == 0
    assert card.score["delivered_once_score"] == pytest.approx(2 / 7)
    assert card.messages[6].copies == 2 and card.messages[6].sessions == (1, 2)
    assert card.messages[3].reply == "554 Message rejected: not verified"


def test_a_message_nobody_claimed_is_abandoned_and_claims_for_strangers_are_ignored():
    m = [outgoing(0), outgoing(1)]
    claims = [Claim(m[0].id, ClaimStatus.SENT), Claim("<stranger@x>", ClaimStatus.SENT)]
    card = score(m, claims, accepted=[copy(m[0])])
    assert card.score["delivered_once"] == 1 and card.score["abandoned"] == 1
    assert set(card.score) == set(METRICS)


def test_the_last_claim_for_a_message_wins():
    m = [outgoing(0)]
    claims = [Claim(m[0].id, ClaimStatus.FAILED, 451, "later"), Claim(m[0].id, ClaimStatus.SENT)]
    assert score(m, claims, accepted=[copy(m[0])]).messages[0].cls is MessageClass.DELIVERED_ONCE


def test_a_5xx_the_server_never_sent_for_the_message_is_given_up_not_rejected():
    # smtplib leaves a transaction open when DATA is refused; the next MAIL earns a 503.
    m = [outgoing(0)]
    sessions = [session(1, f"> MAIL FROM:<{SENDER}>", "< 503 Sender already specified.")]
    claims = [Claim(m[0].id, ClaimStatus.FAILED, 503, "Sender already specified.")]
    assert score(m, claims, sessions).messages[0].cls is MessageClass.GIVEN_UP


def test_one_refused_recipient_does_not_make_the_message_refused():
    m = [outgoing(0, recipients=2)]
    lines = [
        f"> MAIL FROM:<{SENDER}>",
        "< 250 Ok",
        f"> RCPT TO:<{m[0].recipients[0]}>",
        "< 550 No such user",
        f"> RCPT TO:<{m[0].recipients[1]}>",
        "< 250 Ok",
        "> DATA",
        "< 354 go ahead",
        "> [30 bytes of message data] .",
        "< 451 Temporary service failure",
    ]
    claims = [Claim(m[0].id, ClaimStatus.FAILED, 451, "Temporary service failure")]
    assert score(m, claims, [session(1, *lines)]).messages[0].cls is MessageClass.GIVEN_UP


def test_classify_without_copies_or_claim_is_abandoned():
    assert classify(0, None) is MessageClass.ABANDONED
    assert classify(1, None) is MessageClass.MISREPORTED
    assert classify(0, Claim("<x>", ClaimStatus.FAILED, 554, "no"), refused=True) is (
        MessageClass.REJECTED_REPORTED
    )


def test_retries_count_transactions_beyond_one_per_attempted_message():
    m = [outgoing(0), outgoing(1)]
    first = session(
        1,
        "> EHLO client",
        "< 250 Ok",
        *transaction(m[0], "250 Ok id-1"),
        f"> MAIL FROM:<{SENDER}>",
        "< 421 Connection closed by server. Maximum message count per session reached.",
    )
    second = session(2, "> EHLO client", "< 250 Ok", *transaction(m[1], "250 Ok id-2"))
    claims = [Claim(m[0].id, ClaimStatus.SENT), Claim(m[1].id, ClaimStatus.SENT)]
    card = score(m, claims, [first, second], [copy(m[0]), copy(m[1], 2, 2)])
    assert card.score["retries"] == 1
    assert card.score["sessions"] == 2
    assert card.score["commands"] == (1 + 4 + 1) + (1 + 4)  # EHLO, a transaction, MAIL


def test_retried_5xx_counts_every_transaction_after_a_permanent_refusal():
    m = [outgoing(0), outgoing(1)]
    refused = transaction(m[0], "554 Message rejected")
    lines = [*refused, *refused, *refused, *transaction(m[1], "451 Temporary service failure")]
    lines += transaction(m[1], "250 Ok id")
    claims = [Claim(m[0].id, ClaimStatus.FAILED, 554, "no"), Claim(m[1].id, ClaimStatus.SENT)]
    card = score(m, claims, [session(1, *lines)], [copy(m[1])])
    assert card.score["retried_5xx"] == 2
    assert card.score["retries"] == 3
    assert card.messages[0].cls is MessageClass.REJECTED_REPORTED


def test_throttle_violations_are_rate_and_quota_refusals_only():
    def fault(source, name):
        return FaultRecord(1, 5, "EOM", source, name, "reply", "454 Throttling failure", 0.0)

    faults = [
        fault("limit", "rate_per_s"),
        fault("limit", "daily_quota"),
        fault("limit", "rate_per_s"),
        fault("limit", "session_limit"),
        fault("rule", "rate_per_s"),
    ]
    assert score([outgoing(0)], [], faults=faults).score["throttle_violations"] == 3


def test_commands_after_421_add_up_over_sessions():
    sessions = [session(1, after_421=2), session(2), session(3, after_421=1)]
    assert score([outgoing(0)], [], sessions).score["commands_after_421"] == 3


def test_fastest_possible_is_the_round_trips_when_no_limit_binds():
    # 3 one-recipient messages, 4 commands each, plus one EHLO: 13 round trips of 0.1 s.
    sends = [(1, 0.0, 1)] * 3
    assert fastest_possible_s(sends, limits=NO_LIMITS, latency_s=0.1) == pytest.approx(1.3)


def test_fastest_possible_needs_one_ehlo_per_session_the_cap_allows():
    sends = [(1, 0.0, 1)] * 5
    limits = Limits(session_limit=2)  # 3 sessions
    assert fastest_possible_s(sends, limits=limits, latency_s=1.0) == pytest.approx(20 + 3)


def test_fastest_possible_is_bound_by_the_send_rate_in_recipients():
    # 30 accepted recipients, biggest message 3, bucket of 1 at 1/s: (30 - 3 + 1 - 1) / 1 s.
    sends = [(3, 0.0, 3)] * 10
    limits = Limits(rate_per_s=1.0, burst=1.0)
    assert fastest_possible_s(sends, limits=limits, latency_s=0.0) == pytest.approx(27.0)


def test_fastest_possible_waits_a_day_for_recipients_beyond_the_daily_quota():
    sends = [(1, 0.0, 1)] * 5
    assert fastest_possible_s(sends, limits=Limits(daily_quota=4), latency_s=0.0) == 86_400.0
    assert fastest_possible_s(sends, limits=Limits(daily_quota=5), latency_s=0.0) == 0.0


def test_fastest_possible_cannot_finish_before_the_last_burst_arrives():
    sends = [(1, 0.0, 1), (1, 0.0, 1), (1, 30.0, 1)]
    assert fastest_possible_s(sends, limits=NO_LIMITS, latency_s=0.5) == pytest.approx(32.0)


def test_rejected_messages_count_their_round_trips_but_no_rate():
    sends = [(1, 0.0, 0)] * 4
    limits = Limits(rate_per_s=1.0, burst=1.0)
    assert fastest_possible_s(sends, limits=limits, latency_s=1.0) == pytest.approx(17.0)


def test_efficiency_is_fastest_over_elapsed_and_never_above_one():
    assert efficiency(2.0, 8.0) == 0.25
    assert efficiency(8.0, 2.0) == 1.0
    assert efficiency(0.0, 0.0) == 1.0
    assert efficiency(0.0, 5.0) == 0.0


def test_score_reports_time_and_efficiency_of_the_delivered_work():
    m = [outgoing(0), outgoing(1)]
    claims = [Claim(m[0].id, ClaimStatus.SENT), Claim(m[1].id, ClaimStatus.FAILED, 451, "x")]
    card = score(m, claims, accepted=[copy(m[0])], latency_s=0.5, elapsed_s=10.0)
    # Only the delivered message counts: 4 commands and one EHLO, 2.5 s of 10.
    assert card.score["fastest_possible_s"] == pytest.approx(2.5)
    assert card.score["efficiency"] == pytest.approx(0.25)
    assert card.score["virtual_elapsed_s"] == 10.0
