"""What every report says the same way: the verdict, the strategy ranking, a case's bad ids.

Markdown, JUnit, HTML and the terminal all read a validated results dict through these helpers,
so they never disagree on a number or on a word: classes are named by
:mod:`harness.runner.vocabulary` ("silently lost", "given up", "never sent", ...).

Two verdicts, never mixed: a case *met its expectations* (the bar it is held to: a built-in's
own table may document a known-bad outcome), and a case *did as well as a correct client can*
(its scenario's contract, the best possible). A built-in that delivers 35% meets its
expectations; it does not deliver.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.runner.scenario import OPERATORS
from harness.runner.vocabulary import PROBLEMS, words

# Classes a reader wants to see by id when a case fails, worst first, with their words.
PROBLEM_CLASSES = tuple((cls.value, words(cls)) for cls in PROBLEMS)
# Every class a row counts: the good ones, then the problems.
_CLASSES = ("delivered_once", "rejected_reported", *(cls for cls, _ in PROBLEM_CLASSES))

_EXPR = re.compile(r"^\s*(\w+)\s*(==|!=|>=|<=|>|<)\s*([0-9.]+)\s*$")


@dataclass(frozen=True)
class StrategyRow:
    """One strategy's totals over every scenario of the run (message counts are summed)."""

    name: str
    cases: int
    passed: int  # cases that met their expectations
    best: int  # cases that did as well as a correct client can (the scenario's contract)
    errors: int
    mean_score: float  # a case with an error and no score counts as 0
    counts: dict[str, int]  # every message class -> messages, over all scored cases
    retried_5xx: int
    throttle_violations: int
    mean_efficiency: float | None  # None when no case of the strategy has a score

    @property
    def silently_lost(self) -> int:
        return self.counts["silently_lost"]

    @property
    def duplicated(self) -> int:
        return self.counts["duplicated"]

    @property
    def misreported(self) -> int:
        return self.counts["misreported"]

    @property
    def uncertain(self) -> int:
        return self.counts["uncertain"]


def rank_strategies(results: dict) -> list[StrategyRow]:
    """Strategies best first, the one order of every output (terminal, summary.md, report.html).

    By mean delivered-once score to two decimals (half a percent is noise between schedules),
    then the mail that should never happen decides: fewest silently lost, duplicated and
    misreported; then highest efficiency, then name.
    """
    scenarios = {s["name"]: s for s in results["scenarios"]}
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
                best=sum(did_best(c, scenarios.get(c["scenario"], {})) for c in cases),
                errors=sum(c["error"] is not None for c in cases),
                mean_score=total("delivered_once_score") / len(cases),
                counts={cls: total(cls) for cls in _CLASSES},
                retried_5xx=total("retried_5xx"),
                throttle_violations=total("throttle_violations"),
                mean_efficiency=total("efficiency") / len(scores) if scores else None,
            )
        )
    return sorted(
        rows,
        key=lambda r: (
            -round(r.mean_score, 2),
            r.silently_lost,
            r.duplicated,
            r.misreported,
            -(r.mean_efficiency or 0.0),
            r.name,
        ),
    )


def problems(counts: dict[str, Any], sep: str = ", ") -> str:
    """The non-zero problem classes of a score (or a row's counts) in words, worst first,
    joined by `sep`: ``"1 given up, 649 never sent"``; "" when there are none."""
    return sep.join(f"{counts[cls]} {label}" for cls, label in PROBLEM_CLASSES if counts.get(cls))


def meets_contract(scenario: dict, score: dict) -> bool:
    """Whether `score` holds every expectation of the scenario's contract."""
    for expr in scenario.get("contract", []):
        found = _EXPR.match(expr)
        if found and found.group(1) in score:
            name, op, value = found.groups()
            if not OPERATORS[op](score[name], float(value)):
                return False
    return True


def did_best(case: dict, scenario: dict) -> bool:
    """True when the case did as well as a correct client can: scored, and within its
    scenario's contract (whatever bar the strategy itself was held to)."""
    return case["score"] is not None and meets_contract(scenario, case["score"])


