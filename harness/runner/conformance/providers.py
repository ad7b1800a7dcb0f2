"""The second conformance table: which library survives which provider's limits.

The same runs as the first table (`rows.run_rows`), on one scenario a provider, shown the other
way round: a row a library, a column a provider, and in each cell a word for how the library
fared and the counts behind it. A cell is one of

- **survives**: every message delivered once, or refused by the provider and reported failed;
- **honest**: some mail not delivered, but the application was told (given up, never sent);
- **loses mail**, **duplicates**, **misreports**, **uncertain**: the counts that make it so,
  and, under the table, the sentence read from that run's ledger (the first refusal, what the
  client did next, what it reported), which is the evidence.

SES's own API clients are left out: they never speak SMTP to a provider.

>>> score = {"messages": 10, "delivered_once": 7, "given_up": 0, "abandoned": 3}
>>> verdict(score)
'honest'
>>> cell(score)
'honest: 7/10 (3 never sent)'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.runner.conformance.rows import Row
from harness.runner.vocabulary import PROBLEMS, counted

#: One scenario a provider, in the table's column order: (scenario, column heading).
PROVIDER_SCENARIOS: tuple[tuple[str, str], ...] = (
    ("session-cap", "Amazon SES: 350 a session"),
    ("microsoft365-minute-rate", "Microsoft 365: 30 a minute, delayed"),
    ("microsoft365-connections", "Microsoft 365: 3 connections a mailbox"),
    ("gmail-daily-limit", "Gmail: 500 a day"),
    ("sendgrid-connection-cap", "SendGrid: 5,000 a connection"),
)
START = "<!-- conformance-providers:start -->"
END = "<!-- conformance-providers:end -->"

#: The problems that make a cell bad, worst first, and the word each gives it.
_BAD = (
    ("silently_lost", "loses mail"),
    ("duplicated", "duplicates"),
    ("misreported", "misreports"),
    ("uncertain", "uncertain"),
)


def verdict(score: Mapping[str, Any]) -> str:
    """One word for how a library fared on one provider's limits (see the module's list)."""
    for metric, word in _BAD:
        if score.get(metric):
            return word
    if score.get("given_up") or score.get("abandoned"):
        return "honest"
    return "survives"


def cell(score: Mapping[str, Any]) -> str:
    """The verdict and the counts behind it: ``survives: 500/600 (100 refused, reported)``."""
    shown = f"{verdict(score)}: {score['delivered_once']}/{score['messages']}"
    problems = counted(score, PROBLEMS)
    refused = score.get("rejected_reported", 0)
    notes = [problems] if problems else []
    notes += [f"{refused} refused, reported"] if refused else []
    return f"{shown} ({'; '.join(notes)})" if notes else shown


def render_by_provider(rows: Sequence[Row], headings: Mapping[str, str]) -> str:
    """The table (rows: libraries in the order they ran; columns: the `headings` of the
    scenarios that ran, in their order) and the evidence for every cell that is not
    survives or honest."""
    scenarios = [name for name in headings if any(row.scenario == name for row in rows)]
    clients = list(dict.fromkeys(row.client for row in rows))
    by_cell = {(row.client, row.scenario): row for row in rows}
    lines = [
        "| library | " + " | ".join(headings[name] for name in scenarios) + " |",
        "|---|" + "---|" * len(scenarios),
    ]
    for client in clients:
        cells = []
        for name in scenarios:
            row = by_cell.get((client, name))
            if row is None:
                cells.append("-")
                continue
            text = cell(row.score)
            word = verdict(row.score)
            if word not in ("survives", "honest"):
                text = f"**{word}**{text[len(word) :]}"
            cells.append(text + (" †" if row.stretched else ""))
        lines.append(f"| {client} | " + " | ".join(cells) + " |")
    evidence = [
        f"- **{row.client}**, {row.scenario}: {row.story}"
        for row in rows
        if verdict(row.score) not in ("survives", "honest")
    ]
    lines += [
        "",
        "survives: every message delivered once, or refused by the provider and reported "
        "failed; honest: some mail not delivered, and the application was told; loses mail, "
        "duplicates, misreports, uncertain: what the ledger shows against what the library "
        "reported. The scenarios, their limits and the evidence for each provider are in "
        "[providers.md](providers.md) and `scenarios/providers/`.",
    ]
    if evidence:
        lines += ["", "What the ledger shows where a library misbehaves:", "", *evidence]
    if any(row.stretched for row in rows):
        lines += [
            "",
            "† These counts depend on time (a decision of the clock came within its "
            "resolution of going the other way); another run may count otherwise.",
        ]
    return "\n".join(lines)
