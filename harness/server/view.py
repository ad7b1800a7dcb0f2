"""One test's view of a fake SES server: arrange faults fluently, read the ledger, assert on it.

>>> def test_greylisting(fake_ses):                                       # doctest: +SKIP
...     grey = fake_ses.on("RCPT", attempts=1).reply(451, "4.7.1 Greylisted, try later")
...     send_with_retries(fake_ses.endpoint, ["<a@x>", "<b@x>"])
...     fake_ses.assert_delivered_once(["<a@x>", "<b@x>"])
...     assert grey.call_count == 2

The pytest plugin hands one out as `fake_ses`; `async with FakeSES(...) as ses` gives one too.
It lives with the server, not the plugin, because it is only a reading of a server's ledger and
plan: a server can give out its own view without knowing pytest.

Each arranged rule (built by :mod:`harness.server.rule_builder`) becomes a :class:`harness.Rule`
appended to the test's plan, which is applied to the server with `set_plan` at once. Rules count
occurrences from the moment they are applied, so arrange before the client starts. Strict by
default: a rule that never fired is reported when the test ends.

Waiting comes in two forms: `wait_for_messages(...)` blocks the calling thread (a client in
another thread or process), `await wait_for_messages_async(...)` yields to the event loop (a
client on the same loop). The blocking form refuses to run on a thread with a running loop,
where it would stop the very client it waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from harness.base.clock import Clock
from harness.base.endpoint import Endpoint
from harness.base.ledger import FaultRecord, Ledger, MessageRecord, SessionRecord
from harness.base.sesevents import SesEvent
from harness.core.plan import Plan, Rule
from harness.server.rule_builder import ArrangedRule, RuleBuilder
from harness.server.verdicts import (
    carried_note,
    delivery_report,
    delivery_verdict,
    fired_by_name,
    marker_call,
    recipient_verdict,
)

#: The marker the strictness text points to (the plugin's; plain text here).
OPT_OUT = "@pytest.mark.fake_ses(strict=False)"


class Server(Protocol):
    """What a view needs of a server (a :class:`harness.FakeSES`)."""

    plan: Plan
    ledger: Ledger
    clock: Clock

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def endpoint(self) -> Endpoint: ...
    @property
    def api_url(self) -> str | None: ...
    def set_plan(self, plan: Plan) -> None: ...
    def boto3_client(self, service: str = "sesv2", **config: Any) -> Any: ...


class FakeSESView:
    """One test's view of a fake SES server: arrangement, records, assertions and waiting.

    The pytest plugin hands one out as `fake_ses` (a shared server, reset for each test) and
    from `fake_ses_factory` (a server of its own); `async with FakeSES(...)` gives one of its
    server. Set `strict = False` to let this test's arranged faults stay unfired (the marker's
    `strict=False` does the same).
    """

    def __init__(
        self, server: Server, plan: Plan, *, strict: bool = True, first_arranged: int = 0
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
    def api_url(self) -> str | None:
        """Where the server's SES HTTP API answers (an SDK's `endpoint_url`), or None."""
        return self.server.api_url

    def boto3_client(self, service: str = "sesv2", **config: Any) -> Any:
        """A boto3 client for the server's SES API (one attempt per call unless `retries=`
        says otherwise); its mail is in `messages` like SMTP's. Needs boto3."""
        return self.server.boto3_client(service, **config)

    @property
    def clock(self) -> Clock:
        """The server's clock: sleep through it to make backoff free on a virtual clock
        (`clock.sleep(s)`, or `await clock.sleep_async(s)` on an event loop)."""
        return self.server.clock

    @property
    def plan(self) -> Plan:
        """The plan in effect: profile, seed, limits and every rule."""
        return self.server.plan

    # --- arrangement -----------------------------------------------------------------------

    def on(self, stage: str, **matcher: Any) -> RuleBuilder:
        """Start a rule at `stage` (CONNECT, EHLO, AUTH, MAIL, RCPT, DATA, EOM, RSET, NOOP, QUIT).

        `matcher` takes any :class:`harness.Matcher` field: nth, first, every, after,
        probability, session, sender, recipient, attempt, attempts, greylist_s.
        """
        return RuleBuilder(stage, matcher, pending=self._pending, arrange=self._arrange)

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
    def events(self) -> list[SesEvent]:
        """The events SES has published about them so far (docs/events.md), oldest first."""
        return self.server.events

    @property
    def sessions(self) -> list[SessionRecord]:
        """This test's sessions: those it opened, and those it used that an earlier test left
        open (`carried_over`, counted from this test's start). A connection left open that this
        test never used is not listed: it is not this test's traffic."""
        return [s for s in self.server.ledger.sessions if not s.carried_over or s.commands]

    @property
    def carried_over(self) -> list[SessionRecord]:
        """The sessions of `sessions` that began in an earlier test (a reused connection)."""
        return [s for s in self.sessions if s.carried_over]

    @property
    def faults_fired(self) -> list[FaultRecord]:
        """Every rule and limit that changed what the server did, in order."""
        return self.server.ledger.faults

    @property
    def reproducer(self) -> str:
        """The marker that recreates this test's plan (seed, profile, limits, rules)."""
        return marker_call(self.plan)

    # --- assertions ------------------------------------------------------------------------

    def assert_delivered_once(self, ids: Iterable[str]) -> None:
        """Each Message-ID in `ids` reached the server exactly once.

        The failure lists the lost and duplicated ids, the faults in the sessions involved, and
        a reproducer. A message cut off before its 250 (`drop_after_accept`) counts as
        delivered: SES would send it.
        """
        messages = self.messages
        self._report(delivery_verdict(ids, messages), messages)

    def assert_delivered_once_to(self, recipients: Iterable[str]) -> None:
        """Each envelope recipient (RCPT TO, any case) is in exactly one recorded message.

        For senders that hide Message-IDs (Django's `send_mass_mail`, most mailers' bulk
        calls): the same verdict and failure text as `assert_delivered_once`, by recipient.
        """
        messages = self.messages
        self._report(recipient_verdict(recipients, messages), messages)

    def _report(self, verdict: Any, messages: list[MessageRecord]) -> None:
        if not verdict.ok:
            carried = [s.number for s in self.carried_over]
            raise AssertionError(
                delivery_report(verdict, messages, self.faults_fired, self.reproducer, carried)
            )

    # --- waiting: blocking (other threads and processes) -----------------------------------

    def wait_for_messages(self, count: int, timeout_s: float = 10.0) -> list[MessageRecord]:
        """Block until the server has recorded `count` messages (clients in other threads or
        processes); fail the test with what arrived if that takes longer than `timeout_s`."""
        self.wait_for(_messages(count), timeout_s, f"{count} messages", name="wait_for_messages")
        return self.messages

    def wait_for_sessions(self, count: int, timeout_s: float = 10.0) -> list[SessionRecord]:
        """Block until this test has `count` sessions (see `sessions`); fail after `timeout_s`."""
        self.wait_for(
            self._sessions(count), timeout_s, f"{count} sessions", name="wait_for_sessions"
        )
        return self.sessions

    def wait_for_faults(self, count: int, timeout_s: float = 10.0) -> list[FaultRecord]:
        """Block until `count` faults (rules or limits) have fired; fail after `timeout_s`."""
        self.wait_for(_faults(count), timeout_s, f"{count} faults", name="wait_for_faults")
        return self.faults_fired

    def wait_for(
        self,
        condition: Callable[[Ledger], Any],
        timeout_s: float = 10.0,
        what: str = "the ledger condition",
        *,
        name: str = "wait_for",
    ) -> Any:
        """Block until `condition(ledger)` is truthy and return it; fail after `timeout_s`."""
        _refuse_on_a_running_loop(name)
        try:
            return self.server.ledger.wait_for(condition, timeout_s)
        except TimeoutError:
            raise AssertionError(self._waited(timeout_s, what)) from None

    # --- waiting: awaitable (a client on the same event loop) ------------------------------

    async def wait_for_messages_async(
        self, count: int, timeout_s: float = 10.0
    ) -> list[MessageRecord]:
        """`wait_for_messages` that yields to the event loop while it waits."""
        await self.wait_for_async(_messages(count), timeout_s, f"{count} messages")
        return self.messages

    async def wait_for_sessions_async(
        self, count: int, timeout_s: float = 10.0
    ) -> list[SessionRecord]:
        """`wait_for_sessions` that yields to the event loop while it waits."""
        await self.wait_for_async(self._sessions(count), timeout_s, f"{count} sessions")
        return self.sessions

    async def wait_for_faults_async(self, count: int, timeout_s: float = 10.0) -> list[FaultRecord]:
        """`wait_for_faults` that yields to the event loop while it waits."""
        await self.wait_for_async(_faults(count), timeout_s, f"{count} faults")
        return self.faults_fired

    async def wait_for_async(
        self,
        condition: Callable[[Ledger], Any],
        timeout_s: float = 10.0,
        what: str = "the ledger condition",
    ) -> Any:
        """Await until `condition(ledger)` is truthy and return it; fail after `timeout_s`.

        Woken by the ledger on each change (no polling); the condition is checked on the
        awaiting loop. The server may run on this loop or in its own thread.
        """
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()

        def tell(kind: str, record: Any) -> None:
            with contextlib.suppress(RuntimeError):  # that loop has closed: nobody waits
                loop.call_soon_threadsafe(changed.set)

        stop = self.server.ledger.watch(tell)
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    changed.clear()
                    result = condition(self.server.ledger)
                    if result:
                        return result
                    await changed.wait()
        except TimeoutError:
            raise AssertionError(self._waited(timeout_s, what)) from None
        finally:
            stop()

    def _sessions(self, count: int) -> Callable[[Ledger], bool]:
        return lambda _: len(self.sessions) >= count

    def _waited(self, timeout_s: float, what: str) -> str:
        return (
            f"waited {timeout_s}s for {what}; the server recorded {len(self.messages)} "
            f"messages in {len(self.sessions)} sessions, {len(self.faults_fired)} faults fired"
        )

    # --- end of the test -------------------------------------------------------------------

    def unmet(self) -> list[str]:
        """What strictness objects to: rules that never fired and rules left without an action."""
        if not self.strict:
            return []
        problems = [f"never fired: {r}" for r in self._rules if not r.called]
        problems += [f"no action given: {b!r} (add .reply(), .drop(), ...)" for b in self._pending]
        return problems

    def summary(self) -> str:
        """What the server saw in this test, for failure reports: every count from the ledger's
        own tallies (never from the bounded transcripts), and what fired, by name."""
        sessions = self.sessions
        commands: dict[str, int] = {}
        for session in sessions:
            for verb, n in session.commands.items():
                commands[verb] = commands.get(verb, 0) + n
        seen = ", ".join(f"{verb} {n}" for verb, n in commands.items()) or "none"
        faults = self.faults_fired
        lines = [
            f"server {self.host}:{self.port}: {len(sessions)} sessions, "
            f"{len(self.messages)} messages, {sum(commands.values())} commands, "
            f"{len(faults)} faults fired",
            f"commands received: {seen}",
        ]
        lines += fired_by_name(faults)
        note = carried_note(s.number for s in self.carried_over)
        if note:
            lines.append(note)
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
        lines += [self.summary(), f"(opt out with {OPT_OUT})"]
        return "\n".join(lines)


def _messages(count: int) -> Callable[[Ledger], bool]:
    return lambda ledger: len(ledger.messages) >= count


def _faults(count: int) -> Callable[[Ledger], bool]:
    return lambda ledger: len(ledger.faults) >= count


def _refuse_on_a_running_loop(name: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return  # no loop here: blocking stops nobody
    raise RuntimeError(
        f"fake_ses.{name}() blocks its thread, and this thread runs an event loop: a client on "
        f"that loop could not send while it waits. Use `await fake_ses.{name}_async(...)`."
    )
