"""Scenario files: a workload, a server plan, and what each client strategy is expected to score.

A scenario is a TOML file (see ``scenarios/`` at the top of the repository)::

    name = "session-cap"
    description = "SES closes a session after 350 messages ..."
    best_possible = "1,000 of 1,000 delivered once: a client that rotates ..."
    latency_s = 0.02                 # modelled round trip of one SMTP command (virtual time)
    timeout_s = 600                  # wall seconds before a hung case is killed (default 300)
    command_time_scale = 1500        # SES seconds per wall second for a client in another
                                     # process (cmd:), unless its spec names one (default 8)
    events = true                    # SES's events for clients to read (docs/events.md), or
                                     # { delay_s = 300, duplicates = 0.3 }: late, some twice

    [workload]                       # see harness.runner.workload.WorkloadSpec
    count = 1000
    seed = 7
    recipients = 1                   # or [min, max]
    domains = { "example.com" = 9, "example.net" = 1 }   # or a list, equal weights

    [plan]                           # the server: harness.Plan, as everywhere else
    profile = "ses"
    seed = 7
    limits = { rate_per_s = 50.0 }
    [[plan.faults]]
    stage = "EOM"
    every = 50
    action = "drop_after_accept"

    [contract]                       # what any correct client achieves: every strategy
    delivered_once = 1000            # without a table of its own is held to it
    duplicated = 0                   # a number means ==
    silently_lost = 0
    misreported = "<= 0"             # or "OP number" with OP one of == != >= <= > <

    [expect.naive]                   # a strategy's own table replaces the contract for it:
    delivered_once = 350             # the built-ins document their known-bad outcomes here
    efficiency = ">= 0.9"

Metrics are the keys of a case's score (see :mod:`harness.runner.scoring`). Every mistake in a
file is a :class:`harness.PlanError` naming the file, the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from harness.base.profile_file import load_profile_file, looks_like_file
from harness.base.sesevents import FeedFaults
from harness.core import schema
from harness.core.errors import PlanError
from harness.core.plan import Plan
from harness.runner.resolve import known_strategy
from harness.runner.scoring import METRICS
from harness.runner.upstream import UpstreamSpec
from harness.runner.workload import WorkloadSpec

DEFAULT_LATENCY_S = 0.02
#: The contract of a file that states none: whatever else happens, no mail is duplicated and
#: none reported sent that never arrived.
DEFAULT_CONTRACT = {"duplicated": 0, "silently_lost": 0}
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "==": lambda a, b: math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9),
    "!=": lambda a, b: not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9),
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
_EXPRESSION = re.compile(r"^\s*(==|!=|>=|<=|>|<)\s*(-?[0-9][0-9_]*(?:\.[0-9_]+)?)\s*$")
_TOP_KEYS = ("name", "description", "best_possible", "latency_s", "timeout_s")
_TOP_KEYS += ("command_time_scale", "workload", "plan", "contract", "expect", "upstream")
_TOP_KEYS += ("events",)
# Upper bounds keep a typo from building a batch that does not fit in memory.
MAX_MESSAGES = 100_000
MAX_RECIPIENTS = 1_000  # SES takes 50; more lets a scenario test that cap
MAX_BYTES = 64 * 1024 * 1024  # SES takes 40 MB; more lets a scenario test that cap
_WORKLOAD_KEYS = ("count", "seed", "recipients", "body_bytes", "attachments")
_WORKLOAD_KEYS += ("attachment_bytes", "unicode", "sender", "domains", "burst_size", "pause_s")
_WORKLOAD_KEYS += ("mailings", "bouncing", "complaining")


@dataclass(frozen=True)
class Expectation:
    """One line of ``[expect.<strategy>]``: ``metric OP value``."""

    metric: str
    op: str
    value: float

    @property
    def expr(self) -> str:
        value = int(self.value) if float(self.value).is_integer() else self.value
        return f"{self.metric} {self.op} {value}"

    def check(self, actual: float) -> bool:
        return OPERATORS[self.op](actual, self.value)


@dataclass(frozen=True)
class Scenario:
    """A loaded scenario file.

    `contract` is what any correct client achieves; `expectations` are the tables of strategies
    held to another bar (the built-ins' known-bad outcomes, or a user's accepted weakness).
    `strategies` are the ones with a table of their own.
    """

    name: str
    path: Path
    workload: WorkloadSpec
    plan: Plan
    description: str = ""
    best_possible: str = ""
    latency_s: float = DEFAULT_LATENCY_S
    timeout_s: float | None = None  # wall seconds a case may take (harness.runner.matrix's default)
    #: The time scale of a command strategy's case, unless its spec names one (runner.scale).
    command_time_scale: float | None = None
    events: FeedFaults | None = None  # SES's events for clients (Endpoint.events_url)
    expectations: Mapping[str, tuple[Expectation, ...]] = field(default_factory=dict)
    contract: tuple[Expectation, ...] = ()
    seed: int | None = None  # replaces the plan's and workload's seeds in every case (with_seed)
    profile_file: str | None = None  # `run --profile-file`: the profile that replaced the plan's
    #: A real SMTP server the cases run through the proxy to (harness.runner.upstream).
    upstream: UpstreamSpec | None = None

    @property
    def strategies(self) -> tuple[str, ...]:
        return tuple(self.expectations)

    def expectations_for(self, strategy: str) -> tuple[tuple[Expectation, ...], str]:
        """What `strategy` is held to, and whence: ``"own"`` table or the ``"contract"``."""
        own = self.expectations.get(strategy)
        return (own, "own") if own is not None else (self.contract, "contract")

    def with_seed(self, seed: int) -> Scenario:
        """The same scenario played with `seed` (plan and workload), named for it."""
        return dataclasses.replace(self, name=f"{self.name}-seed{seed}", seed=seed)

    def with_expectations(self, strategy: str, table: Mapping[str, Any], source: str) -> Scenario:
        """A copy in which `strategy` is held to `table` (``metric = expectation``) instead.

        `source` names where the table came from, for errors (e.g. ``pyproject.toml``).
        """
        key = f"expect.{self.name}.{strategy}"
        try:
            parsed = tuple(
                _expectation(metric, value, f"{key}.{metric}")
                for metric, value in _table(table, key).items()
            )
        except PlanError as error:
            raise error.within(source=source) from None
        return dataclasses.replace(self, expectations={**self.expectations, strategy: parsed})


def builtin_scenarios() -> list[Path]:
    """The scenario files shipped with the package (``scenarios/`` in the repository)."""
    folder = Path(str(resources.files("harness") / "scenarios"))
    return sorted(folder.glob("*.toml"))


def provider_scenarios(provider: str | None = None) -> list[Path]:
    """The scenarios of providers beyond SES (``scenarios/providers/``), not in the default run;
    with `provider`, only those whose file name starts with it (``gmail``: gmail-*)."""
    folder = Path(str(resources.files("harness") / "scenarios" / "providers"))
    found = sorted(folder.glob("*.toml"))
    return [p for p in found if provider is None or p.stem.startswith(f"{provider}-")]


def builtin_scenario(name: str) -> Path | None:
    """The built-in scenario file called `name` (``session-cap`` or ``session-cap.toml``), a
    provider's too (``gmail-daily-limit``)."""
    stem = name.removesuffix(".toml")
    return next((p for p in builtin_scenarios() + provider_scenarios() if p.stem == stem), None)


