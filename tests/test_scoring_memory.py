"""What scoring a large case costs beside what it reads (issue 28: a case of 100,000 messages
under 400 MiB; its peak was while scoring, about 1.2 KB a message above the ledger and the
claims). Sizes, not times."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator, Sequence

from harness import Limits
from harness.base.ledger import EOM, ClientLine, Ledger, ServerLine
from harness.runner.scoring import score_case
from harness.runner.strategy import Claim, ClaimStatus, OutgoingMessage

MESSAGES = 3_000
SENDER = "app@example.com"


class FreshBatch(Sequence[OutgoingMessage]):
    """A batch whose messages are made as they are read, as a `StreamedBatch`'s are."""

    def __init__(self, count: int) -> None:
        self.ids = [f"<{n:016x}.{n}@example.com>" for n in range(count)]
        self.recipients = [(f"user.{n}@example.com",) for n in range(count)]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        return OutgoingMessage(self.ids[index], SENDER, self.recipients[index], b"")

    def __iter__(self) -> Iterator[OutgoingMessage]:
        return (self[i] for i in range(len(self)))


def _delivered(batch: FreshBatch) -> tuple[Ledger, list[Claim]]:
    """Every message sent once, 350 a session, as the server records it."""
    ledger = Ledger(memory_budget_bytes=0)
    claims, at = [], 0.0
    for n, message in enumerate(batch):
        if n % 350 == 0:
            session = ledger.open_session(n // 350 + 1, "127.0.0.1:1", at=at, wall=at)
        rcpt = message.recipients[0]
        for line in (
            ClientLine(at, "MAIL", f"FROM:<{SENDER}>", SENDER, number=4 * (n % 350) + 1),
            ServerLine(at, 250, "Ok"),
            ClientLine(at, "RCPT", f"TO:<{rcpt}>", rcpt, number=4 * (n % 350) + 2),
            ServerLine(at, 250, "Ok"),
            ClientLine(at, "DATA", number=4 * (n % 350) + 3),
            ServerLine(at, 354, "End data with <CR><LF>.<CR><LF>"),
            ClientLine(at, EOM, size=1000 + n, number=4 * (n % 350) + 4),
            ServerLine(at, 250, f"Ok 0100{n:012x}-000000"),
        ):
            ledger.log(session, line)
        head = f"Message-ID: {message.id}\r\nTo: {rcpt}\r\n\r\n".encode()
        ledger.accept(
            session,
            ses_id=f"0100{n:012x}-000000",
            mail_from=SENDER,
            rcpt_tos=(rcpt,),
            data=head,
            at=at,
            wall_at=at,
            acknowledged=True,
        )
        claims.append(Claim(message.id, ClaimStatus.SENT, 250, f"Ok 0100{n:012x}-000000"))
        at += 0.01
    return ledger, claims


def test_scoring_a_large_case_costs_little_beside_its_verdicts() -> None:
    batch = FreshBatch(MESSAGES)
    ledger, claims = _delivered(batch)
    sessions, accepted, faults = ledger.sessions, ledger.messages, ledger.faults
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        card = score_case(
            batch,
            claims,
            sessions=sessions,
            accepted=accepted,
            faults=faults,
            limits=Limits(),
            latency_s=0.0,
            elapsed_s=1.0,
        )
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert card.score["delivered_once"] == MESSAGES and card.score["retries"] == 0
    assert card.messages[5].ses_ids == ("0100000000000005-000000",)
    # The verdicts, the matching, the transactions read from the transcripts and the keys
    # that tie them to messages: 1,216 bytes a message at the peak before (the batch's
    # messages held, every key a lower-case copy of its addresses), 818 now.
    assert peak < MESSAGES * 1000, f"{peak / MESSAGES:.0f} bytes a message"
