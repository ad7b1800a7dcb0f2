"""Per-test cost of the `fake_ses` fixture, next to smtpdfix's `smtpd`, in one pytest run.

    python bench/fixture_overhead.py [--tests 500]

Writes a throwaway project with three files of N identical tests (no fixture; `fake_ses`;
`smtpd`), each test sending one message where there is a server, runs pytest once over all of
them, and prints the setup + teardown time per test (the fixture's overhead) and the call time.
smtpdfix is optional (`pip install smtpdfix`); without it only the first two are measured.
Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

RECORDER = """
import json, os
from collections import defaultdict

_phases = defaultdict(dict)

def pytest_runtest_logreport(report):
    _phases[report.nodeid][report.when] = report.duration

def pytest_sessionfinish(session):
    with open(os.environ["FIXTURE_OVERHEAD_OUT"], "w") as out:
        json.dump(_phases, out)
"""

MESSAGE = 'MESSAGE = b"Subject: hi\\r\\nMessage-ID: <1@bench.example>\\r\\n\\r\\nhello\\r\\n"\n'

TESTS = {
    "bare": "def test_{n}():\n    pass\n",
    "fake_ses": (
        "def test_{n}(fake_ses):\n"
        "    with smtplib.SMTP(fake_ses.host, fake_ses.port) as client:\n"
        "        client.sendmail('a@example.com', ['b@example.com'], MESSAGE)\n"
    ),
    "smtpd": (
        "def test_{n}(smtpd):\n"
        "    with smtplib.SMTP(smtpd.hostname, smtpd.port) as client:\n"
        "        client.sendmail('a@example.com', ['b@example.com'], MESSAGE)\n"
    ),
}


def write_project(root: Path, count: int, kinds: list[str]) -> None:
    (root / "conftest.py").write_text(RECORDER)
    # Plain plan for both servers: the `ses` profile's 14/s throttle would refuse most messages.
    (root / "pytest.ini").write_text("[pytest]\nfake_ses_profile = plain\n")
    for kind in kinds:
        body = "".join(TESTS[kind].format(n=n) + "\n" for n in range(count))
        (root / f"test_{kind}.py").write_text("import smtplib\n" + MESSAGE + "\n" + body)


def summarize(phases: dict[str, dict[str, float]], kind: str) -> dict[str, float]:
    runs = [p for nodeid, p in phases.items() if nodeid.startswith(f"test_{kind}.py::")]
    overhead_ms = [1000 * (p.get("setup", 0.0) + p.get("teardown", 0.0)) for p in runs]
    call_ms = [1000 * p.get("call", 0.0) for p in runs]
    return {
        "tests": len(runs),
        "median_ms": statistics.median(overhead_ms),
        "p90_ms": statistics.quantiles(overhead_ms, n=10)[-1],
        "first_ms": overhead_ms[0],
        "total_s": sum(overhead_ms) / 1000,
        "call_median_ms": statistics.median(call_ms),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=500, help="tests per fixture (default 500)")
    parser.add_argument("--quick", action="store_true", help="50 tests per fixture")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if args.quick:
        args.tests = 50
    kinds = ["bare", "fake_ses"]
    if importlib.util.find_spec("smtpdfix") is not None:
        kinds.append("smtpd")
    else:
        print("smtpdfix is not installed: measuring fake_ses only (pip install smtpdfix)")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write_project(root, args.tests, kinds)
        out = root / "phases.json"
        # smtpdfix binds to SMTPD_HOST: keep it on loopback like ours.
        env = {**os.environ, "FIXTURE_OVERHEAD_OUT": str(out), "SMTPD_HOST": "127.0.0.1"}
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]
        finished = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
        print(textwrap.indent(finished.stdout.strip().splitlines()[-1], "pytest: "))
        if finished.returncode != 0:
            print(finished.stdout[-3000:], finished.stderr[-3000:], sep="\n")
            return 1
        phases = json.loads(out.read_text())
    print(f"\nper-test overhead (setup + teardown), {args.tests} tests each, one pytest run")
    print(
        f"{'fixture':<10} {'median ms':>10} {'p90 ms':>8} {'first ms':>9} {'total s':>8}"
        f" {'call median ms':>15}"
    )
    figures = {kind: summarize(phases, kind) for kind in kinds}
    for kind, s in figures.items():
        print(
            f"{kind:<10} {s['median_ms']:>10.3f} {s['p90_ms']:>8.3f} {s['first_ms']:>9.1f}"
            f" {s['total_s']:>8.2f} {s['call_median_ms']:>15.3f}"
        )
    if "smtpd" in figures:
        ours, theirs = figures["fake_ses"]["median_ms"], figures["smtpd"]["median_ms"]
        bare = figures["bare"]["median_ms"]
        print(
            f"\nfake_ses / smtpd, median overhead: {ours / theirs:.2f}x (target <= 0.05x); "
            f"above a bare test's own {bare:.3f} ms: {(ours - bare) / (theirs - bare):.2f}x"
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
