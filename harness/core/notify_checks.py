"""What a fault rule at stage NOTIFY (an SNS post of an event) may match and do, checked where
the plan's rules are built (`harness.core.plan`), with the same one-line errors."""

from __future__ import annotations

from harness.core.errors import PlanError

#: What SNS posts, by the `kind` a NOTIFY rule may match: SES's event kinds, and SNS's own.
KINDS = (
    "Send",
    "Reject",
    "Delivery",
    "DeliveryDelay",
    "Bounce",
    "Complaint",
    "SubscriptionConfirmation",
)
#: What a NOTIFY rule may do to a post (`harness.core.notify` carries them out).
ACTIONS = ("delay", "drop", "duplicate")


def check_matcher(at_notify: bool, kind: str | None, session: int | None) -> None:
    """`kind` only at NOTIFY and one of `KINDS`; no SMTP `session` there."""
    if kind is not None and not at_notify:
        raise PlanError("kind", "only SNS posts have an event kind", allowed="stage = NOTIFY")
    if kind is not None and kind not in KINDS:
        raise PlanError("kind", f"{kind!r} is not an event kind", allowed=KINDS)
    if at_notify and session is not None:
        raise PlanError(
            "session",
            "an SNS post belongs to no SMTP session",
            allowed="kind, sender, recipient, attempt, attempts, greylist_s, occurrences",
        )


def check_action(at_notify: bool, action: str) -> None:
    """At NOTIFY only `ACTIONS`; `duplicate` only there."""
    if at_notify and action not in ACTIONS:
        raise PlanError("action", f"{action!r} does not apply to an SNS post", allowed=ACTIONS)
    if not at_notify and action == "duplicate":
        raise PlanError("action", "only SNS posts are duplicated", allowed="stage = NOTIFY")
