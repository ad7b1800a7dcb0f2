"""The report writers: results.json, summary.md, junit.xml and report.html from a results dict.

The dict is built by hand like the runner would build it: two scenarios, three strategies, one
case that loses and duplicates messages, one that misses its efficiency target, one that raised.
"""

from __future__ import annotations

import copy
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness import PlanError
from harness.reports import validate_results, write_reports
from harness.reports.schema import MESSAGE_CLASSES

HOSTILE_ID = "<script>alert(1)</script>@x"
SESSION_CAP_REPLY = "421 Connection closed by server. Maximum message count per session reached."


def msg_id(scenario: str, n: int) -> str:
    return f"<{scenario}-{n:04d}@example.test>"


def make_case(scenario, strategy, messages, sessions, deliveries, faults, expectations, **extra):
    """A case dict whose score is computed from its messages, as the runner's scorer does."""
    counts = {cls: sum(m["class"] == cls for m in messages) for cls in MESSAGE_CLASSES}
    total = len(messages)
    elapsed = max([s["closed_at"] or 0.0 for s in sessions] + [0.0])
    score = {
        "messages": total,
        **counts,
        "delivered_once_score": (counts["delivered_once"] + counts["rejected_reported"]) / total,
        "sessions": len(sessions),
        "commands": 5 * total + 3 * len(sessions),
        "retries": sum(m["copies"] > 1 for m in messages),
        "retried_5xx": 0,
        "commands_after_421": 0,
        "throttle_violations": 0,
        "virtual_elapsed_s": elapsed,
        "fastest_possible_s": extra.pop("fastest", elapsed),
        "efficiency": extra.pop("efficiency", 1.0),
        "wall_s": 0.25,
    }
    results_of = [e(score) for e in expectations]
    case = {
        "scenario": scenario,
        "strategy": strategy,
        "seed": 3,
        "passed": all(e["passed"] for e in results_of),
        "held_to": "own",
        "expectations": results_of,
        "score": score,
        "messages": messages,
        "timeline": {"sessions": sessions, "deliveries": deliveries, "faults": faults},
        "error": None,
        "reproducer": f"ses-harness run scenarios/{scenario}.toml --strategy {strategy} --seed 3",
    }
    case.update(extra)
    return case


def expect(metric: str, op: str, bound: float):
    def check(score: dict) -> dict:
        # Expectations on delivered_once bound the score (a fraction), as scenario files do.
        actual = score["delivered_once_score" if metric == "delivered_once" else metric]
        passed = actual >= bound if op == ">=" else actual == bound
        return {
            "expr": f"{metric} {op} {bound}",
            "metric": metric,
            "actual": actual,
            "passed": passed,
        }

    return check


def message(ident, cls, claim="sent", copies=1, sessions=(1,), reply=None):
    return {
        "id": ident,
        "class": cls,
        "copies": copies,
        "claim": claim,
        "reply": reply,
        "ses_ids": [f"0100{hash(ident) & 0xFFFFFF:06x}-{k}" for k in range(copies)],
        "sessions": list(sessions),
    }


def session(number, opened, closed, by="client", reason="quit"):
    return {
        "number": number,
        "opened_at": opened,
        "closed_at": closed,
        "closed_by": by,
        "close_reason": reason,
    }


def session_cap_case(strategy: str, count: int, cap: int, rotate: bool) -> dict:
    """`count` messages at 0.5 s each into a server that ends a session after `cap` messages."""
    messages, sessions, deliveries, faults = [], [], [], []
    expectations = [expect("delivered_once", ">=", 1.0), expect("duplicated", "==", 0)]
    at, number = 0.0, 1
    opened = 0.0
    in_session = 0
    for n in range(count):
        ident = HOSTILE_ID if n == 2 else msg_id("session-cap", n)
        if in_session == cap:
            faults.append(
                {
                    "at": at,
                    "session": number,
                    "stage": "MAIL",
                    "source": "limit",
                    "name": "session_limit",
                    "reply": SESSION_CAP_REPLY,
                }
            )
            sessions.append(session(number, opened, at, "server", "limit:session_limit"))
            if not rotate:
                # The naive client pipelines on, believing the rest were sent.
                messages += [
                    message(msg_id("session-cap", k), "silently_lost", sessions=())
                    for k in range(n, count)
                ]
                return make_case(
                    "session-cap", strategy, messages, sessions, deliveries, faults, expectations
                )
            number, opened, in_session = number + 1, at + 0.1, 0
            at += 0.1
        at += 0.5
        in_session += 1
        deliveries.append({"at": at, "session": number, "id": ident, "acknowledged": True})
        messages.append(message(ident, "delivered_once", sessions=(number,)))
    sessions.append(session(number, opened, at + 0.05))
    return make_case("session-cap", strategy, messages, sessions, deliveries, faults, expectations)


