"""The heatmap measures each case against its scenario's best possible, not against 100%."""

from __future__ import annotations

import re
from pathlib import Path

from harness.reports.html import best_possible_score, render_html
from harness.reports.schema import validate_results
from harness.runner.matrix import run_matrix
from harness.runner.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def test_the_best_possible_score_is_read_from_the_contract() -> None:
    quota = {"contract": ["delivered_once == 400", "duplicated == 0"]}
    assert best_possible_score(quota, 600) == 400 / 600
    assert best_possible_score({"contract": ["delivered_once_score >= 0.9"]}, 10) == 0.9
    assert best_possible_score({"contract": ["silently_lost == 0"]}, 10) == 1.0
    assert best_possible_score({}, 10) == 1.0


def test_daily_quotas_best_possible_is_coloured_best_and_says_so() -> None:
    scenario = load_scenario(SCENARIOS / "daily-quota.toml")
    results = run_matrix([scenario], ["robust", "naive"])
    validate_results(results)
    page = render_html(results)

    cells = {
        strategy: next(
            c for c in re.findall(r"<td class='cell .*?</td>", page) if f"x {strategy}:" in c
        )
        for strategy in ("robust", "naive")
    }
    # robust: 400 of 600, the most the quota lets anyone deliver: the best band, and a star.
    robust = cells["robust"]
    assert robust.startswith("<td class='cell s5 pass'>")
    assert "66.7%" in robust and "★ best possible" in robust
    assert "the best possible here is 66.7%, and it reached it" in robust
    # naive stops at the first refusal: below the best, and no star.
    assert not cells["naive"].startswith("<td class='cell s5") and "★" not in cells["naive"]
