"""junit.xml: one testsuite per scenario, one testcase per strategy.

The common JUnit dialect that GitHub, GitLab and Jenkins ingest: a failed expectation is a
<failure>, a strategy that raised is an <error>, and both carry the one-line reproducer.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from harness.reports import digest
from harness.runner.vocabulary import PROBLEMS, words

IDS_SHOWN = 10

# Characters XML 1.0 cannot hold at all, even escaped; message ids come from clients.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def render_junit(results: dict) -> bytes:
    """The junit.xml document (UTF-8, with declaration) for a validated results dict."""
    cases = results["cases"]
    root = ET.Element(
        "testsuites",
        _attrs(
            name="ses-fault-harness",
            tests=len(cases),
            failures=sum(digest.case_status(c) == "fail" for c in cases),
            errors=sum(digest.case_status(c) == "error" for c in cases),
            time=_seconds(sum(_wall(c) for c in cases)),
        ),
    )
    for scenario in results["scenarios"]:
        mine = [c for c in cases if c["scenario"] == scenario["name"]]
        root.append(_suite(results, scenario, mine))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _suite(results: dict, scenario: dict, cases: list[dict]) -> ET.Element:
    suite = ET.Element(
        "testsuite",
        _attrs(
            name=scenario["name"],
            tests=len(cases),
            failures=sum(digest.case_status(c) == "fail" for c in cases),
            errors=sum(digest.case_status(c) == "error" for c in cases),
            skipped=0,
            time=_seconds(sum(_wall(c) for c in cases)),
            timestamp=results["run"]["started_at"],
        ),
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("file", scenario["file"]),
        ("messages", scenario["messages"]),
        ("run", results["run"]["id"]),
    ):
        ET.SubElement(properties, "property", _attrs(name=name, value=value))
    for case in cases:
        suite.append(_testcase(case, scenario))
    return suite


def _testcase(case: dict, scenario: dict) -> ET.Element:
    element = ET.Element(
        "testcase",
        _attrs(classname=case["scenario"], name=case["strategy"], time=_seconds(_wall(case))),
    )
    status = digest.case_status(case)
    if status == "error":
        child = ET.SubElement(element, "error", _attrs(message=case["error"], type="StrategyError"))
        child.text = _clean(_details(case, scenario))
    elif status == "fail":
        failed = digest.failed_expectations(case)
        message = "; ".join(
            f"{e['expr']} (actual {digest.format_actual(e['actual'])})" for e in failed
        )
        child = ET.SubElement(
            element,
            "failure",
            _attrs(message=message or "case failed", type="ExpectationFailed"),
        )
        child.text = _clean(_details(case, scenario))
    out = ET.SubElement(element, "system-out")
    out.text = _clean(f"{_score_line(case)}\nReproduce: {case['reproducer']}\n")
    return element


def _details(case: dict, scenario: dict) -> str:
    lines = []
    if case["error"] is not None:
        lines.append(f"Error: {case['error']}")
    for expectation in digest.failed_expectations(case):
        actual = digest.format_actual(expectation["actual"])
        lines.append(f"Expected {expectation['expr']}, actual {actual}")
    lines.append(_score_line(case))
    for label, ids in digest.problem_ids(case):
        more = f" and {len(ids) - IDS_SHOWN} more" if len(ids) > IDS_SHOWN else ""
        lines.append(f"{label} ({len(ids)}): {', '.join(ids[:IDS_SHOWN])}{more}")
    best = " ".join(scenario.get("best_possible", "").split())
    if best:
        lines.append(f"What a correct client does here: {best}")
    lines.append(f"Reproduce: {case['reproducer']}")
    return "\n".join(lines) + "\n"


def _score_line(case: dict) -> str:
    score = case["score"]
    if score is None:
        return "No score: the case raised before it could be scored."
    counts = ", ".join(f"{words(cls)} {score[cls.value]}" for cls in PROBLEMS)
    return (
        f"Delivered once {digest.percent(score['delivered_once_score'])} of "
        f"{score['messages']} messages; {counts}; efficiency {score['efficiency']:.2f}."
    )


def _wall(case: dict) -> float:
    return 0.0 if case["score"] is None else case["score"]["wall_s"]


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def _attrs(**values: object) -> dict[str, str]:
    return {key: _clean(str(value)) for key, value in values.items()}


def _clean(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value)
