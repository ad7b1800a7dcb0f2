"""A case says when its counts depend on time (issue 26: "Where a count still depends on time,
the case's line says so").

The engine notes the margin of every decision its clock makes (harness.core.margins); a client
in another process whose closest call is within its clock's resolution, or who hung up waiting
for a reply, has counts another run may not repeat, and the terminal, summary.md, report.html
and the failure text say so. The margins are held to their meaning by property tests: moving
the command by less than its margin never changes the decision.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.core.engine import Engine
from harness.core.limits import TokenBucket
from harness.core.plan import Plan, Rule, Stage
from harness.reports.digest import time_dependence, time_notes
from harness.reports.failure import case_report
from harness.reports.html import render_html
from harness.reports.markdown import render_summary
from harness.runner import faketime
from harness.runner.matrix import run_case, run_matrix
from harness.runner.scenario import load_scenario, scenario_paths

needs_faketime = pytest.mark.skipif(
    faketime.find_library() is None, reason="needs libfaketime (Debian: faketime)"
)

CLIENTS = Path(__file__).resolve().parent.parent / "clients"
gaps = st.lists(st.floats(0.0, 2.0, allow_nan=False), min_size=1, max_size=30)


def _decisions(rate: float, burst: float, times: list[float]) -> tuple[list[bool], TokenBucket]:
    bucket = TokenBucket(rate, burst, now=0.0)
    return [bucket.try_take(1, now=t) for t in times], bucket


@settings(max_examples=300, deadline=None)
@given(gaps, st.floats(0.5, 20.0), st.floats(1.0, 20.0), st.floats(0.01, 0.99))
def test_a_rate_decision_stands_for_any_shift_of_its_command_within_its_margin(
    gaps_s, rate, burst, fraction
):
    times = [sum(gaps_s[: i + 1]) for i in range(len(gaps_s))]
    decided, bucket = _decisions(rate, burst, times)
    margin = bucket.margin_s
    # The last command, moved by less than its margin either way (never before the one
    # before it, which the bucket has already seen), is decided the same.
    for shift in (fraction * margin, -fraction * margin):
        moved = times[-1] + shift
        if len(times) > 1 and moved < times[-2]:
            continue
        again, _ = _decisions(rate, burst, [*times[:-1], moved])
        assert again[-1] == decided[-1]


def test_a_refused_send_becomes_an_accepted_one_just_past_its_margin():
    decided, bucket = _decisions(1.0, 1.0, [0.0, 0.25])
    assert decided == [True, False]
    assert bucket.margin_s == pytest.approx(0.75)
    again, _ = _decisions(1.0, 1.0, [0.0, 0.25 + 0.75 + 1e-6])
    assert again == [True, True]


def test_the_engine_notes_the_nearest_call_of_its_rate_idle_timeout_and_greylist():
    plan = Plan.from_dict(
        {
            "limits": {"rate_per_s": 1.0, "burst": 1.0, "idle_timeout_s": 10.0},
            "faults": [
                {
                    "name": "greylist",
                    "stage": "RCPT",
                    "greylist_s": 300.0,
                    "action": "reply",
                    "code": 451,
                    "text": "4.7.1 greylisted",
                }
            ],
        }
    )
    engine = Engine(plan, now=0.0)
    session, _ = engine.connect(now=0.0)
    engine.command(session, Stage.MAIL, now=9.5, sender="a@x")  # 0.5 s before the timeout
    assert engine.margins.closest.decided_by == "limit:idle_timeout_s"
    assert engine.margins.closest.margin_s == pytest.approx(0.5)

    engine.replied(session, now=9.5)
    engine.command(session, Stage.RCPT, now=9.6, sender="a@x", recipients=("b@y",))
    engine.replied(session, now=9.6)
    # The retry, on a new connection, 0.2 s after its window closed: the nearest call is the
    # greylist's now.
    again, _ = engine.connect(now=309.0)
    engine.command(again, Stage.MAIL, now=309.1, sender="a@x")
    engine.command(again, Stage.RCPT, now=309.8, sender="a@x", recipients=("b@y",))
    assert engine.margins.closest.decided_by == "rule:greylist"
    assert engine.margins.closest.margin_s == pytest.approx(0.2)


def _case(clock: dict, passed: bool = True) -> dict:
    return {
        "scenario": "throttling",
        "strategy": "cmd:node send.js",
        "passed": passed,
        "expectations": [],
        "clock": clock,
        "messages": [],
        "reproducer": "ses-harness run ...",
    }


NEAR = {
    "kind": "progress",
    "time_scale": 8,
    "depends_on_time": True,
    "closest_call": {"margin_s": 0.0031, "decided_by": "limit:rate_per_s", "at_s": 4.25},
    "resolution_s": 0.06,
    "hung_up_waiting": [],
}


def test_a_decision_within_the_resolution_is_named_with_its_margin():
    why = time_dependence(_case(NEAR))
    assert why is not None
    assert "the send rate decided a command 3.1 ms from its edge (t=4.250s)" in why
    assert "resolution of 60.0 ms at 8x" in why
    assert time_dependence(_case({**NEAR, "depends_on_time": False})) is None
    on_edge = {**NEAR, "closest_call": {**NEAR["closest_call"], "margin_s": 0.0}}
    assert "the send rate decided a command on its very edge (t=4.250s)" in time_dependence(
        _case(on_edge)
    )
    assert time_dependence(_case({"kind": "virtual", "depends_on_time": False})) is None


def test_a_client_that_hung_up_waiting_is_named_with_its_session():
    clock = {**NEAR, "closest_call": None, "time_scale": 1200}
    clock["hung_up_waiting"] = [{"session": 7, "at_s": 812.5}, {"session": 9, "at_s": 900.0}]
    why = time_dependence(_case(clock))
    assert "hung up waiting for a reply 2 times (first: session 7 at t=812.500s)" in why
    assert "at 1200x its own timeouts are 1200 times shorter" in why


def test_every_output_says_which_cases_depend_on_time():
    scenario = load_scenario(scenario_paths(["session-cap"])[0])
    results = run_matrix(
        [dataclasses.replace(scenario, workload=dataclasses.replace(scenario.workload, count=20))],
        ["naive"],
        seed=1,
    )
    case = results["cases"][0]
    assert time_notes(results) == []  # the virtual clock: nothing depends on time
    case["clock"] = NEAR | {"kind": "progress"}
    line = time_dependence(case)
    assert time_notes(results) == [f"session-cap x naive: {line}"]
    assert "3.1 ms from its edge" in render_summary(results)
    assert "(depends on time)" in render_summary(results)
    html = render_html(results)
    assert "3.1 ms from its edge" in html and "aria-label='depends on time'" in html
    assert "3.1 ms from its edge" in case_report(case)


HANG_UP = """
import json, os, socket
host, port = os.environ["SMTP_HOST"], int(os.environ["SMTP_PORT"])
with socket.create_connection((host, port)) as s:
    s.recv(1000)
    s.sendall(b"EHLO me\\r\\n")
    s.recv(1000)
    s.sendall(b"MAIL FROM:<a@example.com>\\r\\n")
    # gone before the reply (the server holds it for a second), as a client whose timeout fired
