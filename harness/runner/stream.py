"""A run's batch, written a chunk at a time: the same bytes as `build_messages`, never all held.

A case of 100,000 messages used to build its whole batch first and hold it until scoring
(about 5.6 KB a message, with its data); the case peaked at 1,098 MiB. A
:class:`StreamedBatch` holds, for each message, only what scoring reads (its Message-ID,
envelope sender and recipients) and writes the bytes of :data:`CHUNK` messages at a time, as a
strategy reaches them. It keeps the writer's random state at the start of each chunk, so a
message of a chunk already let go (a strategy resending an early message, a second pass over
the batch) is written again, the same bytes.

>>> from harness.runner.workload import WorkloadSpec, build_messages
>>> spec = WorkloadSpec(count=5, seed=3)
>>> batch = StreamedBatch(spec, chunk=2)
>>> [m.data for m in batch] == [m.data for m in build_messages(spec)]
True
>>> batch.chunks_written  # three chunks of at most 2, each written once
3
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import overload

from harness.runner.strategy import OutgoingMessage
from harness.runner.workload import Checkpoint, WorkloadSpec, Writer

#: Messages written together; their bytes are held while a strategy is among them.
CHUNK = 1000
#: Chunks whose bytes are held at once: the one being sent and the one before it.
HELD_CHUNKS = 2


class StreamedBatch(Sequence[OutgoingMessage]):
    """The batch for `spec` (and `seed`, which overrides the spec's), as a sequence of
    :class:`StreamedMessage`: their envelopes are kept, their bytes written when read.

    Safe to read from several threads; a message's bytes are the same whenever they are read.
    """

    def __init__(
        self, spec: WorkloadSpec, seed: int | None = None, *, chunk: int | None = None
    ) -> None:
        self._spec, self._seed, self._chunk = spec, seed, chunk or CHUNK
        self._writer: Writer | None = None  # made at the first read: faker is slow to load
        self._checkpoints: list[Checkpoint] = []  # at the start of each chunk written so far
        # Every message written so far: what scoring reads, not the bytes.
        self._ids: list[str] = []
        self._senders: list[str] = []  # the spec's, or a later mailing's (one string each)
        self._recipients: list[tuple[str, ...]] = []
        self._held: OrderedDict[int, list[bytes | OutgoingMessage]] = OrderedDict()
        self._lock = threading.RLock()
        #: How many times a chunk was written (a second time after being let go counts again).
        self.chunks_written = 0

    def __len__(self) -> int:
        return self._spec.count

    @overload
    def __getitem__(self, index: int) -> OutgoingMessage: ...
    @overload
    def __getitem__(self, index: slice) -> list[OutgoingMessage]: ...

    def __getitem__(self, index: int | slice) -> OutgoingMessage | list[OutgoingMessage]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        index = range(len(self))[index]
        with self._lock:
            while len(self._ids) <= index:
                self._write_next_chunk()
            return StreamedMessage(
                self._ids[index],
                self._senders[index],
                self._recipients[index],
                batch=self,
                index=index,
            )

    def __iter__(self) -> Iterator[OutgoingMessage]:
        for index in range(len(self)):
            yield self[index]

    def data(self, index: int) -> bytes:
        """The bytes of message `index`, written again from its chunk's start when let go."""
        number = index // self._chunk
        with self._lock:
            if number not in self._held:
                self._rewrite(number)
            self._held.move_to_end(number)
            held = self._held[number][index - number * self._chunk]
        return held if isinstance(held, bytes) else held.data

    def let_go(self) -> None:
        """Drop the bytes held (a chunk or two): scoring reads envelopes only. A message read
        later is written again, the same bytes."""
        with self._lock:
            self._held.clear()

    def _write_next_chunk(self) -> None:
        if self._writer is None:
            self._writer = Writer(self._spec, self._seed)
        number = len(self._checkpoints)
        self._checkpoints.append(self._writer.state())
        first = number * self._chunk
        written = [self._writer.write(i) for i in range(first, min(first + self._chunk, len(self)))]
        self._ids += (m.id for m in written)
        self._senders += (m.sender for m in written)
        self._recipients += (m.recipients for m in written)
        if len(self._ids) == len(self):
            self._writer.written_all()
        self._hold(number, written)

    def _rewrite(self, number: int) -> None:
        """Chunk `number` again from its checkpoint, by a writer of its own (the first writer
        goes on where it stopped)."""
        writer = Writer(self._spec, self._seed)
        writer.restore(self._checkpoints[number])
        assert self._writer is not None
        writer.lists = self._writer.lists  # what a later mailing sends to again
        first = number * self._chunk
        last = min(first + self._chunk, len(self))
        self._hold(number, [writer.write(i, self._recipients[i]) for i in range(first, last)])

    def _hold(self, number: int, written: list[OutgoingMessage]) -> None:
        self.chunks_written += 1
        # A large message stays a recipe (LazyMessage): its bytes are written each time it is read.
        self._held[number] = [m if type(m) is not OutgoingMessage else m.data for m in written]
        while len(self._held) > HELD_CHUNKS:
            self._held.popitem(last=False)


class StreamedMessage(OutgoingMessage):
    """A message of a :class:`StreamedBatch`: its envelope is held, its `data` read from the
    batch (the same bytes each time). `dataclasses.replace` on one gives a plain
    :class:`OutgoingMessage` (a strategy that restamps its messages does that)."""

    def __new__(
        cls,
        id: str,
        sender: str,
        recipients: tuple[str, ...],
        data: bytes | None = None,
        *,
        batch: StreamedBatch | None = None,
        index: int = 0,
    ) -> OutgoingMessage:
        if data is not None:  # dataclasses.replace passes every field, the bytes among them
            return OutgoingMessage(id, sender, recipients, data)
        return super().__new__(cls)

    def __init__(
        self,
        id: str,
        sender: str,
        recipients: tuple[str, ...],
        data: bytes | None = None,
        *,
        batch: StreamedBatch | None = None,
        index: int = 0,
    ) -> None:
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "sender", sender)
        object.__setattr__(self, "recipients", recipients)
        object.__setattr__(self, "_batch", batch)
        object.__setattr__(self, "index", index)

    @property  # type: ignore[override]
    def data(self) -> bytes:
        return self._batch.data(self.index)  # type: ignore[attr-defined]

    def __repr__(self) -> str:  # the dataclass's would write the message out
        return (
            f"StreamedMessage(id={self.id!r}, sender={self.sender!r}, "
            f"recipients={self.recipients!r}, data=<message {self.index} of its batch>)"
        )
