"""Which workload message a copy on the server is: by Message-ID, else by what mailers keep.

Most mail libraries stamp a Message-ID of their own (Django's `EmailMessage`, Flask-Mail,
nodemailer, PHPMailer), so a correct mailer's copies may carry none of the workload's ids. The
envelope survives: every workload message has its own first recipient (and the batch's
sender), and a mailer sends to the recipients it was given. So a copy is matched

1. by its Message-ID, when that is a workload message's id;
2. else by its envelope: MAIL FROM and first RCPT TO, as the workload gave them;
3. else by its first recipient alone (a mailer with an envelope sender of its own, e.g. a
   bounce address).

A copy that matches none of these is a *stray*: reported with the case, never counted for a
message.

>>> from harness.runner.strategy import OutgoingMessage
>>> messages = [
...     OutgoingMessage("<1@x>", "app@x", ("a@y",), b""),
...     OutgoingMessage("<2@x>", "app@x", ("b@y",), b""),
... ]
>>> copies = [_Copy("<1@x>", "app@x", ("a@y",)), _Copy("<own@django>", "app@x", ("b@y",))]
>>> found = match_copies(messages, [*copies, _Copy(None, "app@x", ("c@y",))])
>>> {i: len(c) for i, c in found.copies.items()}, found.counts, len(found.strays)
({'<1@x>': 1, '<2@x>': 1}, {'message_id': 1, 'envelope': 1, 'recipient': 0}, 1)
>>> found.explained()
'1 by Message-ID, 1 by envelope (your mailer sets its own Message-ID); 1 copy matched no message'
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from harness.core.address import lower_shared
from harness.runner.strategy import OutgoingMessage

#: How many stray copies a case lists (all are counted).
STRAYS_LISTED = 20


class Copy(Protocol):
    """What matching reads of a server copy (a `MessageRecord`)."""

    @property
    def message_id(self) -> str | None: ...
    @property
    def mail_from(self) -> str: ...
    @property
    def rcpt_tos(self) -> tuple[str, ...]: ...


C = TypeVar("C", bound=Copy)


@dataclass(frozen=True)
class Matching(Generic[C]):
    """The copies of each workload message, how they were matched, and the strays."""

    copies: dict[str, list[C]]  # workload message id -> its copies, in order of acceptance
    counts: dict[str, int]  # copies matched by "message_id", "envelope", "recipient"
    strays: tuple[C, ...]

    def explained(self) -> str:
        """One line: how the copies were matched, in words a user can act on."""
        parts = []
        if self.counts["message_id"]:
            parts.append(f"{self.counts['message_id']:,} by Message-ID")
        if self.counts["envelope"]:
            parts.append(f"{self.counts['envelope']:,} by envelope")
        if self.counts["recipient"]:
            parts.append(f"{self.counts['recipient']:,} by first recipient")
        text = ", ".join(parts) if parts else "no copy matched"
        if self.counts["envelope"] or self.counts["recipient"]:
            text += " (your mailer sets its own Message-ID)"
        if self.strays:
            s = "y" if len(self.strays) == 1 else "ies"
            text += f"; {len(self.strays):,} cop{s} matched no message"
        return text

    def to_dict(self, describe: Any) -> dict[str, Any]:
        """For results.json: the counts, the sentence, and the first strays (`describe(copy)`)."""
        return {
            **self.counts,
            "strays": len(self.strays),
            "explained": self.explained(),
            "stray_copies": [describe(c) for c in self.strays[:STRAYS_LISTED]],
        }


def match_copies(messages: Sequence[OutgoingMessage], copies: Iterable[C]) -> Matching[C]:
    """Each copy's workload message: by Message-ID, else envelope, else first recipient."""
    # The tables hold the batch's own strings where they are in lower case already, and no
    # object a message beyond its entries: a case of 100,000 messages built them at its peak
    # (about 600 bytes a message when each key was a new tuple of new strings).
    ids = {m.id for m in messages}
    by_envelope: dict[str, dict[str, str]] = {}  # sender -> first recipient -> message
    by_recipient: dict[str, str | None] = {}  # None: the first recipient of two messages
    for m in messages:
        if m.recipients:
            first = lower_shared(m.recipients[0])
            by_envelope.setdefault(lower_shared(m.sender), {})[first] = m.id
            by_recipient[first] = None if first in by_recipient else m.id

    found: dict[str, list[C]] = {}
    counts = {"message_id": 0, "envelope": 0, "recipient": 0}
    strays: list[C] = []
    for copy in copies:
        first = lower_shared(copy.rcpt_tos[0]) if copy.rcpt_tos else ""
        if copy.message_id in ids:
            how, message = "message_id", copy.message_id
        elif first in (envelope := by_envelope.get(lower_shared(copy.mail_from), {})):
            how, message = "envelope", envelope[first]
        elif by_recipient.get(first) is not None:
            how, message = "recipient", by_recipient[first]
        else:
            strays.append(copy)
            continue
        assert message is not None
        found.setdefault(message, []).append(copy)
        counts[how] += 1
    return Matching(found, counts, tuple(strays))


class _Copy(NamedTuple):  # for the examples above
    message_id: str | None
    mail_from: str
    rcpt_tos: tuple[str, ...]