def flaky_eom_case(strategy: str) -> dict:
    """drop_after_accept on message 4: `reconnect` resends it (a duplicate)."""
    messages, deliveries = [], []
    sessions = [session(1, 0.0, 2.0, "server", "fault:drop_after_accept"), session(2, 2.1, 5.0)]
    faults = [
        {
            "at": 2.0,
            "session": 1,
            "stage": "EOM",
            "source": "rule",
            "name": "drop-eom-4",
            "reply": None,
        },
        {
            "at": 3.0,
            "session": 2,
            "stage": "RCPT",
            "source": "rule",
            "name": "greylist",
            "reply": "451 4.7.1 Greylisted, try again <later>",
        },
    ]
    for n in range(10):
        ident = msg_id("flaky-eom", n)
        at = 0.4 * n + (0.3 if n >= 5 else 0.0)
        sess = 1 if n < 5 else 2
        if n == 4:
            deliveries.append({"at": 2.0, "session": 1, "id": ident, "acknowledged": False})
            deliveries.append({"at": 2.4, "session": 2, "id": ident, "acknowledged": True})
            messages.append(message(ident, "duplicated", copies=2, sessions=(1, 2)))
        elif n == 7:
            messages.append(
                message(
                    ident,
                    "misreported",
                    claim="failed",
                    sessions=(2,),
                    reply="451 4.7.1 Greylisted, try again <later>",
                )
            )
            deliveries.append({"at": at, "session": sess, "id": ident, "acknowledged": True})
        else:
            deliveries.append({"at": at, "session": sess, "id": ident, "acknowledged": True})
            messages.append(message(ident, "delivered_once", sessions=(sess,)))
    expectations = [expect("duplicated", "==", 0), expect("delivered_once", ">=", 0.8)]
    return make_case("flaky-eom", strategy, messages, sessions, deliveries, faults, expectations)


def error_case() -> dict:
    return {
        "scenario": "flaky-eom",
        "strategy": "naive",
        "seed": 3,
        "passed": False,
        "held_to": "contract",
        "expectations": [],
        "score": None,
        "messages": [],
        "timeline": {
            "sessions": [session(1, 0.0, 2.0, "server", "fault:drop_after_accept")],
            "deliveries": [
                {"at": 0.4 * n, "session": 1, "id": msg_id("flaky-eom", n), "acknowledged": True}
                for n in range(4)
            ],
            "faults": [],
        },
        "error": "strategy raised SMTPServerDisconnected: Connection unexpectedly closed",
        "reproducer": "ses-harness run scenarios/flaky-eom.toml --strategy naive --seed 3",
    }


