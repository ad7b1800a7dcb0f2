"""Finding messages: the query a search box or the API's parameters make, and its matching.

A search box takes words and `key:value` terms, as Mailpit's does::

    invoice from:billing@ to:@example.com subject:"March report" text:refund is:cut session:3

Words match the sender, the recipients, the subject, the Message-ID or the SES id. Everything is
case-insensitive and every term must hold. All of it but `text:` reads fields the ledger keeps
for every message, so a search over 100,000 messages is a scan of records in memory; `text:`
needs the bodies, whose searchable text is cached (bounded) the first time it is read.
"""

from __future__ import annotations

import collections
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from harness.base.ledger import MessageRecord

#: Keys of the search syntax and the API's query parameters (the same names).
KEYS = ("from", "to", "subject", "text", "session", "is")
STATUSES = ("delivered", "cut")
#: What the text cache may hold, in characters, and per message.
TEXT_CACHE_CHARS = 64 * 1024 * 1024
TEXT_CHARS_PER_MESSAGE = 64 * 1024


class QueryError(ValueError):
    """A search the server cannot read; the text says what to write instead."""


@dataclass(frozen=True)
class MessageQuery:
    words: tuple[str, ...] = ()
    sender: str | None = None
    recipient: str | None = None
    subject: str | None = None
    text: str | None = None
    status: str | None = None  # "delivered" (had its 250) or "cut" (connection cut before)
    session: int | None = None

    @classmethod
    def parse(cls, q: str = "", params: Mapping[str, str] | None = None) -> MessageQuery:
        """The query of a search box (`q`) and of separate parameters (`from=...`) together."""
        terms: dict[str, list[str]] = collections.defaultdict(list)
        words = []
        try:
            tokens = shlex.split(q)
        except ValueError as error:  # an open quote
            raise QueryError(f"cannot read the search {q!r}: {error}") from None
        for token in tokens:
            key, sep, value = token.partition(":")
            if sep and key.lower() in KEYS:
                terms[key.lower()].append(value)
            else:
                words.append(token.lower())
        for key in KEYS:
            if params and params.get(key):
                terms[key].append(params[key])
        if "status" in (params or {}):
            terms["is"].append((params or {})["status"])
        return cls(
            words=tuple(words),
            sender=_one(terms, "from"),
            recipient=_one(terms, "to"),
            subject=_one(terms, "subject"),
            text=_one(terms, "text"),
            status=_status(_one(terms, "is")),
            session=_session(_one(terms, "session")),
        )

    @property
    def empty(self) -> bool:
        return self == MessageQuery()

    def matches(
        self,
        record: MessageRecord,
        text_of: Callable[[MessageRecord], str],
        haystack_of: Callable[[MessageRecord], str] | None = None,
    ) -> bool:
        if self.session is not None and record.session != self.session:
            return False
        if self.status is not None and record.acknowledged != (self.status == "delivered"):
            return False
        if self.sender is not None and self.sender not in record.mail_from.lower():
            return False
        if self.recipient is not None and not any(
            self.recipient in address.lower() for address in record.rcpt_tos
        ):
            return False
        if self.subject is not None and self.subject not in (record.subject or "").lower():
            return False
        if self.words:
            haystack = (haystack_of or haystack_for)(record)
            if not all(word in haystack for word in self.words):
                return False
        # Last: the only test that may need a body.
        return self.text is None or self.text in text_of(record)


def haystack_for(record: MessageRecord) -> str:
    """What a word of a search is looked for in, lower-cased."""
    subject, message_id = record.subject or "", record.message_id or ""
    fields = (record.mail_from, *record.rcpt_tos, subject, message_id, record.ses_id)
    return " ".join(fields).lower()


class Haystacks:
    """`haystack_for` of each message, made once: a search over 100,000 messages then scans
    strings instead of building them (about 150 bytes a message)."""

    def __init__(self) -> None:
        self._made: dict[int, str] = {}

    def __call__(self, record: MessageRecord) -> str:
        made = self._made.get(record.sequence)
        if made is None:
            made = self._made[record.sequence] = haystack_for(record)
        return made

    def clear(self) -> None:
        self._made.clear()


def _one(terms: Mapping[str, list[str]], key: str) -> str | None:
    values = terms.get(key)
    if not values:
        return None
    if len(set(values)) > 1:
        raise QueryError(f"{key}: is given twice ({', '.join(map(repr, values))}): give it once")
    return values[0].lower()


def _status(value: str | None) -> str | None:
    if value is not None and value not in STATUSES:
        raise QueryError(f"is:{value} is not a status (allowed: is:delivered, is:cut)")
    return value


def _session(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or len(value) > 12:
        raise QueryError(f"session:{value} is not a session number")
    return int(value)


class TextCache:
    """The searchable text of message bodies, by sequence, within a character budget.

    Once the budget is spent, texts are read again (from memory or the store) when a search
    needs them, and not kept: evicting the oldest would make every scan of more messages than
    the budget holds miss every time, while keeping the first ones makes most of it hit.
    """

    def __init__(self, read: Callable[[MessageRecord], str], budget_chars: int = TEXT_CACHE_CHARS):
        self.read = read
        self.budget_chars = budget_chars
        self.held = 0
        self._texts: dict[int, str] = {}

    def __call__(self, record: MessageRecord) -> str:
        text = self._texts.get(record.sequence)
        if text is None:
            text = self.read(record)[:TEXT_CHARS_PER_MESSAGE].lower()
            if self.held + len(text) <= self.budget_chars:
                self._texts[record.sequence] = text
                self.held += len(text)
        return text

    def clear(self) -> None:
        self._texts.clear()
        self.held = 0
