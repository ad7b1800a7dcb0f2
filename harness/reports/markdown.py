"""summary.md: the run in GitHub-flavoured Markdown, sized for a CI job summary.

Everything from the data is escaped: names go through backslash escapes, message ids and
replies (which clients choose) go into code spans, so `<script>` stays text.
"""

from __future__ import annotations

import re

from harness.reports import digest
from harness.runner.vocabulary import PROBLEMS, legend, words

IDS_SHOWN = 5  # per class and failing case: enough to start debugging, short enough for CI

_MARKS = {"pass": "✅", "fail": "❌", "error": "💥"}
#: A case that met its expectations (a built-in's own table may document a known-bad outcome)
#: and still fell short of what a correct client does: no tick beside it.
_SHORT = "⚠️"
_PUNCTUATION = re.compile(r"([\\`*_\[\]<>#+!|~&])")


def render_summary(results: dict) -> str:
    """The whole summary.md text for a validated results dict."""
    lines = [f"# ses-fault-harness: {text(results['run']['id'])}", ""]
    mark = "✅" if digest.verdict(results).startswith("PASS") else "❌"
    lines += [f"**{mark} {text(digest.verdict(results))}**", ""]
    if results["cases"]:
        mark = "✅" if digest.delivered_all(results) else _SHORT
        lines += [f"**{mark} {text(digest.delivery(results))}**", ""]
    lines += _run_line(results)
    notes = digest.matching_notes(results) + digest.time_notes(results)
    lines += [f"- {text(note)}" for note in notes]
    lines += [""] if notes else []
    lines += _ranking(results)
    lines += _grid(results)
    lines += _failures(results)
    return "\n".join(lines).rstrip("\n") + "\n"


def text(value: str) -> str:
    """Plain text safe in Markdown, table cells included (pipes and newlines too)."""
    return _PUNCTUATION.sub(r"\\\1", " ".join(value.split()))


def code(value: str) -> str:
    """An inline code span holding `value` literally, whatever backticks it has."""
    value = " ".join(value.split())
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def _run_line(results: dict) -> list[str]:
    run = results["run"]
    seed = "scenario seeds" if run["seed"] is None else f"seed {run['seed']}"
    workers = digest.count(run["workers"], "worker", "workers")
    return [
        f"{len(results['cases'])} cases, {seed}, {workers}, "
        f"{run['wall_s']:.1f} s wall, {run['virtual_s']:.0f} s virtual. "
        f"Command: {code(run['command'])}",
        "",
    ]


def _ranking(results: dict) -> list[str]:
    classes = " | ".join(words(cls) for cls in PROBLEMS)
    lines = [
        "## Strategies, best first",
        "",
        f"| # | strategy | delivered once (mean) | {classes} | efficiency (mean) "
        "| as well as a correct client | met expectations |",
        "|---:|---|---:|" + "---:|" * len(PROBLEMS) + "---:|---:|---:|",
    ]
    for rank, row in enumerate(digest.rank_strategies(results), start=1):
        passed = f"{row.passed}/{row.cases}"
        if row.errors:
            passed += f" ({row.errors} error{'s' if row.errors > 1 else ''})"
        efficiency = "n/a" if row.mean_efficiency is None else f"{row.mean_efficiency:.2f}"
        counts = " | ".join(str(row.counts[cls.value]) for cls in PROBLEMS)
        lines.append(
            f"| {rank} | {text(row.name)} | {digest.percent(row.mean_score)} | {counts} "
            f"| {efficiency} | {row.best}/{row.cases} | {passed} |"
        )
    return [
        *lines,
        "",
        "Messages, summed over the scenarios: " + text(legend()) + ". *As well as a correct "
        "client*: cases within the scenario's contract (its best possible); *met "
        "expectations*: cases that met the bar they are held to (a built-in's own table may "
        "document a known-bad outcome).",
        "",
    ]


def _grid(results: dict) -> list[str]:
    strategies = [row.name for row in digest.rank_strategies(results)]
    by_pair = {(c["scenario"], c["strategy"]): c for c in results["cases"]}
    lines = [
        "## Scenarios x strategies",
        "",
        "| scenario | " + " | ".join(text(s) for s in strategies) + " |",
        "|---|" + "---|" * len(strategies),
    ]
    for scenario in results["scenarios"]:
        cells = []
        for strategy in strategies:
            case = by_pair.get((scenario["name"], strategy))
            cells.append(_grid_cell(case, scenario))
        lines.append(f"| {text(scenario['name'])} | " + " | ".join(cells) + " |")
    legend = (
        "✅ met its expectations and did as well as a correct client can; "
        f"{_SHORT} met its expectations (a known weakness) but fell short of that; "
        "❌ missed an expectation; 💥 raised an error; % is delivered once."
    )
    if any(_server_scored(c) for c in results["cases"]):
        legend += (
            " (server side): a client process that reported nothing, scored on the server's"
            " side alone."
        )
    return [*lines, "", legend, ""]


def _grid_cell(case: dict | None, scenario: dict) -> str:
    if case is None:
        return "not run"
    status = digest.case_status(case)
    mark = _MARKS[status]
    if status == "pass" and not digest.did_best(case, scenario):
        mark = _SHORT
    if case["score"] is None:
        return mark
    cell = f"{mark} {digest.percent(case['score']['delivered_once_score'])}"
    if digest.time_dependence(case):
        cell += " (depends on time)"
    return f"{cell} (server side)" if _server_scored(case) else cell


def _server_scored(case: dict) -> bool:
    """A command strategy's case scored without claims from the client (see SCHEMA.md)."""
    return (case.get("command") or {}).get("claims") == "server"


def _failures(results: dict) -> list[str]:
    failing = [c for c in results["cases"] if digest.case_status(c) != "pass"]
    if not failing:
        return []
    scenarios = {s["name"]: s for s in results["scenarios"]}
    lines = ["## Failing cases", ""]
    for case in failing:
        status = digest.case_status(case)
        lines += [f"### {_MARKS[status]} {text(case['scenario'])} x {text(case['strategy'])}", ""]
        if case["error"] is not None:
            lines.append(f"- error: {code(case['error'])}")
        for expectation in digest.failed_expectations(case):
            actual = digest.format_actual(expectation["actual"])
            lines.append(f"- expected {code(expectation['expr'])}, actual {text(actual)}")
        if case["score"] is not None:
            score = case["score"]["delivered_once_score"]
            lines.append(f"- delivered once: {digest.percent(score)}")
        for label, ids in digest.problem_ids(case):
            shown = ", ".join(code(i) for i in ids[:IDS_SHOWN])
            more = f" and {len(ids) - IDS_SHOWN} more" if len(ids) > IDS_SHOWN else ""
            lines.append(f"- {label} ({len(ids)}): {shown}{more}")
        best = scenarios.get(case["scenario"], {}).get("best_possible", "")
        if best.strip():
            lines.append(f"- what a correct client does here: {text(best)}")
        lines += ["", "Reproduce:", "", *_code_block(case["reproducer"]), ""]
    return lines


def _code_block(value: str) -> list[str]:
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}sh", value, fence]