def build_results() -> dict:
    """Two scenarios x three strategies; naive fails session-cap and raises on flaky-eom,
    reconnect duplicates on flaky-eom and misses its efficiency target on session-cap."""
    cases = [
        session_cap_case("robust", 40, 15, rotate=True),
        session_cap_case("naive", 40, 15, rotate=False),
        session_cap_case("reconnect", 40, 15, rotate=True),
        flaky_eom_case("robust"),
        error_case(),
        flaky_eom_case("reconnect"),
    ]
    # robust recovers from the flaky EOM without duplicates.
    robust = cases[3]
    for m in robust["messages"]:
        m.update({"class": "delivered_once", "copies": 1, "claim": "sent", "reply": None})
    robust["timeline"]["deliveries"] = [
        d for d in robust["timeline"]["deliveries"] if d["acknowledged"]
    ]
    robust["score"].update(duplicated=0, misreported=0, delivered_once=10, delivered_once_score=1.0)
    robust["expectations"] = [expect("duplicated", "==", 0)(robust["score"])]
    robust["passed"] = True
    # reconnect spends longer than the limits need on session-cap.
    slow = cases[2]
    slow["score"].update(efficiency=0.6)
    slow["expectations"].append(
        {"expr": "efficiency >= 0.8", "metric": "efficiency", "actual": 0.6, "passed": False}
    )
    slow["passed"] = False
    return {
        "schema": "ses-fault-harness/results",
        "version": 1,
        "run": {
            "id": "20261129-203000-ab12",
            "started_at": "2026-11-29T20:30:00Z",
            "wall_s": 3.2,
            "seed": 3,
            "harness_version": "0.1.0",
            "command": "ses-harness run scenarios/ --seed 3",
            "workers": 2,
            "virtual_s": 93.0,
        },
        "scenarios": [
            {
                "name": "session-cap",
                "file": "scenarios/session-cap.toml",
                "description": "SES closes a session after 15 messages with a 421.",
                "best_possible": "rotate sessions before the cap",
                "contract": ["delivered_once == 40", "duplicated == 0"],
                "messages": 40,
            },
            {
                "name": "flaky-eom",
                "file": "scenarios/flaky-eom.toml",
                "description": "The 5th message is stored but the 250 never arrives.",
                "best_possible": "deduplicate on retry",
                "contract": ["silently_lost == 0"],
                "messages": 10,
            },
        ],
        "strategies": [
            {"name": "naive", "description": "one session, stops at the first error"},
            {"name": "reconnect", "description": "reconnect and resend on 4xx/421"},
            {"name": "robust", "description": "everything, never retries a 5xx"},
        ],
        "cases": cases,
    }


@pytest.fixture
def results() -> dict:
    data = build_results()
    validate_results(data)
    return data


@pytest.fixture
def written(results, tmp_path) -> dict[str, Path]:
    paths = write_reports(results, tmp_path / "run")
    return {p.name: p for p in paths}


# results.json and validation


def test_write_reports_writes_the_four_files_into_the_run_dir(written, tmp_path):
    assert sorted(written) == ["junit.xml", "report.html", "results.json", "summary.md"]
    assert all(p.parent == tmp_path / "run" and p.stat().st_size > 0 for p in written.values())


def test_results_json_round_trips_to_the_same_dict(results, written):
    assert json.loads(written["results.json"].read_text(encoding="utf-8")) == results


def test_every_report_is_byte_identical_for_the_same_input(results, tmp_path):
    first = write_reports(results, tmp_path / "a")
    second = write_reports(copy.deepcopy(results), tmp_path / "b")
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda r: r["cases"][1]["score"].pop("duplicated"), "cases[1].score.duplicated"),
        (lambda r: r["cases"][0]["score"].update(efficiency="fast"), "cases[0].score.efficiency"),
        (lambda r: r["cases"][0].update(passed=1), "cases[0].passed"),
        (
            lambda r: r["cases"][3]["messages"][0].update({"class": "lost"}),
            "cases[3].messages[0].class",
        ),
        (lambda r: r["run"].update(wall_s=float("nan")), "run.wall_s"),
        (lambda r: r["cases"][2].update(strategy="nope"), "cases[2].strategy"),
        (lambda r: r.update(version=2), "version"),
        (
            lambda r: r["cases"][0]["timeline"]["faults"][0].update(extra=1),
            "cases[0].timeline.faults[0].extra",
        ),
        (lambda r: r["cases"][1]["score"].update(silently_lost=3), "cases[1].score.messages"),
        (lambda r: r["cases"][0].update(error=None, score=None), "cases[0].score"),
    ],
)
def test_a_malformed_results_dict_is_refused_naming_the_bad_key(results, tmp_path, mutate, key):
    mutate(results)
    with pytest.raises(PlanError) as caught:
        write_reports(results, tmp_path / "run")
    assert caught.value.key == key
    assert str(caught.value).startswith(f"results: key '{key}'")
    assert not (tmp_path / "run").exists()  # nothing half written


