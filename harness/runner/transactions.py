"""What the client did on the wire, read from the server's transcripts: each SMTP transaction
(a MAIL FROM to its end) and how it ended, tied to the workload's messages by envelope.

Scoring counts from these the commands sent, the retries (transactions beyond one a message),
the messages attempted, those refused for good (a 5xx, or the SES API's permanent refusal)
and the transactions sent again after such a refusal. A transaction names its message by MAIL
FROM and first RCPT TO, as the workload gave them: that survives any mailer's own Message-ID.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from harness.base.records import EOM, ClientLine, FaultRecord, ServerLine, SessionRecord
from harness.core.address import lower_shared
from harness.runner.strategy import OutgoingMessage


@dataclass(slots=True)
class Wire:
    """What scoring reads of the transcripts."""

    commands: int  # commands the client sent
    transactions: int  # MAIL FROM commands
    retried_5xx: int  # transactions for a message after one of its own was refused with a 5xx
    seen: set[str]  # the messages a transaction was sent for (by id)
    refused: set[str]  # the messages refused for good


def read_wire(
    sessions: Sequence[SessionRecord],
    messages: Sequence[OutgoingMessage],
    faults: Iterable[FaultRecord],
) -> Wire:
    """The transcripts' transactions, counted and tied to `messages`; the API's permanent
    refusals (`faults`) among the refused."""
    found, commands = _transactions(sessions)
    # Each message by its sender and first recipient, a table a sender: no tuple a message.
    keys: dict[str, dict[str, str]] = {}
    for m in messages:
        if m.recipients:
            sender, first = _key(m.sender, m.recipients[0])
            keys.setdefault(sender, {})[first] = m.id
    seen, refused = set(), set()
    for t in found:
        if (message := _message_of(keys, t.key)) is not None:
            seen.add(message)
            if t.refused_permanently:
                refused.add(message)
    api_refused = (_message_of(keys, k) for k in _api_refusals(faults))
    refused |= {message for message in api_refused if message is not None}
    return Wire(commands, len(found), _retried_5xx(found), seen, refused)


@dataclass(slots=True)  # one per transaction: 100,000 in a large case
class _Transaction:
    # When it began (time, session, position in the session): the order they happened in.
    at: float
    session: int
    position: int
    sender: str
    recipient: str | None = None  # the first RCPT TO
    stage: str = "MAIL"  # the last command sent in it
    code: int | None = None  # how it ended: a refusal (>= 400) or the 2xx at end of data
    rcpt_ok: bool = False
    rcpt_refusal: int | None = None

    @property
    def key(self) -> tuple[str, str] | None:
        return _key(self.sender, self.recipient) if self.recipient is not None else None

    @property
    def refused_permanently(self) -> bool:
        return self.code is not None and self.code >= 500

    def command(self, line: ClientLine) -> bool:
        """A client command; False when it ends the transaction (RSET, QUIT, ...)."""
        if line.verb not in ("RCPT", "DATA", EOM):
            return False
        self.stage = line.verb
        if line.verb == "RCPT" and self.recipient is None:
            self.recipient = line.address or ""
        return True

    def reply(self, code: int) -> None:
        if self.code is not None:
            return
        if self.stage == "RCPT":
            # One refused recipient does not refuse the message while another is accepted.
            if code < 400:
                self.rcpt_ok = True
            elif code == 421:
                self.code = code
            elif self.rcpt_refusal is None:
                self.rcpt_refusal = code
        elif code >= 400 or (self.stage == "EOM" and code < 300):
            self.code = code

    def finish(self) -> None:
        if self.code is None and not self.rcpt_ok and self.rcpt_refusal is not None:
            self.code = self.rcpt_refusal


def _transactions(sessions: Sequence[SessionRecord]) -> tuple[list[_Transaction], int]:
    """Every MAIL FROM and how its transaction ended, in the order they happened; and the
    number of commands the client sent."""
    found = []
    commands = 0
    for session in sessions:
        current: _Transaction | None = None
        for position, line in enumerate(session.transcript):
            if isinstance(line, ServerLine):
                if current is not None and line.code is not None:
                    current.reply(line.code)
                continue
            if not isinstance(line, ClientLine):  # a proxy's lines to its upstream
                continue
            commands += 1
            if current is not None and (line.verb == "MAIL" or not current.command(line)):
                current.finish()
                current = None
            if line.verb == "MAIL":
                current = _Transaction(line.at, session.number, position, line.address or "")
                found.append(current)
        if current is not None:
            current.finish()
    found.sort(key=lambda t: (t.at, t.session, t.position))
    return found, commands


def _retried_5xx(transactions: Sequence[_Transaction]) -> int:
    refused: set[tuple[str, str]] = set()
    count = 0
    for transaction in transactions:
        key = transaction.key
        if key is None:
            continue
        if key in refused:
            count += 1
        if transaction.refused_permanently:
            refused.add(key)
    return count


def _api_refusals(faults: Iterable[FaultRecord]) -> set[tuple[str, str]]:
    """The messages an API request refused for good (MessageRejected...): by sender and first
    recipient, as the ledger's fault names them."""
    return {_key(f.sender or "", f.recipient) for f in faults if f.permanent and f.recipient}


def _key(sender: str, recipient: str | None) -> tuple[str, str]:
    # The batch's own strings when in lower case already: a large case holds a key a message.
    return (lower_shared(sender), lower_shared(recipient or ""))


def _message_of(keys: dict[str, dict[str, str]], key: tuple[str, str] | None) -> str | None:
    return keys.get(key[0], {}).get(key[1]) if key is not None else None
