"""What `@pytest.mark.fake_ses(...)` asks for: a plan, strictness, and a server's own keywords.

The view a test holds as `fake_ses` is :class:`harness.server.view.FakeSESView` (re-exported
here): it lives with the server, which hands the same view out from `async with FakeSES(...)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.base.clock import Clock, RealClock, VirtualClock
from harness.base.profile_file import load_profile_file, looks_like_file
from harness.core.errors import PlanError
from harness.core.plan import Plan, Rule
from harness.server.rule_builder import ArrangedRule, RuleBuilder
from harness.server.view import FakeSESView

__all__ = ["MARKER", "ArrangedRule", "FakeSESView", "RuleBuilder", "plan_from_marker"]

MARKER = "fake_ses"
#: Keywords that shape the server rather than its plan: a test that gives one gets a server of
#: its own (the shared one keeps its clock, TLS and credentials for every other test).
SERVER_KEYS = ("clock", "tls", "auth")
_PLAN_KEYS = ("profile", "seed", "faults", "strict", *SERVER_KEYS)
CLOCKS = ("real", "virtual")


def server_options(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The marker's server keywords (`clock`, `tls`, `auth`), checked; empty for most tests.

    `clock` is "real", "virtual" or a :class:`harness.Clock`; it becomes a new clock object.
    """
    options = {key: kwargs[key] for key in SERVER_KEYS if key in kwargs}
    clock = options.get("clock")
    if clock is not None and not isinstance(clock, Clock):
        if clock not in CLOCKS:
            raise PlanError(
                "clock", f"{clock!r} is not a clock", allowed="'real', 'virtual', a Clock"
            ).within(source=f"@pytest.mark.{MARKER}")
        options["clock"] = VirtualClock() if clock == "virtual" else RealClock()
    return options


def plan_from_marker(base: Plan, kwargs: Mapping[str, Any]) -> tuple[Plan, bool]:
    """The plan and strictness a `@pytest.mark.fake_ses(...)` asks for, on top of `base`.

    `faults` items may be :class:`Rule` objects, `Rule.from_spec` strings or rule tables; every
    other keyword is a limit (`session_limit=3`, `rate_per_s=None` to switch one off).
    """
    if not kwargs:  # most tests: nothing to build or check
        return base, True
    try:
        faults = kwargs.get("faults", ())
        if isinstance(faults, str | Mapping | Rule):
            faults = [faults]
        rules = []
        for index, item in enumerate(faults):
            try:
                rules.append(_rule(item))
            except PlanError as error:
                raise error.within(prefix=f"faults[{index}]") from None
        strict = kwargs.get("strict", True)
        if not isinstance(strict, bool):
            raise PlanError("strict", f"{strict!r} is not true or false", allowed="True, False")
        limits = {k: v for k, v in kwargs.items() if k not in _PLAN_KEYS}
        profile = kwargs.get("profile", base.profile)
        if isinstance(profile, str) and looks_like_file(profile):  # the user's own provider
            profile = load_profile_file(profile)
        plan = Plan(
            profile=profile,
            seed=kwargs.get("seed", base.seed),
            limits={**base.limits, **limits},
            faults=base.faults + tuple(rules),
        )
    except PlanError as error:
        raise error.within(source=f"@pytest.mark.{MARKER}") from None
    return plan, strict


def _rule(item: Rule | str | Mapping[str, Any]) -> Rule:
    if isinstance(item, Rule):
        return item
    if isinstance(item, str):
        return Rule.from_spec(item)
    return Rule.from_dict(item)
