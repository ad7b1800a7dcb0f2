"""Report writers for a scenario run: results.json, summary.md, junit.xml and report.html.

Reads only the results dict (and `harness.core`); `ses-harness run` calls it.

    from harness.reports import write_reports
    paths = write_reports(results, Path("reports") / results["run"]["id"])

`results` is the dict documented in SCHEMA.md beside this file (schema version 1); it is
validated first, so a malformed dict raises PlanError naming the bad key and writes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.reports.html import render_html
from harness.reports.junit import render_junit
from harness.reports.markdown import render_summary
from harness.reports.schema import SCHEMA_NAME, SCHEMA_VERSION, validate_results

__all__ = [
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "render_html",
    "render_json",
    "render_junit",
    "render_summary",
    "validate_results",
    "write_reports",
]


def render_json(results: dict) -> str:
    """results.json text: the dict as given, indented, key order kept, strict JSON."""
    return json.dumps(results, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_reports(results: dict, run_dir: Path) -> list[Path]:
    """Validate `results` and write every report into `run_dir` (created if needed).

    Returns the paths written, in a fixed order. Raises PlanError (source "results", naming
    the key) when `results` does not follow schema version 1.
    """
    validate_results(results)
    # Render everything before writing anything, so a rendering bug leaves no half a report.
    contents: dict[str, bytes] = {
        "results.json": render_json(results).encode("utf-8"),
        "summary.md": render_summary(results).encode("utf-8"),
        "junit.xml": render_junit(results),
        "report.html": render_html(results).encode("utf-8"),
    }
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in contents.items():
        path = run_dir / name
        path.write_bytes(data)
        paths.append(path)
    return paths
