"""What every report says the same way: the verdict, the strategy ranking, a case's bad ids.

Markdown, JUnit and HTML all read a validated results dict through these helpers, so the three
never disagree on a number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Classes a reader wants to see by id when a case fails, with the words reports use for them.
PROBLEM_CLASSES = (
    ("silently_lost", "lost"),
    ("duplicated", "duplicated"),
    ("misreported", "misreported"),
    ("given_up", "given up"),
    ("abandoned", "abandoned"),
)


@dataclass(frozen=True)
class StrategyRow:
    """One strategy's totals over every scenario of the run."""

    name: str
    cases: int
    passed: int
    errors: int
    mean_score: float  # a case with an error and no score counts as 0
    lost: int  # silently lost: reported sent, never arrived
    duplicated: int
    misreported: int
    not_delivered: int  # given up or abandoned
    retried_5xx: int
    throttle_violations: int
    mean_efficiency: float | None  # None when no case of the strategy has a score


def rank_strategies(results: dict) -> list[StrategyRow]:
    """Strategies best first, the one order of every output (terminal, summary.md, report.html).

    By mean delivered-once score to two decimals (half a percent is noise between schedules),
    then the mail that should never happen decides: fewest silently lost, duplicated and
    misreported; then highest efficiency, then name.
    """
    rows = []
    for strategy in results["strategies"]:
        cases = [c for c in results["cases"] if c["strategy"] == strategy["name"]]
        if not cases:
            continue
        scores = [c["score"] for c in cases if c["score"] is not None]

        def total(metric: str, scores: list = scores) -> int:
            return sum(s[metric] for s in scores)

        rows.append(
            StrategyRow(
                name=strategy["name"],
                cases=len(cases),
                passed=sum(c["passed"] for c in cases),
                errors=sum(c["error"] is not None for c in cases),
                mean_score=total("delivered_once_score") / len(cases),
                lost=total("silently_lost"),
                duplicated=total("duplicated"),
                misreported=total("misreported"),
                not_delivered=total("given_up") + total("abandoned"),
                retried_5xx=total("retried_5xx"),
                throttle_violations=total("throttle_violations"),
                mean_efficiency=total("efficiency") / len(scores) if scores else None,
            )
        )
    return sorted(
        rows,
        key=lambda r: (
            -round(r.mean_score, 2),
            r.lost,
            r.duplicated,
            r.misreported,
            -(r.mean_efficiency or 0.0),
            r.name,
        ),
    )


def shorten(name: str, width: int) -> str:
    """`name` in at most `width` characters, cut in the middle, where command lines differ least.

    >>> shorten("cmd:node clients/nodemailer/send.js --pool", 24)
    'cmd:node cl…nd.js --pool'
    """
    if len(name) <= width:
        return name
    if width < 3:
        return name[:width]
    head = (width - 1) // 2
    return f"{name[:head]}…{name[len(name) - (width - 1 - head) :]}"


def verdict(results: dict) -> str:
    """One line: how many cases passed, failed and raised, over how big a matrix."""
    cases = results["cases"]
    errors = sum(c["error"] is not None for c in cases)
    failed = sum(not c["passed"] for c in cases) - errors
    matrix = (
        f"{count(len(results['strategies']), 'strategy', 'strategies')} x "
        f"{count(len(results['scenarios']), 'scenario', 'scenarios')}"
    )
    if not cases:
        return f"No cases ran ({matrix})."
    if not failed and not errors:
        return f"PASS: all {len(cases)} cases met their expectations ({matrix})."
    parts = [f"{failed} failed"] if failed else []
    parts += [f"{errors} raised an error"] if errors else []
    return f"FAIL: {' and '.join(parts)} of {len(cases)} cases ({matrix})."


def count(n: int, one: str, many: str) -> str:
    """`n` and the noun, singular or plural: ``1 worker``, ``2 workers``."""
    return f"{n} {one if n == 1 else many}"


def failed_expectations(case: dict) -> list[dict]:
    return [e for e in case["expectations"] if not e["passed"]]


def ids_of_class(case: dict, cls: str) -> list[str]:
    """Message ids of one class, in the order the runner listed the messages."""
    return [m["id"] for m in case["messages"] if m["class"] == cls]


def problem_ids(case: dict) -> list[tuple[str, list[str]]]:
    """(label, ids) for each problem class that has messages in this case."""
    found = []
    for cls, label in PROBLEM_CLASSES:
        ids = ids_of_class(case, cls)
        if ids:
            found.append((label, ids))
    return found


def case_status(case: dict) -> str:
    """One of "pass", "fail" or "error"."""
    if case["error"] is not None:
        return "error"
    return "pass" if case["passed"] else "fail"


def format_actual(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def percent(value: float) -> str:
    """A score as a percentage that never rounds a miss up to 100%."""
    if value >= 1.0:
        return "100%"
    return f"{min(value * 100, 99.9):.1f}%"
