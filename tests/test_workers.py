"""Which task a free worker takes next: its own group first, so set-up is cached, not repeated."""

from __future__ import annotations

from types import SimpleNamespace

from harness.workers import Task, _next_task


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
