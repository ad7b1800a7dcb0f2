"""What a test holds as `fake_ses`: arrange faults fluently, read the ledger, assert on it.

>>> def test_greylisting(fake_ses):                                       # doctest: +SKIP
...     grey = fake_ses.on("RCPT", attempts=1).reply(451, "4.7.1 Greylisted, try later")
...     send_with_retries(fake_ses.endpoint, ["<a@x>", "<b@x>"])
...     fake_ses.assert_delivered_once(["<a@x>", "<b@x>"])
...     assert grey.call_count == 2

Each arranged rule becomes a :class:`harness.Rule` appended to the test's plan, which is applied
to the server with `set_plan` at once. Rules count occurrences from the moment they are applied,
so arrange before the client starts. Strict by default: a rule that never fired is reported when
the test ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.core.errors import PlanError
from harness.core.plan import Plan, Rule
from harness.plugin.assertions import delivery_report, delivery_verdict, marker_call, rule_spec
from harness.server.clock import Clock
from harness.server.endpoint import Endpoint
from harness.server.fake_ses import FakeSES
from harness.server.ledger import FaultRecord, Ledger, MessageRecord, SessionRecord

MARKER = "fake_ses"
_PLAN_KEYS = ("profile", "seed", "faults", "strict")


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
        plan = Plan(
            profile=kwargs.get("profile", base.profile),
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


@dataclass
class ArrangedRule:
    """A rule arranged by the test, with the record of its firings (`calls`)."""

    rule: Rule
    index: int  # position in the plan's faults: what the ledger's FaultRecord.rule_index says
    ledger: Ledger = field(repr=False)

    @property
    def calls(self) -> list[FaultRecord]:
        """Every time this rule changed what the server did, in order."""
        return [f for f in self.ledger.faults if f.source == "rule" and f.rule_index == self.index]

    @property
    def call_count(self) -> int:
        return len(self.calls)

    @property
    def called(self) -> bool:
        return bool(self.calls)

    def __str__(self) -> str:
        return rule_spec(self.rule)


class RuleBuilder:
    """`fake_ses.on(stage, **matcher)`: say when (`times`, `nth`), then what (`reply`, `drop`...).

    The action call applies the rule and returns its :class:`ArrangedRule`.
    """

    def __init__(self, view: FakeSESView, stage: str, matcher: dict[str, Any]) -> None:
        self._view = view
        self._data: dict[str, Any] = {**matcher, "stage": stage}

    def times(self, k: int) -> RuleBuilder:
        """Only the first `k` matching commands."""
        self._data["first"] = k
        return self

    def nth(self, k: int) -> RuleBuilder:
        """Only the `k`th matching command (1-based)."""
        self._data["nth"] = k
        return self

    def reply(self, code: int, text: str = "", *, close: bool | None = None) -> ArrangedRule:
        """Answer `code text` instead; a 421 also closes the connection unless `close=False`."""
        action: dict[str, Any] = {"action": "reply", "code": code, "text": text}
        if close is not None:
            action["close"] = close
        return self._done(action)

    def drop(self) -> ArrangedRule:
        """Cut the connection without replying."""
        return self._done({"action": "drop"})

    def drop_after_accept(self) -> ArrangedRule:
        """At EOM: record the message, then cut the connection before the 250 (duplicates!)."""
        return self._done({"action": "drop_after_accept"})

    def delay(self, seconds: float) -> ArrangedRule:
        """Wait `seconds` on the server's clock, then carry on normally."""
        return self._done({"action": "delay", "delay_s": seconds})

    def stall(self, seconds: float | None = None) -> ArrangedRule:
        """Never answer; hang up after `seconds` (None: when the client gives up)."""
        action: dict[str, Any] = {"action": "stall"}
        if seconds is not None:
            action["stall_s"] = seconds
        return self._done(action)

    def _done(self, action: dict[str, Any]) -> ArrangedRule:
        self._view._pending.remove(self)
        return self._view._arrange(Rule.from_dict({**self._data, **action}))

    def __repr__(self) -> str:
        when = ", ".join(f"{k}={v!r}" for k, v in self._data.items() if k != "stage")
        return f"on({self._data['stage']!r}{', ' if when else ''}{when})"


