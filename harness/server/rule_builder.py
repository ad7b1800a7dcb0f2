"""The rules a test arranges on its view of a server: `fake_ses.on(stage, **matcher)` and its
fluent when (`times`, `nth`) and what (`reply`, `drop`, ...), and each arranged rule with the
record of its firings.

>>> def test_greylisting(fake_ses):                                       # doctest: +SKIP
...     grey = fake_ses.on("RCPT", attempts=1).reply(451, "4.7.1 Greylisted, try later")
...     ...
...     assert grey.call_count == 2
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.base.ledger import FaultRecord, Ledger
from harness.core.plan import Rule
from harness.server.verdicts import rule_spec


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

    def __init__(
        self,
        stage: str,
        matcher: dict[str, Any],
        *,
        pending: list[RuleBuilder],
        arrange: Callable[[Rule], ArrangedRule],
    ) -> None:
        """Until its action is given the builder waits in `pending` (strictness reports it
        there); the action hands the finished rule to `arrange` (the view's)."""
        self._pending = pending
        self._arrange = arrange
        self._data: dict[str, Any] = {**matcher, "stage": stage}
        pending.append(self)

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

    def bounce(
        self, bounce_type: str = "Permanent", subtype: str = "General", **more: Any
    ) -> ArrangedRule:
        """At EOM or API: accept, then SES publishes a Bounce (``bounce_type``/``subtype``;
        also `status`, `diagnostic`, `after_s`); a Permanent one puts the address on the
        account's suppression list."""
        fields = {"bounce_type": bounce_type, "bounce_subtype": subtype, **more}
        return self._done({"action": "bounce", **fields})

    def complain(self, feedback_type: str = "abuse", **more: Any) -> ArrangedRule:
        """At EOM or API: accept, deliver, then SES publishes a Complaint (also `after_s`)."""
        return self._done({"action": "complain", "feedback_type": feedback_type, **more})

    def reject_virus(self) -> ArrangedRule:
        """At EOM or API: accept, then SES publishes a Reject (a virus) and delivers nothing."""
        return self._done({"action": "reject_virus"})

    def delivery_delay(
        self, delay_s: float = 600.0, then: str = "delivery", **more: Any
    ) -> ArrangedRule:
        """At EOM or API: accept; SES publishes a DeliveryDelay, then after `delay_s` a
        Delivery or (`then="bounce"`) a Transient Bounce (also `delay_type`)."""
        fields = {"delay_s": delay_s, "then": then, **more}
        return self._done({"action": "delivery_delay", **fields})

    def duplicate(self) -> ArrangedRule:
        """At NOTIFY: SNS posts the notification twice, with the same MessageId."""
        return self._done({"action": "duplicate"})

    def _done(self, action: dict[str, Any]) -> ArrangedRule:
        self._pending.remove(self)  # given an action, even one the rule then refuses
        return self._arrange(Rule.from_dict({**self._data, **action}))

    def __repr__(self) -> str:
        when = ", ".join(f"{k}={v!r}" for k, v in self._data.items() if k != "stage")
        return f"on({self._data['stage']!r}{', ' if when else ''}{when})"
