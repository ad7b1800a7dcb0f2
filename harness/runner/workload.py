"""Seeded batches of realistic mail: faker names, addresses, subjects and bodies.

Every message has a unique Message-ID and a unique (sender, first recipient) pair, which is how
the fake server counts the attempts of one message and how the scorer ties a refused
transaction to its message. Some messages are written in other scripts (accents, Cyrillic,
Greek, Japanese) and some carry an attachment, so clients meet 8-bit content and MIME.

A batch is bounded in total (:data:`MAX_TOTAL_BYTES`, counted before a byte is written), and a
message with a large body or attachment is written each time it is read rather than held: a
scenario of 100,000 messages of 64 MiB used to build every body up front (5.9 GB and counting).

>>> spec = WorkloadSpec(count=3, seed=1)
>>> [m.recipients for m in build_messages(spec)] == [m.recipients for m in build_messages(spec)]
True
"""

from __future__ import annotations

import base64
import random
import textwrap
import unicodedata
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import Header
from email.utils import format_datetime, formataddr
from typing import overload

from harness.base.clock import VIRTUAL_EPOCH_S, Clock
from harness.core.errors import PlanError
from harness.core.simulator import SIMULATOR_DOMAIN
from harness.runner.strategy import OutgoingMessage

#: Locales for the share of messages that are not plain English.
OTHER_LOCALES = ("de_DE", "fr_FR", "el_GR", "ru_RU", "ja_JP", "pt_BR")
ATTACHMENTS = (
    ("invoice-{n}.pdf", "application/pdf"),
    ("report-{n}.csv", "text/csv"),
    ("photo-{n}.png", "image/png"),
)
PARAGRAPHS = 40  # per locale
#: What a whole batch may add up to, by the expected size of its messages plus the largest one.
MAX_TOTAL_BYTES = 2 * 1024**3
#: A body or attachment larger than this is written when the message is read, not held.
LAZY_BYTES = 1024 * 1024
BASE64_GROWTH = 4 / 3 + 1 / 57  # base64 with a line break every 76 characters