class FakeSESView:
    """One test's view of a fake SES server: arrangement, records and assertions.

    The pytest plugin hands one out as `fake_ses` (a shared server, reset for each test) and
    from `fake_ses_factory` (a server of its own). Set `strict = False` to let this test's
    arranged faults stay unfired (the marker's `strict=False` does the same).
    """

    def __init__(
        self, server: FakeSES, plan: Plan, *, strict: bool = True, first_arranged: int = 0
    ) -> None:
        """Apply `plan` to `server`; its rules from index `first_arranged` on are the test's
        own (the ones before belong to the server's base plan and are not held to strictness)."""
        self.server = server
        self.strict = strict
        self._pending: list[RuleBuilder] = []
        self._apply(plan)
        self._rules = [
            ArrangedRule(rule, index, server.ledger)
            for index, rule in enumerate(plan.faults)
            if index >= first_arranged
        ]

    # --- where to connect ------------------------------------------------------------------

    @property
    def endpoint(self) -> Endpoint:
        """Host, port, TLS and credentials; `endpoint.connect()` gives a ready smtplib client."""
        return self.server.endpoint

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def clock(self) -> Clock:
        """The server's clock: sleep through it to make backoff free on a virtual clock."""
        return self.server.clock

    @property
    def plan(self) -> Plan:
        """The plan in effect: profile, seed, limits and every rule."""
        return self.server.plan

    # --- arrangement -----------------------------------------------------------------------

    def on(self, stage: str, **matcher: Any) -> RuleBuilder:
        """Start a rule at `stage` (CONNECT, EHLO, AUTH, MAIL, RCPT, DATA, EOM, RSET, NOOP, QUIT).

        `matcher` takes any :class:`harness.Matcher` field: nth, first, every, after,
        probability, session, sender, recipient, attempt, attempts.
        """
        builder = RuleBuilder(self, stage, matcher)
        self._pending.append(builder)
        return builder

    def limits(self, **overrides: Any) -> None:
        """Override limits for this test: `fake_ses.limits(session_limit=3, rate_per_s=None)`."""
        self._apply(self.plan.with_limits(**overrides))

    @property
    def rules(self) -> list[ArrangedRule]:
        """The rules this test arranged (marker first, then `on(...)`), with their calls."""
        return list(self._rules)

    def _arrange(self, rule: Rule) -> ArrangedRule:
        plan = self.plan.with_faults(rule)
        arranged = ArrangedRule(rule, len(plan.faults) - 1, self.server.ledger)
        self._apply(plan)
        self._rules.append(arranged)
        return arranged

    def _apply(self, plan: Plan) -> None:
        if plan is not self.server.plan and plan != self.server.plan:
            self.server.set_plan(plan)

    # --- records ---------------------------------------------------------------------------

    @property
    def ledger(self) -> Ledger:
        return self.server.ledger

    @property
    def messages(self) -> list[MessageRecord]:
        """Every message the server recorded, in order of acceptance."""
        return self.server.ledger.messages

    @property
    def sessions(self) -> list[SessionRecord]:
        return self.server.ledger.sessions

    @property
    def faults_fired(self) -> list[FaultRecord]:
        """Every rule and limit that changed what the server did, in order."""
        return self.server.ledger.faults

    @property
    def reproducer(self) -> str:
        """The marker that recreates this test's plan (seed, profile, limits, rules)."""
        return marker_call(self.plan)

    # --- assertions and waiting ------------------------------------------------------------

    def assert_delivered_once(self, ids: Iterable[str]) -> None:
        """Each Message-ID in `ids` reached the server exactly once.

        The failure lists the lost and duplicated ids, the faults in the sessions involved, and
        a reproducer. A message cut off before its 250 (`drop_after_accept`) counts as
        delivered: SES would send it.
        """
        messages = self.messages
        verdict = delivery_verdict(ids, messages)
        if not verdict.ok:
            raise AssertionError(
                delivery_report(verdict, messages, self.faults_fired, self.reproducer)
            )

    def wait_for_messages(self, count: int, timeout_s: float = 10.0) -> list[MessageRecord]:
        """Block until the server has recorded `count` messages (clients in other threads or
        processes); fail the test with what arrived if that takes longer than `timeout_s`."""
        try:
            return self.server.ledger.wait_for_messages(count, timeout_s)
        except TimeoutError:
            got = len(self.messages)
            raise AssertionError(
                f"waited {timeout_s}s for {count} messages; the server recorded {got}"
            ) from None

    def wait_for(self, condition: Callable[[Ledger], Any], timeout_s: float = 10.0) -> Any:
        """Block until `condition(ledger)` is truthy and return it; fail after `timeout_s`."""
        try:
            return self.server.ledger.wait_for(condition, timeout_s)
        except TimeoutError:
            raise AssertionError(
                f"waited {timeout_s}s for the ledger condition; the server recorded "
                f"{len(self.messages)} messages in {len(self.sessions)} sessions"
            ) from None

    # --- end of the test -------------------------------------------------------------------

    def unmet(self) -> list[str]:
        """What strictness objects to: rules that never fired and rules left without an action."""
        if not self.strict:
            return []
        problems = [f"never fired: {r}" for r in self._rules if not r.called]
        problems += [f"no action given: {b!r} (add .reply(), .drop(), ...)" for b in self._pending]
        return problems

    def summary(self) -> str:
        """What the server saw in this test, for failure reports."""
        commands: dict[str, int] = {}
        for session in self.sessions:
            for line in session.transcript:
                if line.direction == ">":
                    verb = line.text.split(" ", 1)[0] if not line.text.startswith("[") else "EOM"
                    commands[verb] = commands.get(verb, 0) + 1
        seen = ", ".join(f"{verb} {n}" for verb, n in commands.items()) or "none"
        left_out = sum(session.transcript_dropped for session in self.sessions)
        if left_out:  # long sessions keep only their first and newest lines
            seen += f" (and {left_out} transcript lines not kept)"
        lines = [
            f"server {self.host}:{self.port}: {len(self.sessions)} sessions, "
            f"{len(self.messages)} messages, {len(self.faults_fired)} faults fired",
            f"commands received: {seen}",
        ]
        lines += [f"rule {r}: fired {r.call_count}x" for r in self._rules]
        lines.append(f"reproduce: {self.reproducer}")
        return "\n".join(lines)

    def strict_report(self) -> str | None:
        """The strictness failure text, or None when there is nothing to object to."""
        problems = self.unmet()
        if not problems:
            return None
        lines = ["fake_ses (strict): arranged faults must fire"]
        lines += [f"  {problem}" for problem in problems]
        lines += [self.summary(), f"(opt out with @pytest.mark.{MARKER}(strict=False))"]
        return "\n".join(lines)
