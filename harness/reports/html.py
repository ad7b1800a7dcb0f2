"""report.html: one self-contained page (inline CSS, JS and SVG, nothing fetched).

The heatmap is a plain HTML table whose cells link to `#case-N`; CSS `:target` shows that case,
so the page works without JavaScript. The inline script only preselects the first failing case
and marks the selected cell. Every string from the data goes through `html.escape`.
"""

from __future__ import annotations

from html import escape
from importlib.resources import files

from harness.reports import digest
from harness.reports.digest import best_possible_score, meets_contract
from harness.reports.timeline import render_timeline
from harness.runner.vocabulary import PROBLEMS, TERMS, words
from harness.runner.vocabulary import legend as class_legend

__all__ = ["best_possible_score", "meets_contract", "render_html"]

IDS_SHOWN = 20  # per class and case; the full list is in results.json

# Delivered-once score bands, best first: (lowest score in the band, css class, legend label).
BANDS = (
    (1.0, "s5", "100%"),
    (0.99, "s4", "99 to 99.9%"),
    (0.95, "s3", "95 to 99%"),
    (0.80, "s2", "80 to 95%"),
    (0.50, "s1", "50 to 80%"),
    (0.0, "s0", "below 50%"),
)


def render_html(results: dict) -> str:
    """The whole report.html text for a validated results dict."""
    assets = files("harness.reports") / "assets"
    css = (assets / "report.css").read_text(encoding="utf-8")
    script = (assets / "report.js").read_text(encoding="utf-8")
    run = results["run"]
    status = "pass" if digest.verdict(results).startswith("PASS") else "fail"
    delivered = "pass" if digest.delivered_all(results) else "short"
    delivery = digest.delivery(results)
    body = [
        "<header>",
        f"<h1>ses-fault-harness <span class='run-id'>{escape(run['id'])}</span></h1>",
        f"<p class='verdict {status}'>{escape(digest.verdict(results))}</p>",
        *([f"<p class='verdict {delivered}'>{escape(delivery)}</p>"] if delivery else []),
        f"<p class='meta'>{escape(_meta(run))}</p>",
        f"<p class='meta'><code>{escape(run['command'])}</code></p>",
        "</header>",
        *_heatmap(results),
        *_ranking(results),
        "<section id='cases'>",
        "<h2>Case timeline</h2>",
        "<p class='hint'>Click a heatmap cell to see its case: one lane per SMTP session (bar from "
        "open to close), a tick per delivery, a cross for a delivery the server stored but never "
        "acknowledged, a triangle per fault (hover for the reply).</p>",
        *(_case(results, index, case) for index, case in enumerate(results["cases"])),
        "</section>",
    ]
    return "\n".join(
        [
            "<!doctype html>",
            "<html lang='en'>",
            "<head>",
            "<meta charset='utf-8'>",
            "<meta name='viewport' content='width=device-width, initial-scale=1'>",
            f"<title>ses-fault-harness report {escape(run['id'])}</title>",
            f"<style>\n{css}</style>",
            "</head>",
            "<body>",
            *body,
            f"<script>\n{script}</script>",
            "</body>",
            "</html>",
            "",
        ]
    )


def _meta(run: dict) -> str:
    seed = "scenario seeds" if run["seed"] is None else f"seed {run['seed']}"
    workers = digest.count(run["workers"], "worker", "workers")
    return (
        f"Started {run['started_at']} · {seed} · {workers} · "
        f"{run['wall_s']:.1f} s wall · {run['virtual_s']:.0f} s virtual · "
        f"harness {run['harness_version']}"
    )


def _band(score: float) -> str:
    return next(css for low, css, _ in BANDS if score >= low)


