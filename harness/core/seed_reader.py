"""What a recording shows, read for seeding a profile (:mod:`harness.core.seeding`): each reply
mapped to the profile line that would say it, and the behaviour around the limits.

>>> from harness.core.transcript import parse_transcript
>>> head = '{"transcript": "ses-harness", "version": 1, "upstream": "mx:25"}\\n'
>>> row = '{"session": 1, "stage": "MAIL", "code": 421, "text": "4.7.0 Too many messages"}'
>>> reading = Reading(parse_transcript(head + row, source="mx.jsonl"))
>>> reading.unmapped[0].text  # a 421 at the first MAIL FROM is no session cap: no line holds it
'421 4.7.0 Too many messages'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.core.errors import PlanError
from harness.core.transcript import Exchange, Transcript

#: The longest reply text a profile line takes from a recording: SMTP allows 512 octets a line
#: with its code (RFC 5321 4.5.3.1.5); a server that says more still fits, a flood does not.
MOST_CHARS = 1000
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")
ENHANCED = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")
#: The profile line that takes what a server accepts with, by stage (one `ok` line answers
#: MAIL, RCPT, RSET and NOOP: the first seen gives it).
ACCEPTS = {"MAIL": "ok", "RCPT": "ok", "RSET": "ok", "NOOP": "ok", "DATA": "data"}
ACCEPTS |= {"EOM": "accepted", "QUIT": "quit", "AUTH": "auth_ok"}
QUOTA_WORDS = ("daily", "quota", "per day", "24 hour")


@dataclass
class Seen:
    """The replies one line of the profile was seen as: its code, its texts (first first)."""

    code: int
    texts: dict[str, str]  # each text seen, first first, with the stage it was first seen at
    where: str  # where first: "session 1, message 3"
    stage: str
    count: int = 1


@dataclass
class Limit:
    """A limit's refusal as seen: after `before` (messages, recipients, MAIL FROMs), where,
    at which stage, and whether the server closed the connection with it."""

    before: int
    where: str
    stage: str
    closed: bool
    said: str = ""  # the refusal, "452 4.5.3 Error: too many recipients"


@dataclass
class Reading:
    """One pass over `transcript`'s exchanges in the order they happened."""

    transcript: Transcript
    lines: dict[str, Seen] = field(default_factory=dict)
    greetings: list[str] = field(default_factory=list)
    ehlo: list[list[str]] = field(default_factory=list)  # each EHLO reply's lines
    accepted: dict[int, int] = field(default_factory=dict)  # messages a session
    caps: list[Limit] = field(default_factory=list)  # 421 at MAIL after `before` messages
    recipient_caps: list[Limit] = field(default_factory=list)
    most_recipients: int = 0  # in one message the server accepted
    delivered: int = 0  # recipients of the messages accepted (a rate and a quota count them)
    quotas: dict[str, Limit] = field(default_factory=dict)  # rate_exceeded, daily_quota: first
    require_auth: str | None = None  # where a MAIL FROM before AUTH was refused with 530
    unmapped: list[Exchange] = field(default_factory=list)  # refusals no profile line holds
    after_421: list[Exchange] = field(default_factory=list)  # answered after a 421

    def __post_init__(self) -> None:
        last = {e.session: e for e in self.transcript.exchanges if e.code is not None}
        self._closing = {id(e) for e in last.values()}
        self._read()

    def _read(self) -> None:
        mails = 0  # MAIL FROMs taken, all sessions: a rate counts them
        recipients: dict[int, int] = {}
        authed: set[int] = set()
        refused_421: set[int] = set()
        for exchange in self.transcript.exchanges:
            if exchange.code is None:
                continue
            for text in exchange.lines:
                self._check(text, exchange)
            session, stage, code = exchange.session, exchange.stage, exchange.code
            accepted = self.accepted.setdefault(session, 0)
            where = f"session {session}, message {accepted + 1}"
            if session in refused_421:
                self.after_421.append(exchange)
                refused_421.discard(session)
            if code == 421:
                refused_421.add(session)
            sent = (exchange.sent or "").upper()
            if stage == "CONNECT" and code == 220:
                self.greetings.append(exchange.lines[-1])
            elif stage == "EHLO" and code == 250 and sent.startswith("EHLO"):
                self.ehlo.append(list(exchange.lines))
            elif stage in ACCEPTS and 200 <= code < 400 and (stage != "AUTH" or code == 235):
                if stage == "AUTH":
                    authed.add(session)
                elif stage == "MAIL":
                    mails += 1
                    recipients[session] = 0
                elif stage == "RCPT":
                    recipients[session] = recipients.get(session, 0) + 1
                elif stage == "EOM":
                    self.accepted[session] += 1
                    self.delivered += recipients.get(session, 0)
                    self.most_recipients = max(self.most_recipients, recipients.get(session, 0))
                self._line(ACCEPTS[stage], exchange, where)
            elif code >= 400:
                counts = (accepted, recipients.get(session, 0), mails)
                line = self._refusal(exchange, counts, where)
                if line == "auth_required" and session not in authed:
                    self.require_auth = self.require_auth or where
                if line is None:
                    self.unmapped.append(exchange)
                else:
                    self._line(line, exchange, where)

    def _refusal(self, exchange: Exchange, counts: tuple[int, int, int], where: str) -> str | None:
        """The profile line a refusal is (noting the limit it shows); None: no line holds it."""
        accepted, recipients, mails = counts
        stage, code, words = exchange.stage, exchange.code or 0, exchange.text.lower()
        found = ENHANCED.match(exchange.lines[-1])
        status = found.group() if found else ""
        closed = id(exchange) in self._closing
        if stage == "CONNECT":
            return "too_many_connections"
        if code == 451 and status == "4.4.2":
            return "idle_timeout"
        if stage == "AUTH":
            return {535: "auth_invalid", 530: "starttls_first"}.get(code)
        if stage == "MAIL" and code == 421 and accepted > 0:
            self.caps.append(Limit(accepted, where, stage, closed))
            return "session_cap"
        if stage == "MAIL" and code == 530:
            return "starttls_first" if "starttls" in words else "auth_required"
        if stage == "MAIL" and code == 503:
            return "sender_repeated"
        if stage in ("RCPT", "EOM") and (
            status[1:] == ".5.3"
            or any(w in words for w in ("too many recipients", "recipient count"))
        ):
            cap = recipients if stage == "RCPT" else recipients - 1
            if cap < 1:
                return None
            self.recipient_caps.append(Limit(cap, where, stage, closed, exchange.text))
            return "too_many_recipients"
        if (
            stage in ("MAIL", "RCPT")
            and code >= 500
            and (status[1:3] == ".1" or code in (501, 553))
        ):
            return "bad_sender" if stage == "MAIL" else "bad_recipient"
        if stage == "EOM" and (code == 552 or status[1:] == ".3.4"):
            return "too_large"
        if stage in ("MAIL", "DATA", "EOM") and 400 < code < 500 and code != 421:
            line = "daily_quota" if any(w in words for w in QUOTA_WORDS) else "rate_exceeded"
            first = next(iter(self.quotas.values()), None)
            if first is not None and first.stage != stage:
                return None  # a profile's rate and quota refuse at one stage
            # At MAIL FROM a bucket takes one a message; elsewhere one a recipient.
            before = mails if stage == "MAIL" else self.delivered
            self.quotas.setdefault(line, Limit(before, where, stage, closed))
            return line
        return None

    def _line(self, name: str, exchange: Exchange, where: str) -> None:
        text = exchange.lines[-1]
        seen = self.lines.get(name)
        if seen is None:
            self.lines[name] = Seen(
                exchange.code or 0, {text: exchange.stage}, where, exchange.stage
            )
            return
        seen.count += 1
        if text not in seen.texts and len(seen.texts) < 50:
            seen.texts[text] = exchange.stage

    def _check(self, text: str, exchange: Exchange) -> None:
        if len(text) > MOST_CHARS:
            problem = f"a reply line of {len(text):,} characters (a profile line holds "
            problem += f"{MOST_CHARS:,})"
        elif _CONTROL.search(text):
            problem = f"a reply line with control characters ({text[:60]!r})"
        else:
            return
        where = f"line {exchange.row}" if exchange.row else f"session {exchange.session}"
        problem += ": not a line to seed a profile with"
        raise PlanError(where, problem, source=self.transcript.source)