@dataclass(frozen=True)
class WorkloadSpec:
    """What a batch looks like. Sizes are approximate body bytes, before MIME encoding."""

    count: int
    seed: int = 0
    recipients: tuple[int, int] = (1, 1)  # per message, min and max
    body_bytes: tuple[int, int] = (400, 4000)
    attachments: float = 0.1  # share of messages with an attachment
    attachment_bytes: tuple[int, int] = (2_000, 40_000)
    unicode: float = 0.2  # share of messages written in another locale
    sender: str = "notifications@example.com"
    domains: tuple[tuple[str, float], ...] = (("example.com", 1.0),)  # recipient domain, weight
    burst_size: int | None = None  # messages arrive in bursts of this many...
    pause_s: float = 0.0  # ...this far apart (virtual seconds)
    #: The batch mails one list this many times: message i goes to message i mod (count /
    #: mailings)'s recipients, from ``sender`` with a ``+m<k>`` tag for mailing k > 0.
    mailings: int = 1
    #: Shares of the list at SES's mailbox simulator: ``bounce+<name>@`` (a hard bounce) and
    #: ``complaint+<name>@`` addresses (docs/events.md).
    bouncing: float = 0.0
    complaining: float = 0.0

    def __post_init__(self) -> None:
        total = self.total_bytes()
        if total > MAX_TOTAL_BYTES:
            raise PlanError(
                "workload",
                f"{self.count:,} messages of up to {self.largest_bytes():,} bytes come to about "
                f"{total:,} bytes, more than a run builds",
                allowed=f"count x message size <= {MAX_TOTAL_BYTES:,} bytes "
                "(fewer messages, or smaller body_bytes / attachment_bytes)",
            )

    def largest_bytes(self) -> int:
        """The largest message the spec allows, body and encoded attachment (headers aside)."""
        attachment = self.attachment_bytes[1] * BASE64_GROWTH if self.attachments > 0 else 0
        return int(self.body_bytes[1] + attachment)

    def total_bytes(self) -> int:
        """The batch's expected size, plus its largest message: what building it costs."""
        body = sum(self.body_bytes) / 2
        attachment = self.attachments * sum(self.attachment_bytes) / 2 * BASE64_GROWTH
        return int(self.count * (body + attachment)) + self.largest_bytes()

    def arrivals_s(self) -> list[float]:
        """When each message becomes available, in seconds from the start of the run."""
        if not self.burst_size:
            return [0.0] * self.count
        return [(i // self.burst_size) * self.pause_s for i in range(self.count)]


def build_messages(spec: WorkloadSpec, seed: int | None = None) -> list[OutgoingMessage]:
    """The batch for `spec`; `seed` overrides the spec's own. Same seed, same bytes.

    This holds the whole batch; a run reads it through :class:`harness.runner.stream.
    StreamedBatch` instead, which holds a chunk of it at a time and gives the same bytes.
    """
    writer = Writer(spec, seed)
    return [writer.write(index) for index in range(spec.count)]


#: A writer's random state at some message: its own generator's and each locale's faker's,
#: the 624 words of each Mersenne Twister packed in an array (2.5 KB rather than 25 KB).
Checkpoint = tuple[tuple[int, "array[int]", float | None], ...]


class Writer:
    """Writes a spec's messages in order, one at a time, from one seeded random stream.

    `state` and `restore` let a reader write a stretch of the batch again later, the same bytes,
    without holding it (:class:`harness.runner.stream.StreamedBatch`).
    """

    def __init__(self, spec: WorkloadSpec, seed: int | None = None) -> None:
        from faker import Faker  # heavy import, only where mail is written

        self.spec = spec
        seed = spec.seed if seed is None else seed
        self._rng = random.Random(f"workload:{seed}")
        self._fakers = {}
        for locale in ("en_US", *OTHER_LOCALES):
            fake = Faker(locale)
            fake.seed_instance(f"{seed}:{locale}")
            self._fakers[locale] = fake
        # Paragraphs from a per-locale pool: faker's lorem is slow; bodies need only look real.
        self._pools = {
            locale: [_wrapped(fake.paragraph(nb_sentences=5)) for _ in range(PARAGRAPHS)]
            for locale, fake in self._fakers.items()
        }
        self._domains, self._weights = zip(*spec.domains, strict=True)
        self._sender = formataddr((self._fakers["en_US"].company(), spec.sender))
        self._used: set[str] = set()
        self._per_mailing = -(-spec.count // spec.mailings)
        #: The first mailing's people and addresses, which later mailings send to again (only
        #: with mailings > 1). A writer that writes a stretch again shares its first writer's.
        self.lists: list[tuple[list[tuple[str, str]], list[str]]] = []
        self._senders: dict[int, str] = {}

    def _mailing_sender(self, mailing: int) -> str:
        """The envelope sender of a later mailing (one string per mailing)."""
        if mailing not in self._senders:
            local, _, domain = self.spec.sender.rpartition("@")
            self._senders[mailing] = f"{local}+m{mailing}@{domain}"
        return self._senders[mailing]

    def _randoms(self) -> list[random.Random]:
        return [self._rng, *(fake.random for fake in self._fakers.values())]

    def written_all(self) -> None:
        """The stream is written to its end: the addresses drawn so far, kept only to number
        the next ones apart, can go (about 52 bytes a message). Writing again after
        :meth:`restore` takes its addresses as arguments and needs none of them."""
        self._used = set()

    def state(self) -> Checkpoint:
        """Where the random stream is now: :meth:`restore` comes back to it."""
        return tuple(
            (version, array("I", words), gauss)
            for version, words, gauss in (r.getstate() for r in self._randoms())
        )

    def restore(self, checkpoint: Checkpoint) -> None:
        for r, (version, words, gauss) in zip(self._randoms(), checkpoint, strict=True):
            r.setstate((version, tuple(words), gauss))

    def write(self, index: int, addresses: Sequence[str] | None = None) -> OutgoingMessage:
        """Message `index`, the next in the stream. Writing it again after :meth:`restore`
        takes the `addresses` it had the first time (their numbering depends on every address
        written before it); the random draws are the same either way."""
        spec, rng = self.spec, self._rng
        locale = rng.choice(OTHER_LOCALES) if rng.random() < spec.unicode else "en_US"
        fake = self._fakers[locale]
        mailing, sender_address = index // self._per_mailing, spec.sender
        if mailing == 0:
            people = [
                (fake.first_name(), fake.last_name()) for _ in range(rng.randint(*spec.recipients))
            ]
            used = self._used if addresses is None else set()
            drawn = [
                _simulated(
                    rng,
                    spec,
                    _address(
                        self._fakers["en_US"], p, rng.choices(self._domains, self._weights)[0], used
                    ),
                )
                for p in people
            ]
            if addresses is None:
                addresses = drawn
            if spec.mailings > 1 and index == len(self.lists):  # the list the later mailings mail
                self.lists.append((people, list(addresses)))
        else:
            people, addresses = self.lists[index % self._per_mailing]
            sender_address = self._mailing_sender(mailing)
        message_id = f"<{rng.getrandbits(64):016x}.{index}@{spec.sender.rpartition('@')[2]}>"
        headers = [
            ("From", self._sender),
            (
                "To",
                ", ".join(
                    _mailbox(f"{first} {last}", a)
                    for (first, last), a in zip(people, addresses, strict=True)
                ),
            ),
            ("Subject", _encoded(fake.sentence(nb_words=rng.randint(3, 9)).rstrip("."))),
            ("Date", format_datetime(datetime.fromtimestamp(VIRTUAL_EPOCH_S + index, UTC))),
            ("Message-ID", message_id),
            ("MIME-Version", "1.0"),
        ]
        pool = self._pools[locale]
        name = f"{people[0][0]} {people[0][1]}"
        body_size = rng.randint(*spec.body_bytes)
        body: str | _Later = (
            _Later(rng.getrandbits(64), body_size, pool, name)
            if body_size > LAZY_BYTES
            else _body(rng, pool, name, body_size)
        )
        attachment = None
        if rng.random() < spec.attachments:
            pattern, mime_type = rng.choice(ATTACHMENTS)
            size = rng.randint(*spec.attachment_bytes)
            payload: bytes | _Later = (
                _Later(rng.getrandbits(64), size) if size > LAZY_BYTES else rng.randbytes(size)
            )
            attachment = (pattern.format(n=index + 1), mime_type, payload)
        boundary = f"=_{rng.getrandbits(64):016x}"
        recipients = tuple(addresses)
        if isinstance(body, _Later) or (attachment and isinstance(attachment[2], _Later)):
            recipe = _Recipe(headers, body, attachment, boundary)
            return LazyMessage(message_id, sender_address, recipients, recipe)
        data = _mime(headers, body, attachment, boundary)  # type: ignore[arg-type]
        return OutgoingMessage(message_id, sender_address, recipients, data)


@dataclass(frozen=True)
class _Later:
    """A large body (with `pool`) or attachment, written from its own seed when needed."""

    seed: int
    size: int
    pool: Sequence[str] = field(default=(), repr=False)
    name: str = ""

    def text(self) -> str:
        return _body(random.Random(self.seed), self.pool, self.name, self.size)

    def payload(self) -> bytes:
        return random.Random(self.seed).randbytes(self.size)


@dataclass(frozen=True)
class _Recipe:
    headers: list[tuple[str, str]]
    body: str | _Later
    attachment: tuple[str, str, bytes | _Later] | None
    boundary: str

    def build(self) -> bytes:
        body = self.body.text() if isinstance(self.body, _Later) else self.body
        attachment = self.attachment
        if attachment is not None and isinstance(attachment[2], _Later):
            attachment = (attachment[0], attachment[1], attachment[2].payload())
        return _mime(self.headers, body, attachment, self.boundary)  # type: ignore[arg-type]


class LazyMessage(OutgoingMessage):
    """An OutgoingMessage whose `data` is written each time it is read, the same bytes each
    time: a batch of large messages then holds only the ones being sent. `dataclasses.replace`
    on one gives a plain OutgoingMessage."""

    def __new__(
        cls,
        id: str,
        sender: str,
        recipients: tuple[str, ...],
        recipe: _Recipe | None = None,
        data: bytes | None = None,
    ) -> OutgoingMessage:
        if data is not None:  # dataclasses.replace passes every field, the bytes among them
            return OutgoingMessage(id, sender, recipients, data)
        return super().__new__(cls)

    def __init__(
        self,
        id: str,
        sender: str,
        recipients: tuple[str, ...],
        recipe: _Recipe | None = None,
        data: bytes | None = None,
    ) -> None:
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "sender", sender)
        object.__setattr__(self, "recipients", recipients)
        object.__setattr__(self, "_recipe", recipe)

    @property  # type: ignore[override]
    def data(self) -> bytes:
        return self._recipe.build()  # type: ignore[attr-defined]

    def __repr__(self) -> str:  # the dataclass's would write the whole message out
        return (
            f"LazyMessage(id={self.id!r}, sender={self.sender!r}, "
            f"recipients={self.recipients!r}, data=<written when read>)"
        )


def _address(fake: object, person: tuple[str, str], domain: str, used: set[str]) -> str:
    """An ASCII address for `person` (made up when the name has no Latin letters)."""
    parts = [_ascii(p) for p in person]
    if not all(parts):
        parts = [_ascii(fake.first_name()), _ascii(fake.last_name())]  # type: ignore[attr-defined]
    local = ".".join(parts)
    address, n = f"{local}@{domain}", 1
    while address in used:
        n += 1
        address = f"{local}{n}@{domain}"
    used.add(address)
    return address


def _simulated(rng: random.Random, spec: WorkloadSpec, address: str) -> str:
    """`address`, or with the spec's shares its name at the simulator's bounce@ or complaint@."""
    if not spec.bouncing and not spec.complaining:
        return address  # draws nothing: batches without them keep their bytes
    roll = rng.random()
    name = address.rpartition("@")[0]
    if roll < spec.bouncing:
        return f"bounce+{name}@{SIMULATOR_DOMAIN}"
    if roll < spec.bouncing + spec.complaining:
        return f"complaint+{name}@{SIMULATOR_DOMAIN}"
    return address


def _ascii(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return "".join(c for c in folded if c.isalnum())


def _encoded(text: str) -> str:
    """A header value, RFC 2047-encoded when it is not ASCII."""
    return text if text.isascii() else Header(text, "utf-8").encode()


def _mailbox(name: str, address: str) -> str:
    return formataddr((name, address), charset="utf-8")


def _body(rng: random.Random, pool: Sequence[str], name: str, size: int) -> str:
    parts = [f"{name},"]
    length = len(parts[0])
    while length < size:
        parts.append(rng.choice(pool))
        length += len(parts[-1].encode()) + 4
    return "\r\n\r\n".join(parts)


def _mime(
    headers: list[tuple[str, str]],
    body: str,
    attachment: tuple[str, str, bytes] | None,
    boundary: str,
) -> bytes:
    """The message as bytes on the wire: 8-bit UTF-8 text, base64 attachment, CRLF line ends."""
    text_part = [
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        body,
    ]
    lines = [f"{k}: {v}" for k, v in headers]
    if attachment is None:
        lines += text_part
    else:
        filename, mime_type, payload = attachment
        encoded = base64.encodebytes(payload).decode().splitlines()
        lines += [
            f'Content-Type: multipart/mixed; boundary="{boundary}"',
            "",
            f"--{boundary}",
            *text_part,
            f"--{boundary}",
            f'Content-Type: {mime_type}; name="{filename}"',
            "Content-Transfer-Encoding: base64",
            f'Content-Disposition: attachment; filename="{filename}"',
            "",
            *encoded,
            f"--{boundary}--",
        ]
    return ("\r\n".join(lines) + "\r\n").encode()


def _wrapped(paragraph: str, width: int = 76) -> str:
    """A paragraph in lines under 998 bytes (RFC 5322), words kept whole."""
    return "\r\n".join(textwrap.wrap(paragraph, width))


class Workload(Sequence[OutgoingMessage]):
    """The batch as a strategy sees it: reading message *i* waits until it has arrived.

    Arrival times count from when the workload was made, on `clock`, like jobs reaching a queue.
    """

    def __init__(
        self, messages: Sequence[OutgoingMessage], arrivals_s: Sequence[float], clock: Clock
    ) -> None:
        self._messages = messages  # not copied: a StreamedBatch writes its bytes as they are read
        self._arrivals_s = list(arrivals_s)
        self._clock = clock
        self._start = clock.now()

    def __len__(self) -> int:
        return len(self._messages)

    @overload
    def __getitem__(self, index: int) -> OutgoingMessage: ...
    @overload
    def __getitem__(self, index: slice) -> list[OutgoingMessage]: ...

    def __getitem__(self, index: int | slice) -> OutgoingMessage | list[OutgoingMessage]:
        if isinstance(index, slice):
            chosen = range(len(self))[index]
            if chosen:
                self._wait_for(max(chosen, key=lambda i: self._arrivals_s[i]))
            return [self._messages[i] for i in chosen]
        self._wait_for(range(len(self))[index])
        return self._messages[index]

    def __iter__(self) -> Iterator[OutgoingMessage]:
        for index in range(len(self)):
            yield self[index]

    def _wait_for(self, index: int) -> None:
        due = self._start + self._arrivals_s[index]
        now = self._clock.now()
        if now < due:
            self._clock.sleep(due - now)
