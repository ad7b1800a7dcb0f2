"""A run's batch is written a chunk at a time, never held whole, and gives the same bytes as
`build_messages` (issue 28: a 100,000-message case peaked at 1,098 MiB holding its batch)."""

from __future__ import annotations

import dataclasses
import threading
import tracemalloc

import pytest

from harness.runner import stream
from harness.runner.matrix import run_case
from harness.runner.scenario import builtin_scenario, load_scenario
from harness.runner.strategy import OutgoingMessage
from harness.runner.stream import StreamedBatch
from harness.runner.workload import WorkloadSpec, build_messages

VARIED = WorkloadSpec(
    count=23,
    seed=5,
    recipients=(1, 3),
    attachments=0.4,
    unicode=0.5,
    domains=(("example.com", 3.0), ("example.net", 1.0)),
)


def test_a_streamed_batch_is_the_built_batch_message_for_message() -> None:
    built = build_messages(VARIED)
    batch = StreamedBatch(VARIED, chunk=4)
    assert len(batch) == len(built)
    assert [(m.id, m.sender, m.recipients, m.data) for m in batch] == [
        (m.id, m.sender, m.recipients, m.data) for m in built
    ]
    assert batch.chunks_written == 6  # 23 messages in chunks of 4, each written once
    assert batch[-1].data == built[-1].data
    assert [m.data for m in batch[2:5]] == [m.data for m in built[2:5]]


def test_a_chunk_let_go_is_written_again_with_the_same_bytes_and_addresses() -> None:
    """Address numbering depends on every address before it (two people of one name): a chunk
    written again keeps the addresses it had, and its bytes."""
    spec = WorkloadSpec(count=60, seed=2, recipients=(2, 2), attachments=0.3)
    built = build_messages(spec)
    batch = StreamedBatch(spec, chunk=5)
    late = [batch[i].data for i in range(40, 60)]  # writes chunks 0-11; holds the last two
    assert batch.chunks_written == 12
    assert [batch[i].data for i in range(10)] == [m.data for m in built[:10]]  # 0 and 1 again
    assert batch.chunks_written == 12 + 2
    assert late == [m.data for m in built[40:]]
    assert [m.recipients for m in batch] == [m.recipients for m in built]


def test_threads_reading_one_batch_read_the_same_bytes() -> None:
    batch = StreamedBatch(VARIED, chunk=3)
    expected = [m.data for m in build_messages(VARIED)]
    seen: list[list[bytes]] = []

    def read(order: range) -> None:
        seen.append([batch[i].data for i in order])

    threads = [threading.Thread(target=read, args=(range(23),)) for _ in range(3)]
    threads.append(threading.Thread(target=read, args=(range(22, -1, -1),)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen.count(expected) == 3 and expected[::-1] in seen


def test_a_case_never_holds_its_whole_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the runner: while a strategy reads every message of a 60 MB batch, the memory
    the case has allocated stays far below the batch's size (it held all of it before)."""
    monkeypatch.setattr(stream, "CHUNK", 50)
    scenario = load_scenario(builtin_scenario("session-cap"))
    spec = WorkloadSpec(count=1500, seed=9, body_bytes=(40_000, 40_000), attachments=0.0)
    scenario = dataclasses.replace(scenario, workload=spec)
    build_messages(WorkloadSpec(count=2, seed=9))  # faker's modules, loaded once, not counted
    seen = {"bytes": 0, "held": 0}

    def read_everything(messages, endpoint, clock):  # sends nothing: the batch is the subject
        for message in messages:
            seen["bytes"] += len(message.data)
        seen["held"] = tracemalloc.get_traced_memory()[0] - before
        return []

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        case = run_case(scenario, read_everything)
    finally:
        tracemalloc.stop()
    assert case["error"] is None and case["score"]["messages"] == 1500
    assert seen["bytes"] > 60_000_000
    # Two chunks of 50 messages of 40 KB are 4 MB; the server, the envelopes and faker a few.
    assert seen["held"] < seen["bytes"] / 4, f"{seen['held']:,} bytes held"


def test_a_strategy_may_replace_a_field_of_a_streamed_message() -> None:
    """A framework that restamps its messages (tests/test_identity.py) replaces `data` or an
    envelope field: it gets a plain OutgoingMessage with the bytes it gave or the batch's."""
    message = StreamedBatch(VARIED, chunk=4)[5]
    moved = dataclasses.replace(message, recipients=("nobody@elsewhere.example",))
    assert (type(moved), moved.data) == (OutgoingMessage, build_messages(VARIED)[5].data)
    assert dataclasses.replace(message, data=b"x") == OutgoingMessage(
        message.id, message.sender, message.recipients, b"x"
    )


def test_a_batch_that_let_go_of_its_bytes_writes_the_same_ones_again() -> None:
    spec = WorkloadSpec(count=7, seed=11, recipients=(1, 3))
    batch = StreamedBatch(spec, chunk=3)
    first = [m.data for m in batch]
    written = batch.chunks_written
    batch.let_go()  # what run_case does before scoring
    assert [m.data for m in batch] == first == [m.data for m in build_messages(spec)]
    assert batch.chunks_written > written