def test_the_schema_doc_names_every_field_the_validator_checks():
    from harness.reports import schema

    doc = (Path(schema.__file__).parent / "SCHEMA.md").read_text(encoding="utf-8")
    specs = [
        schema.RUN,
        schema.SCENARIO,
        schema.STRATEGY,
        schema.EXPECTATION,
        schema.SCORE,
        schema.MESSAGE,
        schema.SESSION,
        schema.DELIVERY,
        schema.FAULT,
        schema.CASE,
    ]
    missing = [f for spec in specs for f in spec.fields if f"`{f}`" not in doc]
    assert missing == []


# summary.md


def ranking_rows(summary: str) -> list[list[str]]:
    section = summary.split("## Strategies, best first")[1].split("##")[0]
    rows = [line for line in section.splitlines() if re.match(r"\| \d+ \|", line)]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def test_summary_ranks_strategies_by_mean_delivered_once_score(written):
    rows = ranking_rows(written["summary.md"].read_text(encoding="utf-8"))
    assert [r[1] for r in rows] == ["robust", "reconnect", "naive"]
    robust, reconnect, naive = rows
    # delivered once, silently lost, duplicated, misreported, uncertain, given up, never sent,
    # efficiency, as well as a correct client, met expectations
    assert robust[2:] == ["100%", "0", "0", "0", "0", "0", "0", "1.00", "2/2", "2/2"]
    assert reconnect[2:] == ["90.0%", "0", "1", "1", "0", "0", "0", "0.80", "2/2", "0/2"]
    # naive: 15 of 40 delivered on session-cap, no score on flaky-eom (counts as 0).
    assert naive[2:] == ["18.8%", "25", "0", "0", "0", "0", "0", "1.00", "0/2", "0/2 (1 error)"]


def test_summary_opens_with_a_one_line_verdict(written):
    lines = written["summary.md"].read_text(encoding="utf-8").splitlines()
    assert (
        lines[2] == "**❌ FAIL: 3 failed and 1 raised an error of 6 cases "
        "(3 strategies x 2 scenarios).**"
    )


def test_summary_grid_marks_each_scenario_and_strategy(written):
    summary = written["summary.md"].read_text(encoding="utf-8")
    assert "| scenario | robust | reconnect | naive |" in summary
    assert "| session-cap | ✅ 100% | ❌ 100% | ❌ 37.5% |" in summary
    assert "| flaky-eom | ✅ 100% | ❌ 80.0% | 💥 |" in summary


def test_summary_details_a_failing_case_with_its_ids_and_reproducer(written):
    summary = written["summary.md"].read_text(encoding="utf-8")
    section = summary.split("### ❌ flaky-eom x reconnect")[1].split("###")[0]
    assert "- expected `duplicated == 0`, actual 1" in section
    assert "- duplicated (1): `<flaky-eom-0004@example.test>`" in section
    assert "- misreported (1): `<flaky-eom-0007@example.test>`" in section
    assert "ses-harness run scenarios/flaky-eom.toml --strategy reconnect --seed 3" in section
    lost = summary.split("### ❌ session-cap x naive")[1].split("###")[0]
    assert "- silently lost (25): `<session-cap-0015@example.test>`" in lost
    assert "and 20 more" in lost
    crashed = summary.split("### 💥 flaky-eom x naive")[1]
    assert "- error: `strategy raised SMTPServerDisconnected" in crashed


# junit.xml


def test_junit_has_a_suite_per_scenario_and_counts_failures_and_errors(written):
    root = ET.parse(written["junit.xml"]).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("6", "3", "1")
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == ["session-cap", "flaky-eom"]
    cap = suites["session-cap"]
    assert (cap.get("tests"), cap.get("failures"), cap.get("errors")) == ("3", "2", "0")
    assert [t.get("name") for t in cap.findall("testcase")] == ["robust", "naive", "reconnect"]
    assert all(t.get("classname") == "session-cap" for t in cap.findall("testcase"))