"""


@needs_faketime
def test_a_command_client_that_hangs_up_waiting_for_a_reply_is_said_to_depend_on_time(tmp_path):
    path = tmp_path / "client.py"
    path.write_text(textwrap.dedent(HANG_UP), encoding="utf-8")
    scenario = load_scenario(scenario_paths(["session-cap"])[0])
    slow = Rule.from_dict({"name": "slow", "stage": "MAIL", "action": "delay", "delay_s": 1.0})
    scenario = dataclasses.replace(
        scenario,
        workload=dataclasses.replace(scenario.workload, count=3),
        plan=dataclasses.replace(scenario.plan, faults=(slow,)),
    )
    case = run_case(scenario, f"cmd:python {shlex.quote(str(path))}")
    clock = case["clock"]
    assert [h["session"] for h in clock["hung_up_waiting"]] == [1]
    assert clock["depends_on_time"] is True
    assert "hung up waiting for a reply 1 time" in time_dependence(case)
    json.dumps(case)  # results.json takes it


@needs_faketime
def test_a_command_client_that_meets_only_the_session_cap_does_not_depend_on_time():
    scenario = load_scenario(scenario_paths(["session-cap"])[0])
    client = shlex.quote(str(CLIENTS / "smtplib_batch.py"))
    case = run_case(scenario, f"cmd:python {client}")
    assert case["error"] is None
    clock = case["clock"]
    # The clock decided every send (the rate) and every command (the idle timeout), each far
    # from its edge; the 421 is counted, not timed.
    assert clock["closest_call"]["margin_s"] > clock["resolution_s"]
    assert clock["hung_up_waiting"] == []
    assert clock["depends_on_time"] is False
    assert time_dependence(case) is None