def best_possible_score(scenario: dict, messages: int) -> float:
    """The highest delivered-once score any client can reach in `scenario`, read from its
    contract (what any correct client achieves): `delivered_once_score >= x`, or
    `delivered_once` and `rejected_reported` floors over `messages`. 1.0 when it says nothing.

    A daily quota of 400 for 600 messages makes 66.7% the best: the heatmap measures a case
    against that, not against 100%.
    """
    floors: dict[str, float] = {}
    for expr in scenario.get("contract", []):
        found = _EXPR.match(expr)
        if found and found.group(2) in ("==", ">=", ">"):
            name, _, value = found.groups()
            floors[name] = max(floors.get(name, 0.0), float(value))
    if "delivered_once_score" in floors:
        return min(1.0, floors["delivered_once_score"])
    reached = floors.get("delivered_once", 0.0) + floors.get("rejected_reported", 0.0)
    if not reached or not messages:
        return 1.0
    return min(1.0, reached / messages)


def shorten(name: str, width: int) -> str:
    """`name` in at most `width` characters, cut in the middle, where command lines differ least.

    >>> shorten("cmd:node clients/nodemailer/send.js --pool", 24)
    'cmd:node cl…nd.js --pool'

    A Python strategy keeps its function's name whole when it can, as two strategies of one
    module differ there:

    >>> shorten("newsletter_mailer:send_batch_fixed", 19)
    'n…:send_batch_fixed'
    """
    if len(name) <= width:
        return name
    if width < 3:
        return name[:width]
    module, colon, attr = name.partition(":")
    if colon and not name.startswith("cmd") and " " not in name and len(attr) + 3 <= width:
        return f"{module[: width - len(attr) - 2]}…:{attr}"
    head = (width - 1) // 2
    return f"{name[:head]}…{name[len(name) - (width - 1 - head) :]}"


def shorten_names(names: list[str], width: int) -> dict[str, str] | None:
    """Each name shortened to `width` (see :func:`shorten`), or None when two would then read
    the same: a table that cannot tell two strategies apart is worse than a wide one."""
    shown = {name: shorten(name, width) for name in names}
    if len(set(shown.values())) < len(set(names)):
        return None
    return shown


def verdict(results: dict) -> str:
    """One line: how many cases met their expectations, failed and raised, over how big a
    matrix. Expectations only: :func:`delivery` says what was delivered."""
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


#: Strategies named in the delivery line before "and N more".
NAMES_SHOWN = 5


def delivery(results: dict) -> str:
    """One line: which strategies did as well as a correct client can in every scenario (each
    scenario's contract), apart from whether they met their expectations.

    >>> delivery(results)  # doctest: +SKIP
    'Delivery: 1 of 11 strategies did as well as a correct client can in every scenario
    (robust); the other 10 fell short in 57 of their 143 cases.'
    """
    rows = rank_strategies(results)
    if not rows:
        return ""
    best = [r.name for r in rows if r.best == r.cases]
    short = [r for r in rows if r.best < r.cases]
    if not short:
        who = "the strategy" if len(rows) == 1 else f"all {len(rows)} strategies"
        return f"Delivery: {who} did as well as a correct client can in every scenario."
    missed = sum(r.cases - r.best for r in short)
    cases = sum(r.cases for r in short)
    if len(rows) == 1:
        return (
            f"Delivery: {rows[0].name} fell short of what a correct client does "
            f"{_in(missed, cases, 'its')}."
        )
    named = f" ({_names(best)})" if best else ""
    if not best:
        others = f"all {len(short)}"
    else:
        others = "the other one" if len(short) == 1 else f"the other {len(short)}"
    its = "its" if len(short) == 1 else "their"
    return (
        f"Delivery: {len(best)} of {len(rows)} strategies did as well as a correct client can "
        f"in every scenario{named}; {others} fell short {_in(missed, cases, its)}."
    )


