"""The page's plan panel: the plan with each limit and rule switched on or off, and how often
each fired (`GET /api/steering`, `PUT /api/steering`).

A plan has no "off" for a rule, so the panel keeps the whole plan (every rule, every limit
override) and what is switched off; the server runs the plan without them. A rule switched off
and on again is the same rule, and its firings still count: each firing is traced to the rule
through the plan that was in force when it fired (`FaultRecord.rule_index` is a position in that
plan). Validation is the plan's own (`Plan.from_dict`), so errors read as `PUT /api/plan`'s.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

from aiohttp import web

from harness.base.ledger import FaultRecord, Ledger
from harness.console.api import ConsoleError, json_body, plan_from, reply
from harness.console.events import EventHub
from harness.console.livelog import describe_rule
from harness.core.limits import Limits
from harness.core.plan import ACTIONS, Matcher, Plan, Rule, Stage
from harness.core.profiles import PROFILES

SOURCE = "PUT /api/steering"
#: Limits that are a setting rather than something to switch off.
NOT_SWITCHABLE = ("api_throttle",)


class Steering:
    """The full plan, what of it is off, and the plans in force since the ledger began."""

    def __init__(self, ses: Any, hub: EventHub) -> None:
        self.ses = ses
        self.hub = hub
        self.full: Plan = ses.plan
        self.rules_off: set[int] = set()
        self.limits_off: set[str] = set()
        self.in_force: Plan = ses.plan
        # (index of the first fault recorded under it, the plan in force)
        self.epochs: list[tuple[int, Plan]] = [(0, ses.plan)]

    @property
    def ledger(self) -> Ledger:
        return self.ses.ledger

    def adopt(self, plan: Plan) -> None:
        """A plan set some other way (PUT /api/plan): everything in it is on."""
        self._apply(plan, set(), set())

    def cleared(self) -> None:
        self.epochs = [(0, self.in_force)]

    def apply(self, data: Any) -> None:
        """Set the panel from its JSON form: ``{"plan": {...}, "off": {"faults": [0],
        "limits": ["rate_per_s"]}}``."""
        if not isinstance(data, dict) or not isinstance(data.get("plan"), dict):
            raise ConsoleError(400, f'{SOURCE}: the body is {{"plan": {{...}}, "off": {{...}}}}')
        unknown = sorted(set(data) - {"plan", "off"})
        if unknown:
            raise ConsoleError(400, f"{SOURCE}: unknown key {unknown[0]!r} (allowed: plan, off)")
        plan = plan_from(data["plan"], SOURCE)
        off = data.get("off") or {}
        if not isinstance(off, dict) or set(off) - {"faults", "limits"}:
            raise ConsoleError(400, f"{SOURCE}: off is a table with faults and limits")
        rules_off = set(_list(off, "faults", int))
        bad = sorted(i for i in rules_off if not 0 <= i < len(plan.faults))
        if bad:
            raise ConsoleError(400, f"{SOURCE}: key 'off.faults': there is no rule {bad[0]}")
        limits_off = set(_list(off, "limits", str))
        names = [f.name for f in dataclasses.fields(Limits) if f.name not in NOT_SWITCHABLE]
        bad_names = sorted(limits_off - set(names))
        if bad_names:
            raise ConsoleError(
                400,
                f"{SOURCE}: key 'off.limits': {bad_names[0]!r} is not a limit "
                f"(allowed: {', '.join(names)})",
            )
        self._apply(plan, rules_off, limits_off)

    def _apply(self, full: Plan, rules_off: set[int], limits_off: set[str]) -> None:
        defaults = {f.name: f.default for f in dataclasses.fields(Limits)}
        switched = {k: (False if isinstance(defaults[k], bool) else None) for k in limits_off}
        in_force = Plan(
            profile=full.profile,
            seed=full.seed,
            limits={**full.limits, **switched},
            faults=tuple(r for i, r in enumerate(full.faults) if i not in rules_off),
        )
        self.full, self.rules_off, self.limits_off = full, rules_off, limits_off
        self.epochs.append((len(self.ledger.faults), in_force))
        self.in_force = in_force
        self.ses.set_plan(in_force)
        self.hub.publish({"type": "plan"})

    # --- reading --------------------------------------------------------------------------

    def plans(self) -> list[Plan]:
        """For each fault in the ledger, in order, the plan in force when it fired."""
        out = []
        epochs = self.epochs
        epoch = 0
        for index in range(len(self.ledger.faults)):
            while epoch + 1 < len(epochs) and epochs[epoch + 1][0] <= index:
                epoch += 1
            out.append(epochs[epoch][1])
        return out

    def rule_of(self, fault: FaultRecord, plan: Plan) -> Rule | None:
        if fault.source != "rule" or fault.rule_index is None:
            return None
        return plan.faults[fault.rule_index] if fault.rule_index < len(plan.faults) else None

    def why(self, fault: FaultRecord, plan: Plan) -> str:
        """Which rule or limit made the server do this, in the form a person sets it."""
        rule = self.rule_of(fault, plan)
        if rule is not None:
            return f"rule {describe_rule(rule)}"
        if fault.source == "limit":
            value = getattr(plan.resolved_limits(), fault.name, None)
            shown = ", ".join(value) if isinstance(value, tuple) else value
            return f"limit {fault.name} = {shown} (profile {plan.profile_name})"
        return f"{fault.source} {fault.name}"

    def _fired(self) -> tuple[collections.Counter[Rule], collections.Counter[str]]:
        rules: collections.Counter[Rule] = collections.Counter()
        limits: collections.Counter[str] = collections.Counter()
        for fault, plan in zip(self.ledger.faults, self.plans(), strict=False):
            if fault.source == "limit":
                limits[fault.name] += 1
            elif (rule := self.rule_of(fault, plan)) is not None:
                rules[rule] += 1
        return rules, limits

    def panel(self) -> dict[str, Any]:
        if self.ses.plan is not self.in_force:  # changed behind the panel's back
            self.adopt(self.ses.plan)
        full = self.full
        rules_fired, limits_fired = self._fired()
        profile = full.resolved_profile().limits
        resolved = full.resolved_limits()
        limits = []
        for f in dataclasses.fields(Limits):
            value = getattr(resolved, f.name)
            limits.append(
                {
                    "key": f.name,
                    "value": list(value) if isinstance(value, tuple) else value,
                    "profile_value": _plain(getattr(profile, f.name)),
                    "overridden": f.name in full.limits,
                    "on": f.name not in self.limits_off,
                    "switchable": f.name not in NOT_SWITCHABLE,
                    "kind": _kind(f.type),
                    "fired": limits_fired.get(f.name, 0),
                }
            )
        rules = [
            {
                "index": index,
                "rule": rule.to_dict(),
                "spec": describe_rule(rule),
                "on": index not in self.rules_off,
                "fired": rules_fired.get(rule, 0),
            }
            for index, rule in enumerate(full.faults)
        ]
        return {
            "profile": full.profile_name,
            "seed": full.seed,
            "profiles": list(PROFILES),
            "plan": full.to_dict(),
            "off": {"faults": sorted(self.rules_off), "limits": sorted(self.limits_off)},
            "in_force": self.in_force.to_dict(),
            "limits": limits,
            "rules": rules,
            "form": {
                "stages": [s.value for s in Stage],
                "matcher": [f.name for f in dataclasses.fields(Matcher) if f.name != "stage"],
                "actions": {
                    kind: [f.name for f in dataclasses.fields(cls)] for kind, cls in ACTIONS.items()
                },
            },
        }


STEERING_KEY = web.AppKey("steering", Steering)


def routes() -> list[web.AbstractRouteDef]:
    return [web.get("/api/steering", get_steering), web.put("/api/steering", put_steering)]


async def get_steering(request: web.Request) -> web.Response:
    return reply(request.app[STEERING_KEY].panel())


async def put_steering(request: web.Request) -> web.Response:
    steering = request.app[STEERING_KEY]
    steering.apply(await json_body(request))
    return reply(steering.panel())


def _list(table: dict[str, Any], key: str, kind: type) -> list[Any]:
    items = table.get(key, [])
    if not isinstance(items, list) or not all(
        isinstance(i, kind) and not isinstance(i, bool) for i in items
    ):
        raise ConsoleError(400, f"{SOURCE}: key 'off.{key}' must be a list of {kind.__name__}")
    return items


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _kind(annotation: Any) -> str:
    text = str(annotation)
    for kind in ("bool", "int", "float", "tuple", "str"):
        if kind in text:
            return {"tuple": "list"}.get(kind, kind)
    return "str"