def scenario_paths(targets: list[str | Path]) -> list[Path]:
    """Scenarios named on a command line: each a file, a folder of them, or a built-in's name.

    A path that exists wins over a built-in of the same name.
    """
    paths: list[Path] = []
    for target in map(Path, targets):
        if target.is_dir():
            found = sorted(target.glob("*.toml"))
            if not found:
                raise PlanError("", "no *.toml scenario files in this folder", source=str(target))
            paths.extend(found)
        elif target.is_file():
            paths.append(target)
        elif (builtin := builtin_scenario(str(target))) is not None:
            paths.append(builtin)
        else:
            raise PlanError(
                "",
                "no such scenario file or folder, nor a built-in scenario of that name",
                source=str(target),
                allowed=[p.stem for p in builtin_scenarios()],
            )
    return paths


def load_scenario(path: str | Path) -> Scenario:
    """Read and check one scenario file; errors name the file and the key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise PlanError("", f"not valid TOML: {error}", source=str(path)) from None
    except OSError as error:
        raise PlanError("", f"cannot read: {error.strerror}", source=str(path)) from None
    except UnicodeDecodeError as error:
        raise PlanError(
            "", f"not UTF-8 text: {error.reason} at byte {error.start}", source=str(path)
        ) from None
    except RecursionError:
        raise PlanError("", "nested too deeply to be a scenario", source=str(path)) from None
    except ValueError as error:  # an integer of 4,300 digits or more
        raise PlanError("", f"not a scenario: {error}", source=str(path)) from None
    try:
        return _scenario(path, data)
    except PlanError as error:
        raise error.within(source=str(path)) from None


def _scenario(path: Path, data: dict[str, Any]) -> Scenario:
    if "workload" not in data and "plan" not in data:  # another kind of TOML, or empty
        raise PlanError(
            "", "not a scenario file: it has no [workload] and no [plan] table", allowed=_TOP_KEYS
        )
    unknown = sorted(set(data) - set(_TOP_KEYS))
    if unknown:
        raise PlanError(unknown[0], "unknown key", allowed=_TOP_KEYS)
    for key in ("workload", "plan"):
        if key not in data:
            raise PlanError(key, "is required (a table)")
    latency_s = _number(data.get("latency_s", DEFAULT_LATENCY_S), "latency_s", minimum=0.0)
    timeout = data.get("timeout_s")
    if timeout is not None and _number(timeout, "timeout_s", minimum=0.0) == 0.0:
        raise PlanError("timeout_s", "0 would stop every case at once", allowed="> 0")
    scale = data.get("command_time_scale")
    events = FeedFaults.from_toml(data.get("events", False))
    plan_table = dict(_table(data["plan"], "plan"))
    profile = plan_table.get("profile")
    if isinstance(profile, str) and looks_like_file(profile):  # the user's own provider
        try:
            plan_table["profile"] = load_profile_file(path.parent / profile)
        except PlanError as error:  # the profile file's own error, in the scenario's
            raise PlanError("plan.profile", str(error)) from None
    try:
        plan = Plan.from_dict(plan_table)
    except PlanError as error:
        raise error.within(prefix="plan") from None
    return Scenario(
        name=_string(data.get("name", path.stem), "name") or path.stem,
        path=path,
        workload=_workload(_table(data["workload"], "workload")),
        plan=plan,
        description=_string(data.get("description", ""), "description").strip(),
        best_possible=_string(data.get("best_possible", ""), "best_possible").strip(),
        latency_s=latency_s,
        timeout_s=None if timeout is None else float(timeout),
        command_time_scale=None
        if scale is None
        else _number(scale, "command_time_scale", minimum=1.0),
        events=events,
        expectations=_expectations(_table(data.get("expect", {}), "expect")),
        upstream=None
        if "upstream" not in data
        else UpstreamSpec.from_dict(_table(data["upstream"], "upstream"), base=path.parent),
        contract=tuple(
            _expectation(metric, value, f"contract.{metric}")
            for metric, value in _table(data.get("contract", DEFAULT_CONTRACT), "contract").items()
        ),
    )


def _workload(data: Mapping[str, Any]) -> WorkloadSpec:
    unknown = sorted(set(data) - set(_WORKLOAD_KEYS))
    if unknown:
        raise PlanError(f"workload.{unknown[0]}", "unknown key", allowed=_WORKLOAD_KEYS)
    if "count" not in data:
        raise PlanError("workload.count", "is required", allowed="an integer >= 1")
    defaults = WorkloadSpec(count=1)
    burst = data.get("burst_size")
    return WorkloadSpec(
        count=_integer(data["count"], "workload.count", minimum=1, maximum=MAX_MESSAGES),
        seed=_integer(data.get("seed", defaults.seed), "workload.seed", minimum=0),
        recipients=_range(
            data.get("recipients", defaults.recipients), "workload.recipients", 1, MAX_RECIPIENTS
        ),
        body_bytes=_range(
            data.get("body_bytes", defaults.body_bytes), "workload.body_bytes", 1, MAX_BYTES
        ),
        attachments=_share(data.get("attachments", defaults.attachments), "workload.attachments"),
        attachment_bytes=_range(
            data.get("attachment_bytes", defaults.attachment_bytes),
            "workload.attachment_bytes",
            1,
            MAX_BYTES,
        ),
        unicode=_share(data.get("unicode", defaults.unicode), "workload.unicode"),
        sender=_address(data.get("sender", defaults.sender), "workload.sender"),
        domains=_domains(data.get("domains", dict(defaults.domains))),
        burst_size=None
        if burst is None
        else _integer(burst, "workload.burst_size", minimum=1, maximum=MAX_MESSAGES),
        pause_s=_number(data.get("pause_s", 0.0), "workload.pause_s", minimum=0.0),
        mailings=_integer(data.get("mailings", 1), "workload.mailings", minimum=1, maximum=100),
        bouncing=_share(data.get("bouncing", 0.0), "workload.bouncing"),
        complaining=_share(data.get("complaining", 0.0), "workload.complaining"),
    )


def _expectations(data: Mapping[str, Any]) -> dict[str, tuple[Expectation, ...]]:
    out = {}
    for strategy, table in data.items():
        if not known_strategy(strategy):
            from harness.runner.strategies import BUILTINS

            raise PlanError(
                f"expect.{strategy}",
                "is not a known strategy",
                allowed=[*BUILTINS, '"module:attr"', "an installed entry point name"],
            )
        table = _table(table, f"expect.{strategy}")
        out[strategy] = tuple(
            _expectation(metric, value, f"expect.{strategy}.{metric}")
            for metric, value in table.items()
        )
    return out


def _expectation(metric: str, value: Any, key: str) -> Expectation:
    if metric not in METRICS:
        raise PlanError(key, "is not a metric", allowed=METRICS)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Expectation(metric, "==", float(value))
    found = _EXPRESSION.match(value) if isinstance(value, str) else None
    if found is None:
        raise PlanError(
            key,
            f"{value!r} is not an expectation",
            allowed=f'a number, or "OP number" with OP one of {" ".join(OPERATORS)}',
        )
    return Expectation(metric, found.group(1), float(found.group(2).replace("_", "")))


# --- small typed readers; each error names its key --------------------------------------------


def _table(value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PlanError(key, f"{value!r} is not a table")
    return value


def _string(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise PlanError(key, f"{value!r} is not a string")
    return value


def _integer(value: Any, key: str, *, minimum: int, maximum: int | None = None) -> int:
    allowed = f">= {minimum}" if maximum is None else f">= {minimum} and <= {maximum:,}"
    if not isinstance(value, int) or isinstance(value, bool):
        raise PlanError(key, f"{value!r} is not an integer", allowed=allowed)
    if value < minimum:
        raise PlanError(key, f"{value} is too small", allowed=allowed)
    if maximum is not None and value > maximum:
        raise PlanError(key, f"{value:,} is too large", allowed=allowed)
    return value


def _number(value: Any, key: str, *, minimum: float) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise PlanError(key, f"{value!r} is not a number", allowed=f">= {minimum}")
    schema.check_number(value, key)  # finite, and within the key's range (schema.RANGES)
    if value < minimum:
        raise PlanError(key, f"{value} is too small", allowed=f">= {minimum}")
    return float(value)


def _share(value: Any, key: str) -> float:
    share = _number(value, key, minimum=0.0)
    if share > 1.0:
        raise PlanError(key, f"{value} is more than 1", allowed="a share from 0.0 to 1.0")
    return share


def _range(value: Any, key: str, minimum: int, maximum: int) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise PlanError(key, f"{value!r} is not a range", allowed="an integer or [min, max]")
    low, high = value
    if low < minimum or high < low or high > maximum:
        raise PlanError(
            key, f"{value!r} is out of range", allowed=f"{minimum} <= min <= max <= {maximum:,}"
        )
    return (low, high)


def _address(value: Any, key: str) -> str:
    address = _string(value, key)
    if address.count("@") != 1 or not all(address.split("@")):
        raise PlanError(key, f"{address!r} is not an email address", allowed="local@domain")
    return address


def _domains(value: Any) -> tuple[tuple[str, float], ...]:
    key = "workload.domains"
    if isinstance(value, list) and value:
        for domain in value:  # before they become keys: a table or a list is not hashable
            if not isinstance(domain, str):
                raise PlanError(key, f"{domain!r} is not a domain", allowed="e.g. example.com")
        value = dict.fromkeys(value, 1.0)
    if not isinstance(value, Mapping) or not value:
        raise PlanError(
            key, f"{value!r} is not a list of domains", allowed='["a.com", ...] or {"a.com" = 9}'
        )
    pairs = []
    for domain, weight in value.items():
        if not isinstance(domain, str) or "@" in domain or "." not in domain:
            raise PlanError(key, f"{domain!r} is not a domain", allowed="e.g. example.com")
        pairs.append((domain, _number(weight, f"{key}.{domain}", minimum=0.0)))
    if not any(weight for _, weight in pairs):
        raise PlanError(key, "all weights are 0", allowed="at least one weight > 0")
    return tuple(pairs)
