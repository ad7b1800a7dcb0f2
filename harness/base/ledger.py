"""The server's truth: every session, command, reply, fault and accepted message.

A message is in the ledger (and in the store, when there is one) before its 250 is written.
Readers in other threads get snapshots; `wait_for` blocks until a condition on the ledger holds.
"""

from __future__ import annotations

import hashlib
import re
import threading
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any, Protocol

# Records use __slots__: a long run holds hundreds of thousands of them.

# Guards every transcript's two parallel lists, so a reader in another thread never sees them
# half updated. Held for an append or a copy: uncontended in practice.
_TRANSCRIPTS = threading.Lock()


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    at: float  # server clock
    direction: str  # ">" client to server, "<" server to client
    text: str


@dataclass(slots=True)
class SessionRecord:
    number: int
    peer: str
    opened_at: float
    opened_wall: float
    transcript_dropped: int = 0  # lines left out between the first and the newest
    closed_at: float | None = None
    closed_by: str | None = None  # "client" or "server"
    close_reason: str | None = None
    tls: bool = False
    user: str | None = None
    accepted: int = 0
    commands_after_421: int = 0
    # True when the session was already open at the last `Ledger.clear()` (a pytest test's
    # start): it began in an earlier test, and only what it did since is recorded here.
    carried_over: bool = False
    # Commands received, by verb (EOM for a message's data), counted in full: the transcript
    # keeps only its first and newest lines.
    commands: dict[str, int] = field(default_factory=dict)
    # The transcript, compact: a long run logs millions of lines. A time per line in an array
    # and the direction and text as one shared string: about 16 bytes a line.
    _times: array = field(default_factory=lambda: array("d"), repr=False)
    _lines: list[str] = field(default_factory=list, repr=False)
    # Where each fault of this session was decided: the number of transcript lines logged
    # before it (dropped ones included), so a view can show it between a command and its reply.
    _fault_marks: list[tuple[int, FaultRecord]] = field(default_factory=list, repr=False)
    _logged: int = field(default=0, repr=False)  # transcript lines ever logged

    @property
    def open(self) -> bool:
        return self.closed_at is None

    def summary(self) -> dict[str, Any]:
        """The session's plain fields (everything but the transcript), for JSON."""
        return {
            "number": self.number,
            "peer": self.peer,
            "opened_at": self.opened_at,
            "opened_wall": self.opened_wall,
            "closed_at": self.closed_at,
            "closed_by": self.closed_by,
            "close_reason": self.close_reason,
            "tls": self.tls,
            "user": self.user,
            "accepted": self.accepted,
            "commands_after_421": self.commands_after_421,
            "transcript_dropped": self.transcript_dropped,
        }

    @property
    def transcript(self) -> list[TranscriptLine]:
        """The first and the newest lines; see `Ledger.transcript_limit_lines`."""
        with _TRANSCRIPTS:  # the two lists change together; read them together
            pairs = list(zip(self._times, self._lines, strict=True))
        return [TranscriptLine(at, line[0], line[1:]) for at, line in pairs]

    @transcript.setter
    def transcript(self, lines: list[TranscriptLine]) -> None:
        times = array("d", (line.at for line in lines))
        texts = [line.direction + line.text for line in lines]
        with _TRANSCRIPTS:
            self._times, self._lines = times, texts
            self._logged = len(texts)
            self._fault_marks = []

    def conversation(self) -> list[TranscriptLine | FaultRecord | int]:
        """The transcript with each fault of the session where it was decided: after the
        command it answered, before the reply it caused. An int stands for lines left out."""
        with _TRANSCRIPTS:
            pairs = list(zip(self._times, self._lines, strict=True))
            marks = list(self._fault_marks)
            logged, dropped = self._logged, self.transcript_dropped
        # Kept lines: the first `head` (numbered from 0), then the newest, numbered up to
        # `logged`; at the limit the kept head is half of it (see `Ledger.log`).
        head = len(pairs) // 2 if dropped else len(pairs)
        tail_from = logged - (len(pairs) - head)
        numbers = [*range(head), *range(tail_from, logged)]
        out: list[TranscriptLine | FaultRecord | int] = []
        marks.reverse()
        for number, (at, line) in zip(numbers, pairs, strict=True):
            if dropped and number == tail_from:
                out.append(dropped)
            while marks and marks[-1][0] <= number:
                out.append(marks.pop()[1])
            out.append(TranscriptLine(at, line[0], line[1:]))
        out.extend(mark[1] for mark in reversed(marks))
        return out

    def _append(self, at: float, line: str, limit: int) -> None:
        with _TRANSCRIPTS:
            self._times.append(at)
            self._lines.append(line)
            self._logged += 1
            if len(self._lines) > limit:
                # The oldest line after the kept head goes; a short shift, no copy.
                del self._times[limit // 2]
                del self._lines[limit // 2]
                self.transcript_dropped += 1


@dataclass(frozen=True, slots=True)
class FaultRecord:
    """A fault rule or a limit that changed what the server did."""

    session: int
    command: int  # command number in the session (0: at connect)
    stage: str
    source: str  # "rule" or "limit"
    name: str
    action: str
    reply: str | None
    at: float
    rule_index: int | None = None  # for rules: its position in the plan's faults


@dataclass(frozen=True, slots=True)
class MessageRecord:
    sequence: int  # 1-based, order of acceptance
    session: int
    ses_id: str
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message_id: str | None  # the Message-ID header, as sent
    subject: str | None
    headers: tuple[tuple[str, str], ...]
    size: int
    sha256: str
    at: float
    wall_at: float
    acknowledged: bool  # False when the connection was cut before the 250 (drop_after_accept)
    data: bytes | None = field(default=None, repr=False)  # None once the memory budget is spent
    via: str = "smtp"  # how it came: "smtp", "api-v2" or "api-v1" (session 0 for the API)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


#: How many distinct repeated texts the ledger keeps one copy of (first come, first kept).
SHARED_VALUES = 4096


class LedgerSink(Protocol):
    """Where a durable store plugs in; called before the client hears the outcome."""

    def session(self, record: SessionRecord) -> None: ...
    def message(self, record: MessageRecord, data: bytes) -> None: ...
    def fault(self, record: FaultRecord) -> None: ...


# A header block the fast path reads alone: ASCII lines, each a field ("name:", the name as the
# email package's feed parser accepts it) or a folded continuation of one; no "From " line.
_FIELD = rb"[\x21-\x39\x3b-\x7e]+:[^\r\n]*"
_SIMPLE_HEAD = re.compile(
    rb"(?!From )" + _FIELD + rb"(?:\r\n(?:" + _FIELD + rb"|[ \t][^\r\n]*))*(?:\r\n)?"
)


def parse_headers(data: bytes) -> tuple[tuple[str, str], ...]:
    """The header fields of a raw message, values unfolded but not decoded (cheap: hot path)."""
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    if head.isascii() and _SIMPLE_HEAD.fullmatch(head):
        # What the email package gives for such a block, at a tenth of the cost.
        fields: list[list[str]] = []
        for line in head.decode("ascii").split("\r\n"):
            if line[:1] in (" ", "\t"):
                fields[-1][1] += line
            elif line:
                name, _, value = line.partition(":")
                fields.append([name, value])
        return tuple((name, " ".join(value.split())) for name, value in fields)
    message = BytesHeaderParser(policy=compat32).parsebytes(head + b"\r\n\r\n")
    return tuple((k, " ".join(str(v).split())) for k, v in message.items())


def decoded(value: str | None) -> str | None:
    """A header value with RFC 2047 encoded words decoded (=?utf-8?...?=)."""
    if value is None or "=?" not in value:  # no encoded word: nothing to decode
        return value
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError):  # a malformed encoded word: keep the raw text
        return value


class Ledger:
    """Thread-safe record of what the server saw and did.

    `memory_budget_bytes` caps the message bodies held in memory; later bodies are kept only in
    the store (if any), while every record, count and id stays exact.

    `transcript_limit_lines` caps each session's transcript, so a client that sends NOOP forever
    costs bounded memory: the first half of the limit and the newest lines are kept, and
    `SessionRecord.transcript_dropped` counts the lines left out between them.
    """

    def __init__(
        self,
        sink: LedgerSink | None = None,
        memory_budget_bytes: int = 32 * 1024 * 1024,
        transcript_limit_lines: int = 2000,
    ) -> None:
        if transcript_limit_lines < 2:
            raise ValueError("transcript_limit_lines must be at least 2 (a first and a last line)")
        self.sink = sink
        self.memory_budget_bytes = memory_budget_bytes
        self.transcript_limit_lines = transcript_limit_lines
        self._mutex = threading.RLock()
        self._lock = threading.Condition(self._mutex)  # readers wait on it for new records
        # One copy of each text that repeats (a batch's MAIL FROM, its From: header...), so a
        # long run's transcripts and headers hold references, not copies. Bounded.
        self._shared: dict[object, Any] = {}
        self._sessions: list[SessionRecord] = []
        self._messages: list[MessageRecord] = []
        self._faults: list[FaultRecord] = []
        self._bytes_held = 0
        self._open: dict[int, SessionRecord] = {}  # by number: where a fault's mark goes
        self._watchers: list[Callable[[str, Any], None]] = []

    # --- writing (the server's thread) -----------------------------------------------------

    def open_session(self, number: int, peer: str, at: float, wall: float) -> SessionRecord:
        record = SessionRecord(number, peer, at, wall)
        with self._lock:
            self._sessions.append(record)
            self._open[number] = record
            self._lock.notify_all()
        self._tell("session", record)
        return record

    def log(self, session: SessionRecord, direction: str, text: str, at: float) -> None:
        with self._mutex:  # nobody waits for transcript lines: no notify
            session._append(at, self._share(direction + text), self.transcript_limit_lines)
            if direction == ">":
                verb = "EOM" if text.startswith("[") else text.partition(" ")[0]
                session.commands[verb] = session.commands.get(verb, 0) + 1

    def close_session(self, session: SessionRecord, by: str, reason: str, at: float) -> None:
        with self._lock:
            if session.closed_at is not None:
                return
            session.closed_at, session.closed_by, session.close_reason = at, by, reason
            if self._open.get(session.number) is session:
                del self._open[session.number]
            self._lock.notify_all()
        if self.sink:
            self.sink.session(session)
        self._tell("closed", session)

    def fault(self, record: FaultRecord) -> None:
        with self._lock:
            self._faults.append(record)
            session = self._open.get(record.session)
            if session is not None:
                with _TRANSCRIPTS:
                    session._fault_marks.append((session._logged, record))
            self._lock.notify_all()
        if self.sink:
            self.sink.fault(record)
        self._tell("fault", record)

    def accept(
        self,
        session: SessionRecord | None,
        *,
        ses_id: str,
        mail_from: str,
        rcpt_tos: tuple[str, ...],
        data: bytes,
        at: float,
        wall_at: float,
        acknowledged: bool,
        headers: tuple[tuple[str, str], ...] | None = None,
        via: str = "smtp",
    ) -> MessageRecord:
        """Record an accepted message; `session` is None for one that came through the API."""
        headers = parse_headers(data) if headers is None else headers
        with self._lock:
            headers = tuple(self._share(field) for field in headers)
            mail_from, rcpt_tos = self._share(mail_from), self._share(rcpt_tos)
            keep = self._bytes_held + len(data) <= self.memory_budget_bytes
            record = MessageRecord(
                sequence=len(self._messages) + 1,
                session=session.number if session is not None else 0,
                ses_id=ses_id,
                mail_from=mail_from,
                rcpt_tos=rcpt_tos,
                message_id=_first(headers, "message-id"),
                subject=decoded(_first(headers, "subject")),
                headers=headers,
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                at=at,
                wall_at=wall_at,
                acknowledged=acknowledged,
                data=data if keep else None,
                via=via,
            )
            if keep:
                self._bytes_held += len(data)
            if self.sink:  # durable before anyone, the client included, hears of it
                self.sink.message(record, data)
            self._messages.append(record)
            if session is not None:
                session.accepted += 1
            self._lock.notify_all()
        self._tell("message", record)
        return record

    def restore(self, messages: list[MessageRecord]) -> None:
        """Take back the messages an earlier run recorded (from a store), before serving.

        New messages number on from them. They are not passed to the sink: it holds them already.
        """
        expected = list(range(len(self._messages) + 1, len(self._messages) + len(messages) + 1))
        if [m.sequence for m in messages] != expected:
            raise ValueError("restored messages must continue the sequence without gaps")
        with self._lock:
            self._messages.extend(messages)
            self._lock.notify_all()
        self._tell("restored", len(messages))

    def clear(self) -> None:
        """Forget everything recorded. Open sessions stay known, so they can close cleanly and
        go on being used; they are marked `carried_over` and their counts start from zero."""
        with self._lock:
            self._sessions = [s for s in self._sessions if s.open]
            for s in self._sessions:
                s.transcript = []
                s.transcript_dropped = 0
                s.accepted = s.commands_after_421 = 0
                s.commands = {}
                s.carried_over = True
            self._messages.clear()
            self._faults.clear()
            self._shared.clear()
            self._bytes_held = 0
        self._tell("cleared", None)

    def watch(self, callback: Callable[[str, Any], None]) -> Callable[[], None]:
        """Call `callback(kind, record)` after each change; returns the call that stops it.

        Kinds: "session" (opened), "closed", "message", "fault" (with the record), "restored"
        (a count), "cleared" (None). The callback runs in the writer's thread, outside the
        ledger's lock, so it must be quick and may not wait (the HTTP API hands the event to
        its own loop). Nobody watching costs the writer one empty-list check.
        """
        with self._mutex:
            self._watchers = [*self._watchers, callback]

        def stop() -> None:
            with self._mutex:
                self._watchers = [w for w in self._watchers if w is not callback]

        return stop

    def _tell(self, kind: str, record: Any) -> None:
        for watcher in self._watchers:  # a copy-on-write list: no lock to read it
            watcher(kind, record)

    def _share(self, value: Any) -> Any:
        """The copy of `value` kept already, if any (called under the lock)."""
        shared = self._shared.get(value)
        if shared is not None:
            return shared
        if len(self._shared) < SHARED_VALUES:
            self._shared[value] = value
        return value

    # --- reading (any thread) --------------------------------------------------------------

    @property
    def sessions(self) -> list[SessionRecord]:
        with self._lock:
            return list(self._sessions)

    @property
    def messages(self) -> list[MessageRecord]:
        with self._lock:
            return list(self._messages)

    @property
    def faults(self) -> list[FaultRecord]:
        with self._lock:
            return list(self._faults)

    def session(self, number: int) -> SessionRecord | None:
        """The session with this number (the newest, if a reset reused it), or None."""
        with self._lock:
            return next((s for s in reversed(self._sessions) if s.number == number), None)

    def wait_for(self, condition: Callable[[Ledger], Any], timeout_s: float = 10.0) -> Any:
        """Block until `condition(ledger)` is truthy; return it. Raises TimeoutError."""
        with self._lock:
            result = self._lock.wait_for(lambda: condition(self), timeout=timeout_s)
        if not result:
            raise TimeoutError(f"ledger condition not met within {timeout_s}s")
        return result

    def wait_for_messages(self, count: int, timeout_s: float = 10.0) -> list[MessageRecord]:
        """Block until at least `count` messages are recorded; return them."""
        self.wait_for(lambda ledger: len(ledger._messages) >= count, timeout_s)
        return self.messages


def _first(headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name), None)