def test_junit_failure_carries_the_failed_expectation_and_the_reproducer(written):
    root = ET.parse(written["junit.xml"]).getroot()
    case = root.find("testsuite[@name='session-cap']/testcase[@name='naive']")
    failure = case.find("failure")
    assert failure.get("message") == "delivered_once >= 1.0 (actual 0.375)"
    assert "silently lost (25): <session-cap-0015@example.test>" in failure.text
    assert "Reproduce: ses-harness run scenarios/session-cap.toml --strategy naive --seed 3" in (
        failure.text
    )
    passed = root.find("testsuite[@name='session-cap']/testcase[@name='robust']")
    assert passed.find("failure") is None and passed.find("error") is None


def test_junit_reports_a_strategy_that_raised_as_an_error(written):
    root = ET.parse(written["junit.xml"]).getroot()
    case = root.find("testsuite[@name='flaky-eom']/testcase[@name='naive']")
    error = case.find("error")
    assert error.get("message").startswith("strategy raised SMTPServerDisconnected")
    assert case.find("failure") is None


def test_junit_stays_well_formed_with_control_characters_in_a_message_id(results, tmp_path):
    victim = results["cases"][1]["messages"][15]  # the first lost message
    victim["id"] = "<evil\x00\x1b]@x>"
    paths = {p.name: p for p in write_reports(results, tmp_path / "run")}
    failure = ET.parse(paths["junit.xml"]).getroot().find(".//testcase[@name='naive']/failure")
    assert "<evil\ufffd\ufffd]@x>" in failure.text


# report.html


def test_html_escapes_a_hostile_message_id_everywhere(results, tmp_path):
    results["cases"][1]["messages"][15]["id"] = HOSTILE_ID  # listed as lost
    unacked = next(
        d for d in results["cases"][5]["timeline"]["deliveries"] if not d["acknowledged"]
    )
    unacked["id"] = HOSTILE_ID  # shown in the timeline's hover text
    paths = {p.name: p for p in write_reports(results, tmp_path / "run")}
    html = paths["report.html"].read_text(encoding="utf-8")
    assert "<script>alert(1)" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;@x") == 2
    # The page's own script is the only one.
    assert html.count("<script>") == 1


def test_html_is_self_contained(written):
    html = written["report.html"].read_text(encoding="utf-8")
    assert not re.search(r"(src|href)=['\"](https?:)?//", html)
    assert "@import" not in html and "url(" not in html


def test_html_heatmap_is_a_table_with_a_linked_cell_per_case(results, written):
    html = written["report.html"].read_text(encoding="utf-8")
    table = html.split("<table class='heatmap'>")[1].split("</table>")[0]
    links = re.findall(r"href='#(case-\d+)'", table)
    assert sorted(links) == sorted(f"case-{i}" for i in range(len(results["cases"])))
    for link in links:
        assert f"id='{link}'" in html
    naive_cap = re.search(r"<td class='cell (\w+) fail'><a href='#case-1'.*?</td>", table)
    assert naive_cap.group(1) == "s0"  # 37.5% is in the worst band
    assert "silently lost 25" in naive_cap.group(0) and "duplicated" not in naive_cap.group(0)


def test_html_timeline_draws_a_lane_per_session_and_every_fault_with_its_reply(written):
    html = written["report.html"].read_text(encoding="utf-8")
    case = html.split("id='case-5'")[1].split("</section>")[0]  # flaky-eom x reconnect
    svg = case.split("<svg")[1].split("</svg>")[0]
    assert svg.count('class="bar ') == 2
    assert "closed by server: fault:drop_after_accept" in svg
    assert svg.count('class="fault rule"') == 2
    assert "451 4.7.1 Greylisted, try again &lt;later&gt;" in svg
    assert svg.count('class="unacked"') == 1


def test_html_timeline_stays_small_for_72_cases_of_1000_messages(results):
    from harness.reports.html import render_html

    template = results["cases"][0]
    results["cases"] = []
    results["scenarios"] = [dict(results["scenarios"][0], name=f"s{i}") for i in range(9)]
    results["strategies"] = [{"name": f"k{i}", "description": ""} for i in range(8)]
    for scenario in results["scenarios"]:
        for strategy in results["strategies"]:
            case = busy_case(template, 1000)
            case.update(scenario=scenario["name"], strategy=strategy["name"])
            results["cases"].append(case)
    validate_results(results)
    size = len(render_html(results).encode("utf-8"))
    assert size < 4_000_000, size


