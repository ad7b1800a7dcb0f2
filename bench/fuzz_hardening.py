"""The hardening fuzz (tests/test_fuzz_hardening.py) at length, with its figures.

    python bench/fuzz_hardening.py [--examples 2000] [--quick]

Runs the suite's fuzz of `ses-harness serve` (malformed SMTP sessions, unterminated lines in
DATA, hostile HTTP requests; every example checked: a fresh client answered, peak RSS under the
bound, no 5xx, no traceback on stderr, every acknowledged message in the ledger once) with more
examples, and prints what ran and the server's peak RSS. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="20 examples")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if args.quick:
        args.examples = 20
    with tempfile.TemporaryDirectory() as folder:
        figures_path = Path(folder) / "figures.json"
        env = {
            **os.environ,
            "SES_HARNESS_FUZZ_EXAMPLES": str(args.examples),
            "SES_HARNESS_FUZZ_FIGURES": str(figures_path),
        }
        began = time.perf_counter()
        finished = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider",
             "tests/test_fuzz_hardening.py"],
            cwd=REPO,
            env=env,
        )  # fmt: skip
        elapsed = time.perf_counter() - began
        if finished.returncode != 0 or not figures_path.exists():
            print(f"the fuzz failed (exit {finished.returncode}); its output is above")
            return 1
        figures = json.loads(figures_path.read_text())
    figures["seconds"] = round(elapsed, 1)
    print(f"hardening fuzz of ses-harness serve, {figures['examples']:,} examples:")
    print(f"  malformed SMTP sessions        {figures['smtp_sessions']:,}")
    print(
        f"  unterminated lines in DATA     {figures['long_lines']:,} "
        f"({figures['long_lines_mib']:,} MiB in all)"
    )
    print(f"  hostile HTTP requests          {figures['http_requests']:,} (none answered 5xx)")
    print(f"  acknowledged messages checked  {figures['acknowledged_checked']:,} (each once)")
    print(
        f"  server peak RSS                {figures['peak_rss_mib']} MiB "
        f"(+{figures['peak_growth_mib']} MiB over its start)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