def _heatmap(results: dict) -> list[str]:
    ranking = digest.rank_strategies(results)
    index_of = {(c["scenario"], c["strategy"]): i for i, c in enumerate(results["cases"])}
    head = "".join(
        f"<th scope='col' title='{escape(s['description'])}'>{escape(s['name'])}</th>"
        for s in results["scenarios"]
    )
    rows = []
    for rank, row in enumerate(ranking, start=1):
        cells = []
        for scenario in results["scenarios"]:
            index = index_of.get((scenario["name"], row.name))
            cells.append(
                "<td class='cell none'>not run</td>"
                if index is None
                else _cell(index, results["cases"][index], scenario)
            )
        rows.append(
            f"<tr><th scope='row'><span class='rank'>{rank}</span> {escape(row.name)}</th>"
            + "".join(cells)
            + "</tr>"
        )
    legend = "".join(
        f"<span class='swatch {css}'></span>{escape(label)} " for _, css, label in BANDS
    )
    legend += "<span class='swatch err'></span>error · ✗ missed an expectation · "
    legend += "bands are relative to each scenario's best possible (★: reached it) · "
    legend += "counts: " + escape(class_legend())
    return [
        "<section id='heatmap'>",
        "<h2>Delivered once: strategies x scenarios</h2>",
        "<table class='heatmap'>",
        f"<thead><tr><th scope='col'>strategy</th>{head}</tr></thead>",
        "<tbody>",
        *rows,
        "</tbody>",
        "</table>",
        f"<p class='legend'>{legend}</p>",
        "</section>",
    ]


def _cell(index: int, case: dict, scenario: dict | None = None) -> str:
    """One heatmap cell, coloured by the score relative to the scenario's best possible."""
    status = digest.case_status(case)
    score = case["score"]
    mark = "" if status == "pass" else "<span class='mark'>✗</span>"
    if score is None:
        title = f"{case['scenario']} x {case['strategy']}: error: {case['error']}"
        inner = "<span class='pct'>error</span><span class='counts'>no score</span>"
        css = "err"
    else:
        reached = score["delivered_once_score"]
        best = best_possible_score(scenario or {}, score["messages"])
        at_best = best < 1.0 and reached >= best - 1e-9 and meets_contract(scenario or {}, score)
        title = (
            f"{case['scenario']} x {case['strategy']}: delivered once {digest.percent(reached)}"
            + (f", {digest.problems(score)}" if digest.problems(score) else "")
        )
        if digest.time_dependence(case):
            title += f"; {digest.time_dependence(case)}"
            mark += "<span class='mark timing' aria-label='depends on time'>≈</span>"
        if at_best:
            title += f"; the best possible here is {digest.percent(best)}, and it reached it"
        elif best < 1.0:
            title += f"; the best possible here is {digest.percent(best)}"
        star = "<span class='best'>★ best possible</span>" if at_best else ""
        counts = " · ".join(
            f"{words(cls)} {score[cls.value]}" for cls in PROBLEMS if score[cls.value]
        )
        inner = f"<span class='pct'>{digest.percent(reached)}</span>{star}" + (
            f"<span class='counts'>{escape(counts)}</span>" if counts else ""
        )
        css = "err" if status == "error" else _band(min(1.0, reached / best) if best else 1.0)
    return (
        f"<td class='cell {css} {status}'><a href='#case-{index}' title='{escape(title)}'>"
        f"{mark}{inner}</a></td>"
    )


def _ranking(results: dict) -> list[str]:
    rows = []
    for rank, row in enumerate(digest.rank_strategies(results), start=1):
        efficiency = "n/a" if row.mean_efficiency is None else f"{row.mean_efficiency:.2f}"
        errors = f" ({row.errors} error{'s' if row.errors > 1 else ''})" if row.errors else ""
        counts = "".join(f"<td>{row.counts[cls.value]}</td>" for cls in PROBLEMS)
        rows.append(
            f"<tr><td>{rank}</td><th scope='row'>{escape(row.name)}</th>"
            f"<td>{digest.percent(row.mean_score)}</td>{counts}<td>{efficiency}</td>"
            f"<td>{row.best}/{row.cases}</td><td>{row.passed}/{row.cases}{errors}</td></tr>"
        )
    heads = "".join(
        f"<th title='{escape(TERMS[cls].meaning)}'>{escape(words(cls))}</th>" for cls in PROBLEMS
    )
    return [
        "<section id='ranking'>",
        "<h2>Strategies, best first</h2>",
        "<table class='ranking'>",
        "<thead><tr><th>#</th><th>strategy</th><th>delivered once (mean)</th>"
        f"{heads}<th>efficiency (mean)</th><th>as well as a correct client</th>"
        "<th>met expectations</th></tr></thead>",
        "<tbody>",
        *rows,
        "</tbody>",
        "</table>",
        f"<p class='legend'>Messages, summed over the scenarios: {escape(class_legend())}. "
        "<em>As well as a correct client</em>: cases within the scenario's contract (its best "
        "possible); <em>met expectations</em>: cases that met the bar they are held to (a "
        "built-in's own table may document a known-bad outcome).</p>",
        "</section>",
    ]


