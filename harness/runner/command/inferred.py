"""Claims for a client process that wrote none: inferred from what the server told it."""

from __future__ import annotations

import re
from collections.abc import Sequence

from harness.base.ledger import Ledger
from harness.runner.strategy import Claim, ClaimStatus, OutgoingMessage


def claims_from_ledger(messages: Sequence[OutgoingMessage], ledger: Ledger) -> list[Claim]:
    """Claims for a client that made none: what the server told it about each message.

    Sent when the server acknowledged a copy with a 250; failed when a copy was stored but the
    connection was cut before the 250, or when the server saw the message at RCPT TO or later
    without storing it; never attempted otherwise.
    """
    acknowledged = {m.message_id for m in ledger.messages if m.acknowledged}
    stored = {m.message_id for m in ledger.messages}
    reached = set()  # (sender, recipient) of every RCPT TO: workload messages differ in both
    for session in ledger.sessions:
        sender = ""
        for line in session.transcript:
            if line.direction == ">" and line.text[:10].upper() == "MAIL FROM:":
                sender = _path(line.text).lower()
            elif line.direction == ">" and line.text[:8].upper() == "RCPT TO:":
                reached.add((sender, _path(line.text).lower()))
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


def _path(command: str) -> str:
    found = re.search(r"<([^>]*)>", command)
    return found.group(1) if found else command.partition(":")[2].strip().split(" ")[0]
