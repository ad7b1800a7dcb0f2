"""Search fault schedules for the smallest one that breaks a client strategy (SPEC §3).

:func:`hunt` runs the strategy against schedule after schedule (see
:mod:`harness.hunting.schedule`), each on a fresh fake server and virtual clock through
:func:`harness.runner.matrix.run_case`, and lets hypothesis shrink the first one that breaks it
to the smallest it can. The property, per run:

    every message is delivered exactly once, or rejected with a 5xx and reported failed,

which is the scorer's classes ``delivered_once`` and ``rejected_reported`` (the numerator of the
delivered-once score). A message that is duplicated, silently lost, misreported (delivered but
reported failed), given up (reported failed after transient faults only) or never sent (never
attempted) breaks it, and so does a strategy that raises. An ``uncertain`` claim (the client
says it cannot know: its connection died after the final ".") is honest, and breaks it only
with ``strict_uncertain``: no client can be sure there.

:func:`write_scenario` writes the counterexample as a scenario file whose contract is what a
correct client achieves under that schedule (each breaking class 0, and no more uncertain
claims than the schedule has ambiguous cuts), held to the hunted strategy too, so
``ses-harness run FILE --strategy NAME`` and ``pytest`` replay it, and fail, until the strategy
is fixed.

>>> result = hunt("naive", messages=5, max_examples=50, seed=1)    # doctest: +SKIP
>>> result.found.story.schedule                                     # doctest: +SKIP
('session limit: 1 message per connection, then 421 at the next MAIL FROM',)
"""

from __future__ import annotations

import random
import re
import shlex
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import HealthCheck, Phase, Verbosity, find, settings
from hypothesis.errors import Flaky, NoSuchExample

from harness.base.ledger import Ledger
from harness.core.errors import PlanError
from harness.core.plan import Plan
from harness.hunting.schedule import (
    MAX_EVENTS,
    Schedule,
    describe_schedule,
    is_ambiguous,
    schedules,
)
from harness.hunting.story import BROKEN, Story, tell
from harness.runner.matrix import TRANSCRIPT_LIMIT_LINES, run_case
from harness.runner.resolve import resolve_strategy
from harness.runner.scenario import DEFAULT_LATENCY_S, Expectation, Scenario
from harness.runner.vocabulary import words
from harness.runner.workload import WorkloadSpec, build_messages

#: Progress lines while searching: one every this many schedules.
PROGRESS_EVERY = 25


@dataclass(frozen=True)
class Found:
    """The smallest schedule that broke the strategy, its run, and how long finding it took."""

    schedule: Schedule
    scenario: Scenario  # the schedule as a scenario; its path is where it will be written
    case: dict[str, Any]  # the run of the smallest schedule, as in results.json
    story: Story  # the schedule, what happened, and the verdict
    first_after_runs: int  # runs up to and including the first schedule that broke it
    first_after_s: float  # wall seconds to that first one
    strict_uncertain: bool = False  # an uncertain claim counted as a break

    @property
    def broken(self) -> dict[str, int]:
        """How many messages ended in each breaking class, e.g. ``{"duplicated": 1}``."""
        return broken_classes(self.case, strict_uncertain=self.strict_uncertain)


@dataclass(frozen=True)
class HuntResult:
    strategy: str
    seed: int
    messages: int
    drawn: int  # schedules hypothesis drew, searching and shrinking, repeats included
    runs: int  # distinct schedules run
    wall_s: float
    found: Found | None


def breaking(strict_uncertain: bool = False) -> tuple[str, ...]:
    """The classes that break the property: all of story's BROKEN, but `uncertain` only when
    `strict_uncertain` (an honest "I cannot know" is not a loss)."""
    return tuple(cls for cls in BROKEN if strict_uncertain or cls != "uncertain")


def broken_classes(case: dict[str, Any], *, strict_uncertain: bool = False) -> dict[str, int]:
    """The count of each breaking class in a case (empty when every message is fine)."""
    classes = breaking(strict_uncertain)
    counts = Counter(m["class"] for m in case["messages"] if m["class"] in classes)
    return {cls: counts[cls] for cls in classes if counts[cls]}


def breaks(case: dict[str, Any], *, strict_uncertain: bool = False) -> bool:
    """True when the run breaks the property (see the module docstring)."""
    return bool(case["error"] or broken_classes(case, strict_uncertain=strict_uncertain))


