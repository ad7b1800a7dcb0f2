"""Run every benchmark, one after the other, and print their figures.

    python bench/run_all.py [--quick] [--uvloop] [--json-dir DIR] [--only NAME ...]

1. throughput.py: messages/s of the fake server next to bare aiosmtpd and maildev, 1 and 8
   sessions, and the load generator's ceiling (an instant sink).
2. fixture_overhead.py: per-test cost of `fake_ses` next to smtpdfix's `smtpd`, 500 tests.
3. matrix_speed.py: the default scenario matrix's wall time against the time it simulates.
4. memory.py: peak RSS of the server after 100,000 messages of 10 KB, counts checked.
   case_memory.py: peak RSS of a whole case of 100,000 messages (runner, server, strategy).
5. long_line.py: peak RSS of the server while a client sends a 1 GiB line with no CRLF in DATA.
6. fuzz_hardening.py: the hardening fuzz of `ses-harness serve` at 2,000 examples, its figures.
7. live_page.py: the live page's first render and searches with 10,000 messages (headless
   Chromium), the API's searches at 100,000, and the latency of `?wait=N`.
8. page_abuse.py: SMTP msg/s idle against 600 event streams that never read, 500 long-polls
   open and 500 abandoned, as ratios.

Each runs in its own process and prints ratios against baselines measured in the same run.
`--quick` runs each at a tiny size (a smoke run: the figures mean little). Exit status: 1 when
a benchmark failed (or found counts that were not exact), else 0. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = (
    "throughput",
    "fixture_overhead",
    "matrix_speed",
    "memory",
    "case_memory",
    "long_line",
    "fuzz_hardening",
    "live_page",
    "page_abuse",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every benchmark at a tiny size")
    parser.add_argument("--json-dir", type=Path, help="each benchmark writes NAME.json here")
    parser.add_argument(
        "--only", nargs="+", choices=BENCHMARKS, metavar="NAME", help="run only these"
    )
    parser.add_argument(
        "--uvloop", action="store_true", help="throughput: also the fake server on uvloop"
    )
    args = parser.parse_args(argv)
    failed = []
    for name in args.only or BENCHMARKS:
        command = [sys.executable, str(HERE / f"{name}.py")]
        if args.quick:
            command.append("--quick")
        if args.json_dir:
            args.json_dir.mkdir(parents=True, exist_ok=True)
            command += ["--json", str(args.json_dir / f"{name}.json")]
        if args.uvloop and name == "throughput":
            command.append("--uvloop")
        print(f"\n=== {name} ({' '.join(command[1:])})", flush=True)
        began = time.perf_counter()
        finished = subprocess.run(command)
        print(f"=== {name}: exit {finished.returncode} in {time.perf_counter() - began:.0f} s")
        if finished.returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
