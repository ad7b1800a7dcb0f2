"""Worker processes: which task a free worker takes next, and the core its cases keep to."""

from __future__ import annotations

import os
import threading
from types import SimpleNamespace

import pytest

from harness.runner import workers
from harness.runner.workers import PIN_ENV, Task, _next_task, on_own_core, supervise


def take(pending, worker, pool):
    task = _next_task(pending, worker, pool)
    worker.groups.add(task.group)
    return f"{task.group}{task.index}"


def test_a_free_worker_keeps_to_its_group_then_opens_a_new_one_then_helps_out():
    groups = "AAABBC"
    pending = [Task(i, (), 1.0, group=g) for i, g in enumerate(groups)]
    first, second = pool = [SimpleNamespace(groups=set()), SimpleNamespace(groups=set())]
    assert take(pending, first, pool) == "A0"
    assert take(pending, second, pool) == "B3"  # not A1: nobody has begun B
    assert take(pending, second, pool) == "B4"
    assert take(pending, second, pool) == "C5"  # B is done; C is nobody's yet
    assert take(pending, second, pool) == "A1"  # nothing new left: it helps with A
    assert take(pending, first, pool) == "A2"
    assert pending == []


def test_tasks_without_a_group_go_in_order():
    pending = [Task(i, (), 1.0) for i in range(3)]
    worker = SimpleNamespace(groups=set())
    assert [_next_task(pending, worker, [worker]).index for _ in range(3)] == [0, 1, 2]


def affinity_in_a_case(label: str, started=None) -> tuple[set[int], set[int]]:
    """What a case's own thread and a thread it starts may run on (a worker task)."""
    with on_own_core():
        seen: dict[str, set[int]] = {}
        thread = threading.Thread(target=lambda: seen.update(t=os.sched_getaffinity(0)))
        thread.start()
        thread.join()
        return os.sched_getaffinity(0), seen["t"]


linux_only = pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity"), reason="cores are chosen on Linux only"
)


@linux_only
def test_a_case_and_the_threads_it_starts_keep_to_their_workers_core():
    cores = sorted(os.sched_getaffinity(0))
    tasks = [Task(i, ("case",), 60.0) for i in range(4)]
    results = dict(supervise("tests.test_workers:affinity_in_a_case", tasks, workers=2))
    for own, thread in results.values():
        assert len(own) == 1 and own == thread
        assert own <= set(cores)
    # Two workers, two different cores where there are two.
    assert len({min(own) for own, _ in results.values()}) == min(2, len(cores))


@linux_only
def test_pinning_can_be_switched_off_and_does_nothing_outside_a_worker(monkeypatch):
    everything = os.sched_getaffinity(0)
    assert affinity_in_a_case("here") == (everything, everything)
    monkeypatch.setenv(PIN_ENV, "0")
    results = dict(supervise("tests.test_workers:affinity_in_a_case", [Task(0, ("x",), 60.0)], 1))
    assert results[0] == (everything, everything)


@linux_only
def test_a_core_that_cannot_be_chosen_leaves_the_case_unpinned(monkeypatch):
    everything = os.sched_getaffinity(0)
    monkeypatch.setattr(workers, "_own_core", 10_000)  # no such core
    with on_own_core():
        assert os.sched_getaffinity(0) == everything
    assert os.sched_getaffinity(0) == everything
