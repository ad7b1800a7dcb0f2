"""The words for what happened to a message, one vocabulary for every output (SPEC §9).

The terminal table, summary.md, report.html, junit.xml, the failure text and the conformance
table all name the scorer's classes (:class:`harness.runner.scoring.MessageClass`) this way:

| class               | words              | meaning                                            |
|---------------------|--------------------|----------------------------------------------------|
| `delivered_once`    | delivered once     | one copy on the server, reported sent              |
| `rejected_reported` | rejected, reported | refused with a 5xx and reported failed: correct    |
| `uncertain`         | uncertain          | the client said it cannot know (cut after ".")     |
| `silently_lost`     | silently lost      | reported sent, no copy on the server               |
| `given_up`          | given up           | reported failed after transient refusals only      |
| `abandoned`         | never sent         | the client never tried it                          |
| `duplicated`        | duplicated         | 2+ copies on the server                            |
| `misreported`       | misreported        | one copy on the server, reported failed            |

"lost" alone is never used: it read as "silently lost" in one report and as "lost in any way"
in another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from harness.runner.scoring import MessageClass


@dataclass(frozen=True)
class Term:
    """How reports name one class: `words` in headers and lists, `meaning` in legends."""

    cls: MessageClass
    words: str
    meaning: str


TERMS: dict[MessageClass, Term] = {
    t.cls: t
    for t in (
        Term(
            MessageClass.DELIVERED_ONCE, "delivered once", "one copy on the server, reported sent"
        ),
        Term(
            MessageClass.REJECTED_REPORTED,
            "rejected, reported",
            "refused with a 5xx and reported failed (correct)",
        ),
        Term(
            MessageClass.UNCERTAIN,
            "uncertain",
            "the client said it cannot know (its connection died after the final '.')",
        ),
        Term(
            MessageClass.SILENTLY_LOST,
            "silently lost",
            "reported sent, no copy on the server",
        ),
        Term(
            MessageClass.GIVEN_UP,
            "given up",
            "reported failed after transient refusals only",
        ),
        Term(MessageClass.ABANDONED, "never sent", "the client never tried it"),
        Term(MessageClass.DUPLICATED, "duplicated", "2+ copies on the server"),
        Term(
            MessageClass.MISREPORTED,
            "misreported",
            "one copy on the server, reported failed or not at all",
        ),
    )
}

#: The classes that are not a good outcome, worst first: the order of every list of them.
PROBLEMS: tuple[MessageClass, ...] = (
    MessageClass.SILENTLY_LOST,
    MessageClass.DUPLICATED,
    MessageClass.MISREPORTED,
    MessageClass.UNCERTAIN,
    MessageClass.GIVEN_UP,
    MessageClass.ABANDONED,
)


def words(cls: str | MessageClass) -> str:
    """The words for a class: ``words("abandoned")`` is ``"never sent"``."""
    return TERMS[MessageClass(cls)].words


def counted(counts: Mapping[str, int], classes: tuple[MessageClass, ...] = PROBLEMS) -> str:
    """The non-zero `counts` of `classes` in words, worst first; "" when all are zero.

    >>> counted({"abandoned": 649, "given_up": 1, "silently_lost": 0})
    '1 given up, 649 never sent'
    """
    return ", ".join(
        f"{counts[cls.value]} {words(cls)}" for cls in classes if counts.get(cls.value)
    )


def legend(classes: tuple[MessageClass, ...] = PROBLEMS) -> str:
    """``words: meaning`` for each class, for the line under a table."""
    return "; ".join(f"{TERMS[cls].words}: {TERMS[cls].meaning}" for cls in classes)
