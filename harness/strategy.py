"""The strategy interface under its first import path, kept for code written against it.

New code imports these names from `harness` (or `harness.runner.strategy`).
"""

from harness.runner.resolve import resolve_strategy
from harness.runner.strategy import Claim, ClaimStatus, OutgoingMessage, Strategy

__all__ = ["Claim", "ClaimStatus", "OutgoingMessage", "Strategy", "resolve_strategy"]