def template(texts: list[str], placeholder: str, *, guess: bool = False) -> tuple[str, bool]:
    """One line for `texts`, braces escaped for str.format: the words that vary from text to
    text as `placeholder` ("{}" fills one word, the last varying: the message id); with one
    text and `guess`, its last word that looks like an id (a digit in it, not a status code).
    Returns the line and whether every text fits it.

    >>> template(["Ok: queued as 4F2A9C1", "Ok: queued as 77B01D3"], "{}")
    ('Ok: queued as {}', True)
    >>> template(["2.0.0 Ok: queued as 4F2A9C1"], "{}", guess=True)
    ('2.0.0 Ok: queued as {}', True)
    """
    escaped = [t.replace("{", "{{").replace("}", "}}") for t in texts]
    split = [t.split(" ") for t in escaped]
    if len(texts) == 1 or len({len(words) for words in split}) > 1:
        words = split[0]
        ids = [n for n, w in enumerate(words) if n and _looks_like_id(w)] if guess else []
        words = [placeholder if ids and n == ids[-1] else w for n, w in enumerate(words)]
        return " ".join(words), len(texts) == 1
    varying = [n for n in range(len(split[0])) if len({words[n] for words in split}) > 1]
    keep = varying[-1:] if placeholder == "{}" else varying
    words = [placeholder if n in keep else w for n, w in enumerate(split[0])]
    return " ".join(words), len(keep) == len(varying)


def _looks_like_id(word: str) -> bool:
    return len(word) >= 5 and bool(re.search(r"\d", word)) and not ENHANCED.fullmatch(word)