def contract(schedule: Schedule) -> tuple[Expectation, ...]:
    """What a correct client achieves under `schedule`: no message in a breaking class, and at
    most one uncertain claim per cut after the final "." (the schedule's faults fire once)."""
    cuts = sum(is_ambiguous(rule.match.stage, rule.action) for rule in schedule.faults)
    found = [Expectation(cls, "==", 0) for cls in breaking()]
    found.append(
        Expectation("uncertain", "<=", cuts) if cuts else Expectation("uncertain", "==", 0)
    )
    return tuple(found)


def expectations(schedule: Schedule, strict_uncertain: bool) -> tuple[Expectation, ...]:
    """The hunted strategy's own table: the contract, and with `strict_uncertain` no uncertain
    claim at all (what the hunt counted as a break)."""
    found = contract(schedule)
    if not strict_uncertain:
        return found
    return (*(e for e in found if e.metric != "uncertain"), Expectation("uncertain", "==", 0.0))


def hunt(
    strategy: str,
    *,
    messages: int = 50,
    max_examples: int = 200,
    seed: int = 0,
    profile: str = "ses",
    ambiguous: bool = True,
    max_events: int = MAX_EVENTS,
    path: Path | None = None,
    reports: Path = Path("ses-harness-reports"),
    on_progress: Callable[[str], None] | None = None,
    strict_uncertain: bool = False,
) -> HuntResult:
    """Search for the smallest fault schedule under which `strategy` breaks the property.

    `seed` drives the search and the workload: the same arguments give the same hunt.
    `ambiguous=False` leaves out drops at end of data, which no client can get right.
    `strict_uncertain` counts an uncertain claim as a break (by default it is honest). `path`
    is where the scenario is meant to go (it appears in the reproducer); the default,
    ``<reports>/hunts/scenarios/hunt-<strategy>-seed<N>.toml``, keeps it out of the built-in
    suite in a folder named scenarios, which pytest collects. `on_progress` hears a line now
    and then.
    """
    name, _ = resolve_strategy(strategy)  # a bad name fails before any run
    Plan(profile=profile)  # and so does a bad profile
    say = on_progress or (lambda line: None)
    spec = WorkloadSpec(count=messages, seed=seed)
    path = path or reports / "hunts" / "scenarios" / f"hunt-{slug(name)}-seed{seed}.toml"
    started = time.perf_counter()
    drawn = runs = 0  # schedules hypothesis drew; distinct ones run
    first: tuple[int, float] | None = None  # runs and seconds to the first counterexample
    smallest = 0  # events in the smallest counterexample so far

    def scenario_of(schedule: Schedule) -> Scenario:
        return Scenario(
            name=f"hunt-{slug(name)}-seed{seed}",
            path=path,
            workload=spec,
            plan=schedule.plan(profile, seed),
            latency_s=DEFAULT_LATENCY_S,
            expectations={name: expectations(schedule, strict_uncertain)},
            contract=contract(schedule),
        )

    verdicts: dict[Schedule, bool] = {}  # different draws can make the same schedule

    def condition(schedule: Schedule) -> bool:
        nonlocal drawn, runs, first, smallest
        drawn += 1
        if schedule in verdicts:
            return verdicts[schedule]
        runs += 1
        case = run_case(scenario_of(schedule), strategy)
        failed = breaks(case, strict_uncertain=strict_uncertain)
        elapsed = time.perf_counter() - started
        if failed and first is None:
            first, smallest = (runs, elapsed), schedule.events
            found = _classes(broken_classes(case, strict_uncertain=strict_uncertain))
            found = found or case["error"]
            say(f"schedule {runs} broke {name} after {elapsed:.1f} s ({found}); shrinking it")
        elif failed and schedule.events < smallest:
            smallest = schedule.events
            say(f"  shrunk to {_events(smallest)} ({runs} runs, {elapsed:.1f} s)")
        elif runs % PROGRESS_EVERY == 0:
            say(
                f"{runs} schedules tried in {elapsed:.1f} s; none broke {name}"
                if first is None
                else f"  still shrinking: {runs} runs, {elapsed:.1f} s"
            )
        verdicts[schedule] = failed
        return failed

    say(
        f"hunting {name}: {messages} message{'' if messages == 1 else 's'}, "
        f"up to {max_examples} schedules of at most {max_events} events, seed {seed}"
        + ("" if ambiguous else ", without ambiguous drops at end of data")
        + (", an uncertain claim counted as a break" if strict_uncertain else "")
    )
    search = settings(
        max_examples=max_examples,
        database=None,
        deadline=None,
        phases=(Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
    )
    strategy_of_schedules = schedules(messages, ambiguous=ambiguous, max_events=max_events)
    try:
        minimal = find(
            strategy_of_schedules, condition, settings=search, random=random.Random(seed)
        )
    except Flaky:
        raise PlanError(
            "strategy",
            f"{name} did not do the same thing twice on the same schedule, so no schedule can "
            "be pinned on it",
            allowed="a strategy that sleeps and reads time only through the clock it is given, "
            "and seeds its randomness",
        ) from None
    except NoSuchExample:
        wall_s = time.perf_counter() - started
        say(f"no schedule broke {name} in {runs} runs ({wall_s:.1f} s)")
        return HuntResult(name, seed, messages, drawn, runs, wall_s, None)
    assert first is not None
    scenario = scenario_of(minimal)
    ledger = Ledger(transcript_limit_lines=TRANSCRIPT_LIMIT_LINES)
    case = run_case(scenario, strategy, ledger=ledger)
    story = tell(describe_schedule(minimal), build_messages(spec), case, ledger)
    wall_s = time.perf_counter() - started
    say(f"smallest: {_events(minimal.events)}, after {runs} runs ({wall_s:.1f} s)")
    found = Found(minimal, scenario, case, story, *first, strict_uncertain=strict_uncertain)
    return HuntResult(name, seed, messages, drawn, runs, wall_s, found)


def slug(name: str) -> str:
    """A file-name-safe form of a strategy name: ``mymail:send_batch`` -> ``mymail-send-batch``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "strategy"


def scenario_toml(found: Found, command: str) -> str:
    """The counterexample as a scenario file: its contract is what a correct client achieves
    under the schedule, and the hunted strategy has the same table (so pytest plays it)."""
    scenario, name = found.scenario, found.case["strategy"]
    plan = scenario.plan.to_dict()
    faults = plan.pop("faults", [])
    cuts = sum(is_ambiguous(rule.match.stage, rule.action) for rule in found.schedule.faults)
    best = "Every message delivered once, or rejected with a 5xx and reported failed"
    if cuts:
        best += (
            f"; a message whose connection was cut after its final '.' ({cuts} here) may be "
            "reported uncertain instead, as no client can know whether the server kept it"
        )
    replay = shlex.join(["ses-harness", "run", str(scenario.path), "--strategy", name])
    strict = (
        "# --strict-uncertain: its own table counts an uncertain claim as a break too.\n"
        if found.strict_uncertain
        else ""
    )
    parts = [
        f"# The smallest fault schedule that `ses-harness hunt` found to break {name}:\n"
        f"#   {command}\n"
        f"# Replaying it fails until {name} is fixed:\n"
        f"#   {replay}\n{strict}",
        tomli_w.dumps({"name": scenario.name}),
        _multiline("description", found.story.text(width=96) + "\n"),
        tomli_w.dumps({"best_possible": best + ".", "latency_s": scenario.latency_s}),
        tomli_w.dumps(
            {"workload": {"count": scenario.workload.count, "seed": scenario.workload.seed}}
        ),
        tomli_w.dumps({"plan": plan}),
    ]
    parts += [f"[[plan.faults]]\n{tomli_w.dumps(rule)}" for rule in faults]
    parts.append(tomli_w.dumps({"contract": _table(scenario.contract)}))
    parts.append(tomli_w.dumps({"expect": {name: _table(scenario.expectations[name])}}))
    return "\n".join(part.strip("\n") + "\n" for part in parts)


def _table(expectations: tuple[Expectation, ...]) -> dict[str, Any]:
    """Expectations as a scenario file writes them: a number means ==."""
    table: dict[str, Any] = {}
    for e in expectations:
        value = int(e.value) if float(e.value).is_integer() else e.value
        table[e.metric] = value if e.op == "==" else f"{e.op} {value}"
    return table


def write_scenario(found: Found, command: str) -> Path:
    """Write the counterexample to its scenario's path (folders made as needed)."""
    path = found.scenario.path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(scenario_toml(found, command), encoding="utf-8")
    return path


def _multiline(key: str, text: str) -> str:
    """A TOML literal multi-line string where the text allows (quotes stay as they are)."""
    if "'''" in text or any(ord(c) < 32 and c != "\n" for c in text):
        return tomli_w.dumps({key: text}, multiline_strings=True)
    return f"{key} = '''\n{text}'''"


def _classes(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {words(cls)}" for cls, n in counts.items())


def _events(count: int) -> str:
    return f"{count} event" + ("" if count == 1 else "s")
