"""What the ledger records, as data: sessions and their conversations, faults, messages.

A conversation is kept as structured lines: a :class:`ClientLine` for each command the client
sent (its verb, the address of a MAIL FROM or RCPT TO, the size of a message's data, and the
engine's number for it) and a :class:`ServerLine` for each reply (its code, enhanced code, and
the key of the rule or limit that shaped it). A proxy's session also holds what it said to its
upstream server and what that answered (:class:`UpstreamCommand`, :class:`UpstreamReply`),
between the client's command and the reply the client got. The server fills the fields as it
acts; the text of a line is rendered from them. Readers (the scorer, hunting's story, the
command runner, conformance) read fields, never SMTP text.
"""

from __future__ import annotations

import dataclasses
import threading
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from harness.core.outcomes import Fate

# Records use __slots__: a long run holds hundreds of thousands of them.

# Guards every transcript's list and fault marks, so a reader in another thread never sees
# them half updated. Held for an append or a copy: uncontended in practice.
_TRANSCRIPTS = threading.Lock()

#: The verb of the line that stands for a message's data and its final ".".
EOM = "EOM"


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    """One line of a session's conversation: a :class:`ClientLine` or a :class:`ServerLine`."""

    at: float  # server clock
    direction: ClassVar[str] = ""

    @property
    def text(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class ClientLine(TranscriptLine):
    """A command the client sent, as the server understood it.

    >>> ClientLine(0.0, "MAIL", "FROM:<a@x> SIZE=10", address="a@x").text
    'MAIL FROM:<a@x> SIZE=10'
    >>> ClientLine(0.0, EOM, size=512).text
    '[512 bytes of message data] .'
    """

    verb: str = ""  # upper case; EOM for a message's data and its "."
    argument: str | None = None  # what followed the verb, as sent (AUTH's secrets masked)
    address: str | None = None  # MAIL FROM / RCPT TO: the path, as the server parsed it
    size: int | None = None  # EOM: the message's bytes
    number: int | None = None  # the engine's command number (None: the engine was not asked)
    direction: ClassVar[str] = ">"

    @property
    def text(self) -> str:
        if self.verb == EOM:
            return f"[{self.size} bytes of message data] ."
        return self.verb if self.argument is None else f"{self.verb} {self.argument}"


@dataclass(frozen=True, slots=True)
class ServerLine(TranscriptLine):
    """A reply line the server sent, or a note in its place (`code` None: e.g. a failed TLS
    handshake, where nothing was sent).

    >>> line = ServerLine(0.0, 421, "4.4.2 Timeout", decided_by="limit:idle_timeout_s")
    >>> line.text, line.enhanced
    ('421 4.4.2 Timeout', '4.4.2')
    >>> ServerLine(0.0, 250, "smtp.example", last=False).text
    '250-smtp.example'
    """

    code: int | None = None
    message: str = ""  # the text after the code
    enhanced: str | None = None  # RFC 3463's code at the start of `message`, e.g. "5.7.1"
    decided_by: str | None = None  # what shaped it: "limit:<field>", "rule:<label>", None
    last: bool = True  # False for all but the last line of a multi-line reply (EHLO's)
    direction: ClassVar[str] = "<"

    def __post_init__(self) -> None:
        if self.enhanced is None:
            object.__setattr__(self, "enhanced", _enhanced(self.code, self.message))

    @property
    def text(self) -> str:
        if self.code is None:
            return self.message
        separator = " " if self.last else "-"
        return f"{self.code}{separator}{self.message}".rstrip()


@dataclass(frozen=True, slots=True)
class UpstreamCommand(TranscriptLine):
    """What a proxy sent its upstream server for the client (AUTH's secrets masked), at `stage`.

    >>> UpstreamCommand(0.0, "MAIL FROM:<a@x>", stage="MAIL").text
    'MAIL FROM:<a@x>'
    """

    line: str = ""
    stage: str = ""
    direction: ClassVar[str] = "»"

    @property
    def text(self) -> str:
        return self.line


@dataclass(frozen=True, slots=True)
class UpstreamReply(TranscriptLine):
    """A reply line from a proxy's upstream server, or a note in its place (`code` None: it
    could not be reached, closed, or did not answer).

    >>> UpstreamReply(0.0, 250, "2.0.0 Ok: queued", stage="EOM").text
    '250 2.0.0 Ok: queued'
    """

    code: int | None = None
    message: str = ""
    stage: str = ""
    last: bool = True
    direction: ClassVar[str] = "«"

    @property
    def text(self) -> str:
        if self.code is None:
            return self.message
        return f"{self.code}{' ' if self.last else '-'}{self.message}".rstrip()


def _enhanced(code: int | None, message: str) -> str | None:
    """The enhanced status code that opens `message`, when its class matches `code`'s."""
    head = message.partition(" ")[0]
    parts = head.split(".")
    if (
        code is None
        or len(parts) != 3
        or not all(p.isdigit() and 0 < len(p) <= 3 for p in parts)
        or parts[0] != str(code)[0]
    ):
        return None
    return head


def shape_of(line: TranscriptLine) -> tuple[object, ...]:
    """Everything about `line` but its time: lines of one shape are kept as one object (see
    `SessionRecord`). A batch's sessions repeat the same commands and replies."""
    if type(line) is ClientLine:
        return (">", line.verb, line.argument, line.address, line.size, line.number)
    if type(line) is ServerLine:
        return ("<", line.code, line.message, line.enhanced, line.decided_by, line.last)
    return (type(line), line)


def _at(shape: TranscriptLine, at: float) -> TranscriptLine:
    return shape if shape.at == at else dataclasses.replace(shape, at=at)


def line_json(line: TranscriptLine) -> dict[str, Any]:
    """A line's fields for JSON (the HTTP API, the store), with its text."""
    out: dict[str, Any] = {"at": line.at, "direction": line.direction, "text": line.text}
    if isinstance(line, ClientLine):
        out.update(verb=line.verb, argument=line.argument, address=line.address)
        out.update(size=line.size, number=line.number)
    elif isinstance(line, ServerLine):
        out.update(code=line.code, message=line.message, enhanced=line.enhanced)
        out.update(decided_by=line.decided_by, last=line.last)
    elif isinstance(line, UpstreamCommand):
        out.update(stage=line.stage)
    elif isinstance(line, UpstreamReply):
        out.update(code=line.code, message=line.message, stage=line.stage, last=line.last)
    return out


def line_from_json(item: dict[str, Any]) -> TranscriptLine:
    """The line `line_json` wrote."""
    if item["direction"] == ">":
        return ClientLine(
            item["at"],
            item["verb"],
            item.get("argument"),
            address=item.get("address"),
            size=item.get("size"),
            number=item.get("number"),
        )
    if item["direction"] == UpstreamCommand.direction:
        return UpstreamCommand(item["at"], item.get("text", ""), stage=item.get("stage", ""))
    if item["direction"] == UpstreamReply.direction:
        return UpstreamReply(
            item["at"],
            item.get("code"),
            item.get("message", ""),
            stage=item.get("stage", ""),
            last=item.get("last", True),
        )
    return ServerLine(
        item["at"],
        item.get("code"),
        item.get("message", ""),
        enhanced=item.get("enhanced"),
        decided_by=item.get("decided_by"),
        last=item.get("last", True),
    )


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
    # When a reply found the client gone already (server clock): it hung up waiting for it, as
    # a client whose own timeout fired does.
    hung_up_waiting_at: float | None = None
    # True when the session was already open at the last `Ledger.clear()` (a pytest test's
    # start): it began in an earlier test, and only what it did since is recorded here.
    carried_over: bool = False
    # Commands received, by verb (EOM for a message's data), counted in full: the transcript
    # keeps only its first and newest lines.
    commands: dict[str, int] = field(default_factory=dict)
    # The kept lines, compactly: each one's time in `_at`, the rest in `_shapes`, a line that
    # may stand for every line of its shape (`Ledger.log` keeps one object per shape). A line
    # object and its float cost about 100 bytes; 100,000 messages make 800,000 lines.
    _shapes: list[TranscriptLine] = field(default_factory=list, repr=False)
    _at: array[float] = field(default_factory=lambda: array("d"), repr=False)
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
        with _TRANSCRIPTS:
            shapes, times = list(self._shapes), self._at.tolist()
        return [_at(shape, at) for shape, at in zip(shapes, times, strict=True)]

    @transcript.setter
    def transcript(self, lines: list[TranscriptLine]) -> None:
        with _TRANSCRIPTS:
            self._shapes = list(lines)
            self._at = array("d", (line.at for line in lines))
            self._logged = len(self._shapes)
            self._fault_marks = []

    def commands_sent(self) -> list[ClientLine]:
        """The client's lines of the transcript, in order."""
        return [line for line in self.transcript if isinstance(line, ClientLine)]

    def conversation(self) -> list[TranscriptLine | FaultRecord | int]:
        """The transcript with each fault of the session where it was decided: after the
        command it answered, before the reply it caused. An int stands for lines left out."""
        with _TRANSCRIPTS:
            shapes, times = list(self._shapes), self._at.tolist()
            marks = list(self._fault_marks)
            logged, dropped = self._logged, self.transcript_dropped
        # Kept lines: the first `head` (numbered from 0), then the newest, numbered up to
        # `logged`; at the limit the kept head is half of it (see `Ledger.log`).
        lines = [_at(shape, at) for shape, at in zip(shapes, times, strict=True)]
        head = len(lines) // 2 if dropped else len(lines)
        tail_from = logged - (len(lines) - head)
        numbers = [*range(head), *range(tail_from, logged)]
        out: list[TranscriptLine | FaultRecord | int] = []
        marks.reverse()
        for number, line in zip(numbers, lines, strict=True):
            if dropped and number == tail_from:
                out.append(dropped)
            while marks and marks[-1][0] <= number:
                out.append(marks.pop()[1])
            out.append(line)
        out.extend(mark[1] for mark in reversed(marks))
        return out

    def _append(self, at: float, shape: TranscriptLine, limit: int) -> None:
        """Keep a line: its time `at`, and `shape`, a line like it (see `shape_of`)."""
        with _TRANSCRIPTS:
            self._shapes.append(shape)
            self._at.append(at)
            self._logged += 1
            if len(self._shapes) > limit:
                # The oldest line after the kept head goes; a short shift, no copy.
                del self._shapes[limit // 2]
                del self._at[limit // 2]
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
    # An API refusal of one message names it (its sender and first recipient), and whether it
    # refuses for good (MessageRejected) or for now (a throttle): the scorer reads both.
    sender: str | None = None
    recipient: str | None = None
    permanent: bool = False

    @property
    def key(self) -> str:
        """What a reply it shaped names in `ServerLine.decided_by`."""
        return f"{self.source}:{self.name}"


@dataclass(frozen=True, slots=True)
class MessageRecord:
    sequence: int  # 1-based, order of acceptance
    session: int
    ses_id: str
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message_id: str | None  # the Message-ID header, as sent
    subject: str | None
    headers: Sequence[tuple[str, str]]  # the ledger's are a HeaderFields: packed (headers.py)
    size: int
    sha256: str
    at: float
    wall_at: float
    acknowledged: bool  # False when the connection was cut before the 250 (drop_after_accept)
    data: bytes | None = field(default=None, repr=False)  # None once the memory budget is spent
    via: str = "smtp"  # how it came: "smtp", "api-v2" or "api-v1" (session 0 for the API)
    configuration_set: str | None = None  # the API's ConfigurationSetName (SMTP: its header)
    command: int | None = None  # the end of data's command number in its session (SMTP)
    tenant: str | None = None  # the SES tenant it named (X-SES-TENANT header, TenantName)
    # What became of it after SES's answer (a rule's bounce, the suppression list...): its
    # events follow from these (`harness.base.outcome_events`). Empty: the simulator decides,
    # else it is delivered.
    fates: tuple[Fate, ...] = ()

    def header(self, name: str) -> str | None:
        """The value of the first header field called `name` (any case); None without one."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None
