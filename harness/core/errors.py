"""One error type for every invalid plan, profile or scenario, wherever it came from."""

from __future__ import annotations

from collections.abc import Iterable

#: How much of a key and of a problem an error shows: a value of 100,000 characters pasted into
#: a plan is named by its start, its end and its length, so the error stays one short line.
KEY_CHARS = 80
PROBLEM_CHARS = 240


class PlanError(ValueError):
    """Invalid input, naming where it came from, the key, and what is allowed.

    >>> str(PlanError("action", "'bounce' is not allowed", allowed=["reply", "drop"]))
    "key 'action': 'bounce' is not allowed (allowed: reply, drop)"
    """

    def __init__(
        self,
        key: str,
        problem: str,
        *,
        allowed: Iterable[str] | str | None = None,
        source: str | None = None,
    ) -> None:
        self.key = _bounded(str(key), KEY_CHARS)
        self.problem = _bounded(problem, PROBLEM_CHARS)
        self.allowed = (
            allowed if isinstance(allowed, str) or allowed is None else ", ".join(allowed)
        )
        self.source = source
        super().__init__(str(self))

    def within(self, source: str | None = None, prefix: str | None = None) -> PlanError:
        """The same error, placed in a file (or API path) and/or under a parent key."""
        key = f"{prefix}.{self.key}" if prefix and self.key else (prefix or self.key)
        placed = PlanError("", self.problem, allowed=self.allowed, source=source or self.source)
        placed.key = key  # the parents' names in full: only what a user wrote was cut
        placed.args = (str(placed),)
        return placed

    def __str__(self) -> str:
        text = f"key '{self.key}': {self.problem}" if self.key else self.problem
        if self.allowed:
            text += f" (allowed: {self.allowed})"
        return f"{self.source}: {text}" if self.source else text


def _bounded(text: str, most: int) -> str:
    """`text` on one line, cut in the middle to at most `most` characters when it is longer."""
    if "\n" in text or "\r" in text:
        text = " ".join(text.splitlines())
    if len(text) <= most:
        return text
    marker = f"...({len(text):,} characters)..."
    tail = most // 4
    head = max(0, most - tail - len(marker))
    return f"{text[:head]}{marker}{text[-tail:]}"
