"""One error type for every invalid plan, profile or scenario, wherever it came from."""

from __future__ import annotations

from collections.abc import Iterable


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
        self.key = key
        self.problem = problem
        self.allowed = (
            allowed if isinstance(allowed, str) or allowed is None else ", ".join(allowed)
        )
        self.source = source
        super().__init__(str(self))

    def within(self, source: str | None = None, prefix: str | None = None) -> PlanError:
        """The same error, placed in a file (or API path) and/or under a parent key."""
        key = f"{prefix}.{self.key}" if prefix and self.key else (prefix or self.key)
        return PlanError(key, self.problem, allowed=self.allowed, source=source or self.source)

    def __str__(self) -> str:
        text = f"key '{self.key}': {self.problem}" if self.key else self.problem
        if self.allowed:
            text += f" (allowed: {self.allowed})"
        return f"{self.source}: {text}" if self.source else text
