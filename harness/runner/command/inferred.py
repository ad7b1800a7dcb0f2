"""Claims for a client process that wrote none: inferred from what the server told it."""

from __future__ import annotations

from collections.abc import Sequence

from harness.base.ledger import Ledger
from harness.runner.identity import match_copies
from harness.runner.strategy import Claim, ClaimStatus, OutgoingMessage


def claims_from_ledger(messages: Sequence[OutgoingMessage], ledger: Ledger) -> list[Claim]:
    """Claims for a client that made none: what the server told it about each message.

    Sent when the server acknowledged a copy with a 250; failed when a copy was stored but the
    connection was cut before the 250, or when the server saw the message at RCPT TO or later
    without storing it; never attempted otherwise. Copies are the message's by Message-ID or
    envelope (`harness.runner.identity`).
    """
    copies = match_copies(messages, ledger.messages).copies
    acknowledged = {id for id, found in copies.items() if any(c.acknowledged for c in found)}
    stored = set(copies)
    reached = set()  # (sender, recipient) of every RCPT TO: workload messages differ in both
    for session in ledger.sessions:
        sender = ""
        for line in session.commands_sent():
            if line.verb == "MAIL":
                sender = (line.address or "").lower()
            elif line.verb == "RCPT":
                reached.add((sender, (line.address or "").lower()))
    claims = []
    for message in messages:
        first = (
            message.sender.lower(),
            message.recipients[0].lower() if message.recipients else "",
        )
        if message.id in acknowledged:
            claims.append(Claim(message.id, ClaimStatus.SENT, 250, "(inferred from the server)"))
        elif message.id in stored or first in reached:
            claims.append(Claim(message.id, ClaimStatus.FAILED, None, "(inferred from the server)"))
        else:
            claims.append(Claim(message.id, ClaimStatus.NOT_ATTEMPTED))
    return claims
