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


FAILING = """
name = "tiny-cap"
description = "A session cap of 5 over 12 messages."
best_possible = "12 of 12 delivered once: reconnect at the 421 and resend."

[workload]
count = 12
seed = 2

[plan]
profile = "ses"
seed = 2
limits = { session_limit = 5 }

[expect.naive]
delivered_once = 12
"""


def test_a_failing_scenario_item_shows_what_a_correct_client_does(pytester) -> None:
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "tiny.toml").write_text(FAILING)

    result = pytester.runpytest("scenarios")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*delivered_once == 12 (actual 5)*",
            "*what a correct client does here:",
            "*12 of 12 delivered once: reconnect at the 421 and resend.",
            "*reproduce: ses-harness run *tiny.toml --strategy naive*",
        ]
    )
