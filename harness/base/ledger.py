"""The server's truth: every session, command, reply, fault and accepted message.

A message is in the ledger (and in the store, when there is one) before its 250 is written.
Readers in other threads get snapshots; `wait_for` blocks until a condition on the ledger holds.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from harness.base.headers import HeaderFields, decoded, parse_headers
from harness.base.records import (
    _TRANSCRIPTS,
    EOM,
    ClientLine,
    FaultRecord,
    MessageRecord,
    ServerLine,
    SessionRecord,
    TranscriptLine,
    shape_of,
)
from harness.core.outcomes import Fate

__all__ = [  # the records are read through here too
    "EOM",
    "ClientLine",
    "FaultRecord",
    "Ledger",
    "LedgerSink",
    "MessageRecord",
    "ServerLine",
    "SessionRecord",
    "TranscriptLine",
    "decoded",
    "parse_headers",
]

#: How many distinct repeated texts the ledger keeps one copy of (first come, first kept).
SHARED_VALUES = 4096
#: Transcript lines kept as one object per shape (everything but the time), at most.
SHAPES = 16_384


class LedgerSink(Protocol):
    """Where a durable store plugs in; called before the client hears the outcome."""

    def session(self, record: SessionRecord) -> None: ...
    def message(self, record: MessageRecord, data: bytes) -> None: ...
    def fault(self, record: FaultRecord) -> None: ...


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
        self._numbers: dict[int, int] = {}  # the same for ints (apart: 1 == True == 1.0)
        self._shapes: dict[tuple[object, ...], TranscriptLine] = {}  # one line of each shape
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

    def log(self, session: SessionRecord, line: TranscriptLine) -> None:
        """Add a line to `session`'s conversation (and count it, if it is a command)."""
        with self._mutex:  # nobody waits for transcript lines: no notify
            key = shape_of(line)
            shape = self._shapes.get(key)
            if shape is None:
                if len(self._shapes) >= SHAPES:  # unique lines (an SES id) fill it: start over
                    self._shapes.clear()
                self._shapes[key] = shape = line
            session._append(line.at, shape, self.transcript_limit_lines)
            if isinstance(line, ClientLine):
                session.commands[line.verb] = session.commands.get(line.verb, 0) + 1

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
        configuration_set: str | None = None,
        command: int | None = None,
        tenant: str | None = None,
        fates: tuple[Fate, ...] = (),
    ) -> MessageRecord:
        """Record an accepted message; `session` is None for one that came through the API."""
        headers = parse_headers(data) if headers is None else headers
        message_id, subject = _first(headers, "message-id"), _first(headers, "subject")
        fields = HeaderFields(headers)  # packed: a third of the tuples' memory (headers.py)
        with self._lock:
            mail_from, rcpt_tos = self._share(mail_from), self._share(rcpt_tos)
            subject = self._share(decoded(subject))
            keep = self._bytes_held + len(data) <= self.memory_budget_bytes
            record = MessageRecord(
                sequence=len(self._messages) + 1,
                session=session.number if session is not None else 0,
                ses_id=ses_id,
                mail_from=mail_from,
                rcpt_tos=rcpt_tos,
                message_id=message_id,
                subject=subject,
                headers=fields,
                size=self._number(len(data)),
                sha256=hashlib.sha256(data).hexdigest(),
                at=at,
                wall_at=wall_at,
                acknowledged=acknowledged,
                data=data if keep else None,
                via=via,
                configuration_set=configuration_set,
                command=None if command is None else self._number(command),
                tenant=tenant,
                fates=fates,
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
            self._numbers.clear()
            self._shapes.clear()
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

    def _number(self, value: int) -> int:
        """One object for each size and command number that repeats (a batch's messages are
        often all one size, and its sessions number their commands alike): 28 bytes each.
        Called under the lock; bounded."""
        shared = self._numbers.get(value)
        if shared is not None:
            return shared
        if len(self._numbers) < SHARED_VALUES:
            self._numbers[value] = value
        return value

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


def _first(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name), None)
