"""How near the clock came to changing a decision: the margin of every decision time makes.

A rate, an idle timeout and a greylist decide by the server's clock. For each such decision
the engine notes its margin: the SES seconds by which the command would have had to come
earlier or later to be decided the other way (a token short of the bucket's edge, a command
before its session's idle deadline, a retry past its greylist window). A client in another
process reaches the server when the machine lets it, so a decision whose margin is within the
clock's resolution (what a scheduler's hiccup moves, see :mod:`harness.runner.scale`) may go the
other way in another run: the run's counts then depend on time, and its report says so.

>>> margins = Margins()
>>> margins.note(0.4, "limit:rate_per_s", at_s=1.0)
>>> margins.note(2.0, "limit:idle_timeout_s", at_s=3.0)
>>> margins.closest
CloseCall(margin_s=0.4, decided_by='limit:rate_per_s', at_s=1.0)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CloseCall:
    """The smallest margin seen: how near, what decided, and when (server seconds)."""

    margin_s: float
    decided_by: str
    at_s: float


class Margins:
    """The closest call of a run (None until the clock decides something)."""

    def __init__(self) -> None:
        self.closest: CloseCall | None = None

    def note(self, margin_s: float, decided_by: str, *, at_s: float) -> None:
        if self.closest is None or margin_s < self.closest.margin_s:
            self.closest = CloseCall(max(margin_s, 0.0), decided_by, at_s)
