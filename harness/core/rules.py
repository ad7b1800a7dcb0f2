"""Which fault rules fire for a command: occurrence counting and seeded chance, nothing else."""

from __future__ import annotations

import dataclasses
import fnmatch
import random
from collections.abc import Sequence
from dataclasses import dataclass

from harness.core.decision import Answer, Decision, Fired, Outcome
from harness.core.outcomes import OUTCOMES, Fate
from harness.core.plan import Delay, Drop, DropAfterAccept, Matcher, Reply, Rule, Stage, Stall


@dataclass(frozen=True)
class Command:
    """What the core knows about one command when deciding."""

    stage: Stage
    session: int  # 1-based, in order of connection
    number: int  # 1-based command number within the session
    sender: str | None = None
    recipients: tuple[str, ...] = ()  # at RCPT: the one being added; later: all so far
    attempt: int | None = None  # of this logical message, at RCPT and EOM
    age_s: float | None = None  # since this logical message's first attempt (server clock)
    tenant: str | None = None  # the SES tenant the message names (EOM, API)


def chance(seed: int, *where: object) -> float:
    """A number in [0, 1) that depends only on the seed and where it is asked."""
    return random.Random(":".join(map(str, (seed, *where)))).random()


def _filters_pass(match: Matcher, command: Command) -> bool:
    if match.stage is not command.stage:
        return False
    if match.session is not None and match.session != command.session:
        return False
    if match.sender is not None and not (
        command.sender is not None and fnmatch.fnmatch(command.sender.lower(), match.sender.lower())
    ):
        return False
    if match.recipient is not None and not any(
        fnmatch.fnmatch(r.lower(), match.recipient.lower()) for r in command.recipients
    ):
        return False
    if match.tenant is not None and not (
        command.tenant is not None and fnmatch.fnmatch(command.tenant.lower(), match.tenant.lower())
    ):
        return False
    if match.attempt is not None and command.attempt != match.attempt:
        return False
    if match.greylist_s is not None and not (
        command.age_s is not None and command.age_s < match.greylist_s
    ):
        return False
    return not (
        match.attempts is not None and (command.attempt is None or command.attempt > match.attempts)
    )


def _occurrence_passes(match: Matcher, n: int) -> bool:
    return (
        (match.nth is None or n == match.nth)
        and (match.first is None or n <= match.first)
        and (match.every is None or n % match.every == 0)
        and (match.after is None or n > match.after)
    )


class RuleBook:
    """The rules of a plan with their occurrence counters.

    Every rule counts the commands that pass its filters, whether or not an earlier rule fired,
    so each rule's `nth` means the same thing alone or among others.
    """

    def __init__(self, rules: Sequence[Rule], seed: int) -> None:
        self.rules = tuple(rules)
        self.seed = seed
        self._seen = [0] * len(self.rules)
        #: The last command's closest greylist check: (seconds from its window's end, what
        #: decided), None when no greylist rule looked at it (see :mod:`harness.core.margins`).
        self.greylist_margin: tuple[float, str] | None = None

    def firing(self, command: Command) -> list[int]:
        """Indexes of the rules that fire for `command`, in plan order."""
        fired = []
        self.greylist_margin = None
        for index, rule in enumerate(self.rules):
            match = rule.match
            if match.greylist_s is not None and command.age_s is not None:
                self._note_greylist(index, match, command)
            if not _filters_pass(match, command):
                continue
            self._seen[index] += 1
            if not _occurrence_passes(match, self._seen[index]):
                continue
            if match.probability is not None and (
                chance(self.seed, "rule", index, command.session, command.number)
                >= match.probability
            ):
                continue
            fired.append(index)
        return fired

    def _note_greylist(self, index: int, match: Matcher, command: Command) -> None:
        assert match.greylist_s is not None and command.age_s is not None
        if not _filters_pass(dataclasses.replace(match, greylist_s=None), command):
            return  # the window does not decide this command
        margin_s = abs(command.age_s - match.greylist_s)
        if self.greylist_margin is None or margin_s < self.greylist_margin[0]:
            self.greylist_margin = (margin_s, f"rule:{self.rules[index].label}")

    def seen(self, index: int) -> int:
        """How many commands rule `index` has matched (before occurrence and chance)."""
        return self._seen[index]


def decide(book: RuleBook, command: Command) -> Decision | None:
    """What the rules of `book` make of `command`, or None when none fires.

    Delays from every firing rule add up; the first other firing rule decides."""
    indexes = book.firing(command)
    if not indexes:
        return None
    delay_s = 0.0
    fired: list[Fired] = []
    fates: list[Fate] = []
    for index in indexes:
        rule = book.rules[index]
        action = rule.action
        if isinstance(action, (Delay, *OUTCOMES)):
            fired.append(Fired("rule", rule.label, action.kind, rule_index=index))
            if isinstance(action, Delay):
                delay_s += action.delay_s
            else:  # the message goes on to be accepted; this is what becomes of it then
                fates.append(Fate(action, _recipients(rule.match, command), f"rule:{rule.label}"))
            continue
        if isinstance(action, Reply):
            close = action.close if action.close is not None else action.code == 421
            fired.append(Fired("rule", rule.label, action.kind, action.line, index))
            answer = Answer(action.code, action.text)
            return Decision(Outcome.REPLY, answer, close, delay_s, fired=tuple(fired))
        fired.append(Fired("rule", rule.label, action.kind, rule_index=index))
        if isinstance(action, Drop):
            return Decision(Outcome.DROP, close=True, delay_s=delay_s, fired=tuple(fired))
        if isinstance(action, DropAfterAccept):
            after = Outcome.DROP_AFTER_ACCEPT
            return Decision(after, None, True, delay_s, fired=tuple(fired), fates=tuple(fates))
        assert isinstance(action, Stall)
        return Decision(Outcome.STALL, delay_s=delay_s, stall_s=action.stall_s, fired=tuple(fired))
    return Decision(Outcome.PROCEED, delay_s=delay_s, fired=tuple(fired), fates=tuple(fates))


def _recipients(match: Matcher, command: Command) -> tuple[str, ...]:
    """The recipients a rule's outcome is for: those its `recipient` glob names, else all."""
    if match.recipient is None:
        return command.recipients
    glob = match.recipient.lower()
    return tuple(r for r in command.recipients if fnmatch.fnmatch(r.lower(), glob))