def _in(missed: int, cases: int, its: str) -> str:
    """``in 3 of its 13 cases``, ``in all 13 of its cases``, ``in its only case``."""
    if missed < cases:
        return f"in {missed} of {its} {cases} cases"
    return f"in all {cases} of {its} cases" if cases > 1 else f"in {its} only case"


def delivered_all(results: dict) -> bool:
    """True when every strategy did as well as a correct client can in every scenario."""
    return all(r.best == r.cases for r in rank_strategies(results))


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:NAMES_SHOWN])
    return shown + (f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else "")


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


def matching_notes(results: dict) -> list[str]:
    """One line per strategy whose copies were not all matched by Message-ID: how they were,
    and the copies that matched no message (a mailer that stamps its own ids is fine; strays
    are worth a look)."""
    by_strategy: dict[str, dict[str, int]] = {}
    for case in results["cases"]:
        matching = case.get("matching")
        if not matching:
            continue
        counts = by_strategy.setdefault(case["strategy"], {"envelope": 0, "recipient": 0})
        for key in ("envelope", "recipient", "strays"):
            counts[key] = counts.get(key, 0) + matching.get(key, 0)
    notes = []
    for strategy, counts in by_strategy.items():
        parts = []
        if counts["envelope"] or counts["recipient"]:
            by = counts["envelope"] + counts["recipient"]
            parts.append(f"{by:,} copies matched by envelope (it sets its own Message-ID)")
        if counts.get("strays"):
            parts.append(f"{counts['strays']:,} copies matched no message (stray_copies)")
        if parts:
            notes.append(f"{strategy}: {'; '.join(parts)}")
    return notes


def time_dependence(case: Mapping[str, Any]) -> str | None:
    """Why this case's counts may differ in another run, in one sentence; None when they
    cannot (the virtual clock, or no decision of the clock near its edge)."""
    clock = case.get("clock") or {}
    if not clock.get("depends_on_time"):
        return None
    scale = clock.get("time_scale") or 1
    closest = clock.get("closest_call")
    if closest is not None and closest["margin_s"] < clock["resolution_s"]:
        return (
            f"counts depend on time: {_what_decided(closest['decided_by'])} decided a command "
            f"{_from_edge(closest['margin_s'])} (t={closest['at_s']:.3f}s), within this "
            f"clock's resolution of {_ms(clock['resolution_s'])} at {scale:g}x: "
            "another run may decide it otherwise"
        )
    hung = clock.get("hung_up_waiting") or []
    if hung:
        first = hung[0]
        return (
            f"counts depend on time: the client hung up waiting for a reply "
            f"{count(len(hung), 'time', 'times')} (first: session {first['session']} at "
            f"t={first['at_s']:.3f}s); at {scale:g}x its own timeouts are {scale:g} times "
            "shorter in wall time, so the machine's load decides whether they fire: another "
            "run may differ (a lower scale, cmd[time_scale=K]:..., makes them fire less)"
        )
    suggested = clock.get("suggested_time_scale")
    hint = f"; rerun it at {suggested}x" if suggested else ""
    return (
        f"counts depend on time: the client did not keep up with {scale:g}x "
        f"(stretch {clock.get('stretch')}), and the clock decided some of them{hint}"
    )


def time_notes(results: dict) -> list[str]:
    """One line per case whose counts depend on time (see :func:`time_dependence`)."""
    notes = []
    for case in results["cases"]:
        why = time_dependence(case)
        if why is not None:
            notes.append(f"{case['scenario']} x {case['strategy']}: {why}")
    return notes


def _what_decided(key: str) -> str:
    source, _, name = key.partition(":")
    if source == "limit":
        return {"rate_per_s": "the send rate", "idle_timeout_s": "the idle timeout"}.get(
            name, f"the limit {name}"
        )
    return f"the rule {name!r}"


def _from_edge(seconds: float) -> str:
    return "on its very edge" if seconds < 5e-5 else f"{_ms(seconds)} from its edge"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"
