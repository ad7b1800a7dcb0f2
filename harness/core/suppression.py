"""The account-level suppression list, as SES keeps it: which addresses SES will not send to,
since when and why; the account's reasons for adding addresses itself. No I/O: every call
says what time it is on the server's clock.

Evidence (AWS SES Developer Guide, "Using the Amazon SES account-level suppression list",
DG-SUPPRESSION; the sesv2 model, botocore data/sesv2):

- accounts that started after November 25, 2019 add addresses for both bounces and
  complaints by default; ``PutAccountSuppressionAttributes`` changes that. Documented.
- a send to a listed address is accepted and not sent; it counts against the daily quota
  (so the engine charges it as any send) and not toward the bounce rate. Documented.
- addresses stay until ``DeleteSuppressedDestination`` removes them. Documented.
- an address joins for a hard bounce (BOUNCE) or a complaint (COMPLAINT): the model's
  SuppressionListReason. Documented. We add it when SES publishes that Bounce or Complaint
  (its event's time): inferred, SES says only "results in".
- the mailbox simulator's addresses never join (DG, "Using the mailbox simulator"). Documented.

Addresses are compared without regard to case (inferred: SES's own answers show them as sent).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from harness.core import simulator
from harness.core.outcomes import ON_ACCOUNT_LIST, Bounce, Complain, Fate

REASONS = ("BOUNCE", "COMPLAINT")
#: New accounts' reasons (DG-SUPPRESSION: documented).
DEFAULT_REASONS = REASONS


@dataclass(frozen=True)
class SuppressedDestination:
    """One address on the list: `reason`, `at` (its LastUpdateTime, server clock), and for an
    address SES added itself, the message and feedback ids of the event that added it."""

    address: str
    reason: str
    at: float
    message_id: str | None = None
    feedback_id: str | None = None

    @property
    def by_event(self) -> bool:
        return self.message_id is not None


class SuppressionList:
    """The list and the account's reasons, over time.

    An address SES adds for an event is known when the message is accepted, with the time the
    event is published; it is on the list from then, if the account's reasons at that time
    include its reason. So what the list holds at any moment follows from the messages and the
    requests, whatever order they were told in.

    >>> book = SuppressionList()
    >>> _ = book.join("a@example.com", "BOUNCE", at=5.0, message_id="m1")
    >>> book.get("a@example.com", now=4.0) is None, book.get("A@example.com", now=5.0).reason
    (True, 'BOUNCE')
    """

    def __init__(self, reasons: tuple[str, ...] = DEFAULT_REASONS) -> None:
        self._reason_times: list[float] = [-math.inf]
        self._reason_sets: list[tuple[str, ...]] = [tuple(reasons)]
        self._entries: dict[str, list[SuppressedDestination]] = {}
        self._deleted: dict[str, float] = {}

    # --- the account's settings -----------------------------------------------------------

    @property
    def reasons(self) -> tuple[str, ...]:
        """The account's SuppressedReasons now (the latest set)."""
        return self._reason_sets[-1]

    def set_reasons(self, reasons: tuple[str, ...], *, now: float) -> None:
        """PutAccountSuppressionAttributes: from `now` on, SES adds addresses for these."""
        self._reason_times.append(now)
        self._reason_sets.append(tuple(r for r in REASONS if r in reasons))

    def _reasons_at(self, at: float) -> tuple[str, ...]:
        """The reasons in force for an event published at `at`: a change made at the same
        moment comes after it (the event was already out)."""
        return self._reason_sets[bisect.bisect_left(self._reason_times, at) - 1]

    # --- entries --------------------------------------------------------------------------

    def put(self, address: str, reason: str, *, now: float) -> SuppressedDestination:
        """PutSuppressedDestination: on the list from `now`, for `reason`."""
        return self._add(SuppressedDestination(address, reason, now))

    def join(
        self,
        address: str,
        reason: str,
        *,
        at: float,
        message_id: str,
        feedback_id: str | None = None,
    ) -> SuppressedDestination | None:
        """SES adds `address` for an event it publishes at `at` (None: a simulator address)."""
        if simulator.scenario(address) is not None:
            return None
        return self._add(SuppressedDestination(address, reason, at, message_id, feedback_id))

    def delete(self, address: str, *, now: float) -> bool:
        """DeleteSuppressedDestination: off the list from `now` (until an event adds it again);
        False when it is not on the list."""
        if self.get(address, now=now) is None:
            return False
        self._deleted[address.lower()] = now
        return True

    def get(self, address: str, *, now: float) -> SuppressedDestination | None:
        """The address's entry at `now`, or None when it is not on the list."""
        key = address.lower()
        deleted = self._deleted.get(key, -math.inf)
        for entry in reversed(self._entries.get(key, ())):
            if entry.at > now or entry.at <= deleted:
                continue
            if entry.by_event and entry.reason not in self._reasons_at(entry.at):
                continue
            return entry
        return None

    def entries(self, *, now: float) -> list[SuppressedDestination]:
        """Every address on the list at `now`, oldest update first."""
        found = (self.get(key, now=now) for key in list(self._entries))
        return sorted((e for e in found if e is not None), key=lambda e: (e.at, e.address))

    def clear(self) -> None:
        """Forget every entry (a reset); the account's reasons stay."""
        self._entries.clear()
        self._deleted.clear()

    def _add(self, entry: SuppressedDestination) -> SuppressedDestination:
        history = self._entries.setdefault(entry.address.lower(), [])
        history.append(entry)
        history.sort(key=lambda e: e.at)
        return entry

    # --- sends ------------------------------------------------------------------------------

    def fates(
        self, rules: tuple[Fate, ...], recipients: tuple[str, ...], *, now: float
    ) -> tuple[Fate, ...]:
        """What becomes of a message accepted at `now` for `recipients`: its listed recipients'
        (before any rule's), then what the rules decided. An address listed for a bounce gets a
        Permanent/OnAccountSuppressionList Bounce at once (DG-EVENTS "Bounce types":
        documented); one listed for a complaint a Complaint of subtype OnAccountSuppressionList
        at once (DG-EVENTS "Complaint subtypes": documented; that a listed address gets it,
        user-reported: cds-snc/notification-api#1774, ope-tech/laravel-ses#11)."""
        listed: dict[str, list[str]] = {}
        for rcpt in recipients:
            entry = None if simulator.scenario(rcpt) else self.get(rcpt, now=now)
            if entry is not None:
                listed.setdefault(entry.reason, []).append(rcpt)
        out = []
        if "BOUNCE" in listed:
            action = Bounce("Permanent", ON_ACCOUNT_LIST, after_s=0.0)
            out.append(Fate(action, tuple(listed["BOUNCE"]), "suppression"))
        if "COMPLAINT" in listed:
            complaint = Complain(after_s=0.0, complaint_subtype=ON_ACCOUNT_LIST)
            out.append(Fate(complaint, tuple(listed["COMPLAINT"]), "suppression"))
        return (*out, *rules)