def _case(results: dict, index: int, case: dict) -> str:
    status = digest.case_status(case)
    label = {"pass": "passed", "fail": "failed", "error": "error"}[status]
    parts = [
        f"<section class='case' id='case-{index}' data-status='{status}'>",
        f"<h3>{escape(case['scenario'])} x {escape(case['strategy'])} "
        f"<span class='badge {status}'>{label}</span></h3>",
        "<div class='case-head'>",
        _scorebox(case),
        _expectations(case),
        "</div>",
    ]
    if case["error"] is not None:
        parts.append(f"<pre class='error'>{escape(case['error'])}</pre>")
    timing = digest.time_dependence(case)
    if timing:
        parts.append(f"<p class='timing'><strong>Timing:</strong> {escape(timing)}</p>")
    scenario = next((s for s in results["scenarios"] if s["name"] == case["scenario"]), {})
    best = " ".join(scenario.get("best_possible", "").split())
    if best:
        parts.append(
            f"<p class='best-possible'><strong>What a correct client does here:</strong> "
            f"{escape(best)}</p>"
        )
    parts += [
        f"<p class='repro'>Reproduce: <code>{escape(case['reproducer'])}</code></p>",
        "<figure>",
        render_timeline(case, title_id=f"timeline-title-{index}"),
        "<figcaption><span class='key bar-client'></span>session closed by client "
        "<span class='key bar-server'></span>closed by server "
        "<span class='key bar-open'></span>open at end "
        "<span class='key tick-key'></span>delivery "
        "<span class='key unacked-key'>✕</span>stored, no 250 "
        "<span class='key fault-limit'>▼</span>limit "
        "<span class='key fault-rule'>▼</span>injected fault</figcaption>",
        "</figure>",
        *_id_lists(case),
        "</section>",
    ]
    return "\n".join(parts)


def _scorebox(case: dict) -> str:
    score = case["score"]
    if score is None:
        return "<div class='scorebox'><div class='big err'>no score</div></div>"
    rows: list[tuple[str, object]] = [(words(cls), score[cls]) for cls in _SCOREBOX_CLASSES]
    rows += [
        ("sessions", score["sessions"]),
        ("commands", score["commands"]),
        ("retries", score["retries"]),
        ("5xx retried", score["retried_5xx"]),
        ("commands after 421", score["commands_after_421"]),
        ("throttle violations", score["throttle_violations"]),
        (
            "virtual time",
            f"{score['virtual_elapsed_s']:.1f} s (fastest {score['fastest_possible_s']:.1f} s)",
        ),
        ("efficiency", f"{score['efficiency']:.2f}"),
    ]
    cells = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows)
    band = _band(score["delivered_once_score"])
    return (
        f"<div class='scorebox'><div class='big {band}'>"
        f"{digest.percent(score['delivered_once_score'])}<small>delivered once of "
        f"{score['messages']}</small></div><dl>{cells}</dl></div>"
    )


_SCOREBOX_CLASSES = ("delivered_once", "rejected_reported", *(cls.value for cls in PROBLEMS))


def _expectations(case: dict) -> str:
    items = "".join(
        f"<li class='{'ok' if e['passed'] else 'bad'}'>{'✓' if e['passed'] else '✗'} "
        f"<code>{escape(e['expr'])}</code> actual {escape(digest.format_actual(e['actual']))}"
        "</li>"
        for e in case["expectations"]
    )
    items = items or "<li>none</li>"
    return f"<div class='expectations'><h4>Expectations</h4><ul>{items}</ul></div>"


def _id_lists(case: dict) -> list[str]:
    parts = []
    for label, ids in digest.problem_ids(case):
        more = f"<li>… and {len(ids) - IDS_SHOWN} more</li>" if len(ids) > IDS_SHOWN else ""
        items = "".join(f"<li><code>{escape(i)}</code></li>" for i in ids[:IDS_SHOWN])
        parts.append(
            f"<details class='ids' open><summary>{escape(label)} ({len(ids)})</summary>"
            f"<ul>{items}{more}</ul></details>"
        )
    return parts
