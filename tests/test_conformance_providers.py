"""The conformance table by provider: which library survives which provider's limits, each bad
cell with the ledger's sentence as its evidence, written into its own section of a page."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.cli.main import main as cli_main
from harness.runner.conformance import END, START, Row, render_by_provider
from harness.runner.conformance import providers as by_provider
from harness.runner.conformance.providers import cell, verdict

CLIENTS = Path(__file__).resolve().parents[1] / "clients"
NODEMAILER = CLIENTS / "nodemailer"


def score(once: int, total: int, **problems: int) -> dict:
    return {"messages": total, "delivered_once": once, **problems}


@pytest.mark.parametrize(
    ("counts", "word"),
    [
        ({}, "survives"),
        ({"rejected_reported": 100}, "survives"),
        ({"abandoned": 3}, "honest"),
        ({"given_up": 1, "abandoned": 2}, "honest"),
        ({"silently_lost": 1, "duplicated": 2}, "loses mail"),
        ({"duplicated": 2, "misreported": 1}, "duplicates"),
        ({"misreported": 1, "given_up": 4}, "misreports"),
        ({"uncertain": 1}, "uncertain"),
    ],
)
def test_each_cell_gets_the_word_of_its_worst_problem(counts, word):
    assert verdict(score(10, 10, **counts)) == word


def test_a_cell_shows_the_counts_behind_its_word():
    assert (
        cell(score(500, 600, rejected_reported=100)) == "survives: 500/600 (100 refused, reported)"
    )
    assert cell(score(350, 1000, silently_lost=648, given_up=2)) == (
        "loses mail: 350/1000 (648 silently lost, 2 given up)"
    )


def test_the_table_puts_providers_in_columns_and_the_ledgers_sentence_under_bad_cells():
    headings = dict(by_provider.PROVIDER_SCENARIOS)
    rows = [
        Row("lib-a", "session-cap", score(350, 1000, silently_lost=650), "Lost after the 421."),
        Row("lib-a", "gmail-daily-limit", score(500, 600, rejected_reported=100), "Fine."),
        Row(
            "lib-b",
            "gmail-daily-limit",
            score(500, 600, abandoned=100),
            "Stopped.",
            8.0,
            None,
            True,
        ),
    ]
    table = render_by_provider(rows, headings).splitlines()
    assert table[0] == "| library | Amazon SES: 350 a session | Gmail: 500 a day |"
    assert table[2] == (
        "| lib-a | **loses mail**: 350/1000 (650 silently lost) "
        "| survives: 500/600 (100 refused, reported) |"
    )
    assert table[3] == "| lib-b | - | honest: 500/600 (100 never sent) † |"
    assert "- **lib-a**, session-cap: Lost after the 421." in table
    assert not any("Stopped." in line for line in table)  # honest cells need no evidence
    assert any(line.startswith("† These counts depend on time") for line in table)


@pytest.mark.skipif(
    shutil.which("node") is None or not (NODEMAILER / "node_modules/nodemailer").is_dir(),
    reason="needs node and nodemailer installed: (cd clients/nodemailer && npm ci)",
)
def test_nodemailers_pool_of_five_meets_microsoft_365s_three_connections_on_the_wire(tmp_path):
    page = tmp_path / "conformance.md"
    page.write_text(f"# Conformance\n\n{START}\nthe first table\n{END}\n\nBy hand.\n")

    status = cli_main(
        [
            "conformance",
            "--providers",
            "--client",
            "smtplib",
            "--client",
            "nodemailer, pooled",
            "--scenario",
            "microsoft365-connections",
            "--clients-dir",
            str(CLIENTS),
            "--docs",
            str(page),
        ]
    )

    assert status == 0
    text = page.read_text()
    assert text.startswith(f"# Conformance\n\n{START}\nthe first table\n{END}\n\nBy hand.\n")
    section = text[text.index(by_provider.START) : text.index(by_provider.END)]
    assert "| library | Microsoft 365: 3 connections a mailbox |" in section
    assert "| smtplib | survives: 150/150 |" in section  # one connection at a time
    pooled = next(line for line in section.splitlines() if line.startswith("| nodemailer, pooled"))
    # Five connections of one mailbox: the fourth and fifth get 432 at the end of data, and
    # nodemailer reports those messages failed; none lost or sent twice.
    assert "survives" not in pooled and "given up" in pooled, pooled
    assert "lost" not in pooled and "duplicat" not in pooled, pooled