def test_html_timeline_packs_many_sequential_sessions_into_one_lane(results):
    from harness.reports.timeline import render_timeline

    case = busy_case(results["cases"][0], 1000)  # 143 back-to-back sessions
    svg = render_timeline(case, title_id="t")
    assert svg.count('<rect class="lane') == 1
    assert ">143 sessions</text>" in svg
    assert svg.count('class="bar ') == 143
    assert svg.count('class="fault limit"') <= 120  # 1,000 throttle faults, bucketed


def busy_case(template: dict, count: int) -> dict:
    """`count` messages over many short sessions, with a throttle fault for each message."""
    case = copy.deepcopy(template)
    sessions, deliveries, faults, messages = [], [], [], []
    for n in range(count):
        number = n // 7 + 1
        at = n * 0.08
        if n % 7 == 0:
            sessions.append(session(number, at, at + 7 * 0.08 - 0.01))
        ident = msg_id("busy", n)
        deliveries.append({"at": at, "session": number, "id": ident, "acknowledged": n % 97 != 0})
        faults.append(
            {
                "at": at + 0.01,
                "session": number,
                "stage": "EOM",
                "source": "limit",
                "name": "send_rate",
                "reply": "454 Throttling failure: Maximum sending rate exceeded",
            }
        )
        messages.append(message(ident, "delivered_once"))
    case["timeline"] = {"sessions": sessions, "deliveries": deliveries, "faults": faults}
    case["messages"] = messages
    case["score"].update(
        messages=count,
        delivered_once=count,
        silently_lost=0,
        delivered_once_score=1.0,
        sessions=len(sessions),
    )
    return case


# What happened, in one vocabulary (issue 26, item 4)

BARE_LOST = re.compile(r"(?<!silently )\blost\b")


def outcome_results() -> dict:
    """One scenario, two strategies that both meet their expectations: `careful` claims 3 of 20
    uncertain (cut after the final '.'), `naive` stops after 7 (1 given up, 12 never sent)."""
    careful_messages = [
        message(msg_id("cut", n), "uncertain", claim="uncertain", copies=n % 2, sessions=())
        if n in (4, 9, 14)
        else message(msg_id("cut", n), "delivered_once")
        for n in range(20)
    ]
    naive_messages = [
        message(msg_id("cut", n), "delivered_once")
        if n < 7
        else message(msg_id("cut", n), "given_up", claim="failed", copies=0, sessions=())
        if n == 7
        else message(msg_id("cut", n), "abandoned", claim="not_attempted", copies=0, sessions=())
        for n in range(20)
    ]
    sessions = [session(1, 0.0, 4.0)]
    careful = make_case(
        "cut", "careful", careful_messages, sessions, [], [], [expect("delivered_once", ">=", 0.85)]
    )
    naive = make_case(
        "cut", "naive", naive_messages, sessions, [], [], [expect("delivered_once", ">=", 0.35)]
    )
    results = build_results()
    results["scenarios"] = [
        {
            "name": "cut",
            "file": "scenarios/cut.toml",
            "description": "Three connections are cut after the final '.'.",
            "best_possible": "17 of 20 delivered once; the 3 cut ones claimed uncertain.",
            "contract": ["delivered_once >= 17", "duplicated == 0", "silently_lost == 0"],
            "messages": 20,
        }
    ]
    results["strategies"] = [
        {"name": "careful", "description": "says uncertain when it cannot know"},
        {"name": "naive", "description": "stops at the first error"},
    ]
    results["cases"] = [careful, naive]
    validate_results(results)
    return results


def terminal(results: dict, width: int = 100) -> str:
    """What `ses-harness run` prints for these results: the table and the headline."""
    import io

    from rich.console import Console

    from harness.cli.run import headline, ranking

    console = Console(width=width, file=io.StringIO(), record=True)
    console.print(ranking(results, width))
    for line, _ in headline(results):
        console.print(line, markup=False)
    return console.export_text()


