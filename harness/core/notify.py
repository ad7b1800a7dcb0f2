"""Faults on SNS's posts of SES's events: which NOTIFY rules fire for a post, and what that
makes of a notification's way to its subscriber. Pure: the deliverer (`harness.server.events`)
asks and carries the answer out; the events feed works its arrivals out from the same rules.

A rule at stage NOTIFY is asked at every attempt SNS makes to post a notification (the first
try and each retry). ``delay`` holds the post back `delay_s` on the server's clock (several
delays add up); ``drop`` makes the attempt fail as if the endpoint were unreachable, so SNS
retries per its delivery policy; ``duplicate`` posts it once more, with the same MessageId.
Without `kind`, a rule matches the Notifications; ``kind = "SubscriptionConfirmation"``
reaches the confirmation. Chance depends on the seed, the rule, the SNS MessageId and the
attempt, never on timing; `nth`/`first`/`every`/`after` count the posts the rule matches in
the order they are asked about.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

from harness.core.plan import Delay, Drop, Duplicate, Matcher, Rule, Stage
from harness.core.rules import chance

CONFIRMATION = "SubscriptionConfirmation"


@dataclass(frozen=True)
class Post:
    """What the core knows about one attempt to post a notification."""

    kind: str  # the SES event's kind, or "SubscriptionConfirmation"
    message_id: str  # SNS's MessageId: the same on every attempt and every copy
    attempt: int = 1  # 1 for SNS's first try
    age_s: float = 0.0  # since SES published the event, on the server's clock
    sender: str | None = None
    recipients: tuple[str, ...] = ()


@dataclass(frozen=True)
class PostFaults:
    """What the rules make of one attempt: held back `delay_s`, dropped, or posted `copies`
    times; `fired` names the rules that fired, in plan order, and `rules` gives their indexes
    in the plan's faults."""

    delay_s: float = 0.0
    drop: bool = False
    copies: int = 1
    fired: tuple[str, ...] = ()
    rules: tuple[int, ...] = ()


def _matches(match: Matcher, post: Post) -> bool:
    if match.kind is None and post.kind == CONFIRMATION:
        return False  # a rule without a kind is about the events
    if match.kind is not None and match.kind != post.kind:
        return False
    if match.sender is not None and not (
        post.sender is not None and fnmatch.fnmatch(post.sender.lower(), match.sender.lower())
    ):
        return False
    if match.recipient is not None and not any(
        fnmatch.fnmatch(r.lower(), match.recipient.lower()) for r in post.recipients
    ):
        return False
    if match.attempt is not None and post.attempt != match.attempt:
        return False
    if match.attempts is not None and post.attempt > match.attempts:
        return False
    return match.greylist_s is None or post.age_s < match.greylist_s


def _counted(match: Matcher, n: int) -> bool:
    return (
        (match.nth is None or n == match.nth)
        and (match.first is None or n <= match.first)
        and (match.every is None or n % match.every == 0)
        and (match.after is None or n > match.after)
    )


class NotifyBook:
    """A plan's NOTIFY rules with their occurrence counters (one book per subscriber)."""

    def __init__(self, rules: Sequence[Rule], seed: int) -> None:
        self.rules = [(i, r) for i, r in enumerate(rules) if r.match.stage is Stage.NOTIFY]
        self.seed = seed
        self._seen = [0] * len(self.rules)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def decide(self, post: Post) -> PostFaults:
        """The faults on `post`: delays add up; a drop wins over duplicates."""
        delay_s, drop, copies, fired, indexes = 0.0, False, 1, [], []
        for slot, (index, rule) in enumerate(self.rules):
            match = rule.match
            if not _matches(match, post):
                continue
            self._seen[slot] += 1
            if not _counted(match, self._seen[slot]):
                continue
            where = ("notify", index, post.message_id, post.attempt)
            if match.probability is not None and chance(self.seed, *where) >= match.probability:
                continue
            fired.append(rule.label)
            indexes.append(index)
            if isinstance(rule.action, Delay):
                delay_s += rule.action.delay_s
            elif isinstance(rule.action, Drop):
                drop = True
            elif isinstance(rule.action, Duplicate):
                copies += 1
        return PostFaults(delay_s, drop, 1 if drop else copies, tuple(fired), tuple(indexes))


@dataclass(frozen=True)
class Arrival:
    """Where a notification's way ends: `at` (None: SNS gave up after `attempts`), `copies`."""

    at: float | None
    copies: int
    attempts: int
    fired: tuple[str, ...]


def arrival(
    book: NotifyBook, delays_s: Sequence[float], published_at: float, post: Post
) -> Arrival:
    """Follow one notification through its attempts with an endpoint that always answers: the
    rules' drops fail attempts, retried after `delays_s` (the policy's, one per retry)."""
    at, fired = published_at, []
    for attempt in range(1, len(delays_s) + 2):
        faults = book.decide(dataclasses.replace(post, attempt=attempt, age_s=at - published_at))
        fired.extend(faults.fired)
        at += faults.delay_s
        if not faults.drop:
            return Arrival(at, faults.copies, attempt, tuple(fired))
        if attempt <= len(delays_s):
            at += delays_s[attempt - 1]
    return Arrival(None, 0, len(delays_s) + 1, tuple(fired))


def feed_rules(delay_s: float, duplicates: float) -> tuple[Rule, ...]:
    """A scenario's ``events = { delay_s, duplicates }`` as NOTIFY rules (what it is sugar for)."""
    rules = []
    if delay_s:
        rules.append(Rule(Matcher(Stage.NOTIFY), Delay(delay_s), "events.delay_s"))
    if duplicates:
        match = Matcher(Stage.NOTIFY, probability=duplicates)
        rules.append(Rule(match, Duplicate(), "events.duplicates"))
    return tuple(rules)