def outputs(results: dict, tmp_path: Path) -> dict[str, str]:
    paths = {p.name: p for p in write_reports(results, tmp_path / "run")}
    found = {name: path.read_text(encoding="utf-8") for name, path in paths.items()}
    found["terminal"] = terminal(results)
    return found


def test_every_output_says_how_many_messages_were_uncertain(tmp_path):
    out = outputs(outcome_results(), tmp_path)

    assert re.search(r"careful\s+0\.850\s+3 uncertain", out["terminal"])
    (careful, _) = ranking_rows(out["summary.md"])
    header = out["summary.md"].split("## Strategies, best first")[1].splitlines()[2]
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert careful[columns.index("uncertain")] == "3"
    assert "uncertain: the client said it cannot know" in out["summary.md"]
    heatmap = out["report.html"].split("<table class='heatmap'>")[1].split("</table>")[0]
    assert "uncertain 3" in heatmap
    assert "<th title='the client said it cannot know" in out["report.html"]
    junit = ET.fromstring(out["junit.xml"].encode())
    said = junit.find(".//testcase[@name='careful']/system-out").text
    assert "uncertain 3" in said


def test_every_output_names_each_way_a_message_was_not_delivered(tmp_path):
    out = outputs(outcome_results(), tmp_path)

    assert re.search(r"naive\s+0\.350\s+1 given up\s", out["terminal"])
    assert "12 never sent" in out["terminal"]
    assert (
        "| silently lost | duplicated | misreported | uncertain | given up | never sent |"
        in out["summary.md"]
    )
    (_, naive) = ranking_rows(out["summary.md"])
    assert naive[3:9] == ["0", "0", "0", "0", "1", "12"]
    assert "given up 1 · never sent 12" in out["report.html"]
    junit = ET.fromstring(out["junit.xml"].encode())
    said = junit.find(".//testcase[@name='naive']/system-out").text
    assert (
        "silently lost 0, duplicated 0, misreported 0, uncertain 0, given up 1, never sent 12"
        in (said)
    )
    # "lost" alone meant "silently lost" in some outputs and "lost in any way" in others.
    for name, text in out.items():
        assert not BARE_LOST.search(" ".join(text.split())), name


def test_the_headline_tells_met_expectations_apart_from_delivered(tmp_path):
    out = outputs(outcome_results(), tmp_path)

    lines = out["summary.md"].splitlines()
    assert (
        lines[2] == "**✅ PASS: all 2 cases met their expectations (2 strategies x 1 scenario).**"
    )
    assert lines[4] == (
        "**⚠️ Delivery: 1 of 2 strategies did as well as a correct client can in every scenario "
        "(careful); the other one fell short in its only case.**"
    )
    # No tick beside naive's 35%: it met its own (known-bad) table, it did not deliver.
    assert "| cut | ✅ 85.0% | ⚠️ 35.0% |" in out["summary.md"]
    assert "<p class='verdict short'>Delivery: 1 of 2 strategies" in out["report.html"]
    assert "PASS: all 2 cases met their expectations" in out["terminal"]
    assert "Delivery: 1 of 2 strategies did as well as a correct client can" in out["terminal"]


def test_each_failure_shows_what_a_correct_client_does_there(written):
    summary = written["summary.md"].read_text(encoding="utf-8")
    naive = summary.split("### ❌ session-cap x naive")[1].split("###")[0]
    assert "- what a correct client does here: rotate sessions before the cap" in naive
    crashed = summary.split("### 💥 flaky-eom x naive")[1]
    assert "- what a correct client does here: deduplicate on retry" in crashed
    root = ET.parse(written["junit.xml"]).getroot()
    failure = root.find("testsuite[@name='session-cap']/testcase[@name='naive']/failure")
    assert "What a correct client does here: rotate sessions before the cap" in failure.text
    html = written["report.html"].read_text(encoding="utf-8")
    case = html.split("id='case-1'")[1].split("</section>")[0]
    assert "What a correct client does here:</strong> rotate sessions before the cap" in case
