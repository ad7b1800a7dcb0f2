"""Per-test cost of the `fake_ses` fixture, next to smtpdfix's `smtpd`, in one pytest run.

    python bench/fixture_overhead.py [--tests 500]

Writes a throwaway project with four files of N identical tests (no fixture; `do_nothing`, a
fixture that only hands over the plugin's shared server; `fake_ses`; `smtpd`), each test
sending one message where there is a server, runs pytest once over all of them, and prints the
setup + teardown time per test (the fixture's overhead) and the call time. `do_nothing` is
the floor for any fixture over a server in the test process: pytest's own work for a function
fixture, and the server thread finishing the test's connection. smtpdfix is optional
(`pip install smtpdfix`); without it the first three are measured.
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
import pytest
from collections import defaultdict

_phases = defaultdict(dict)

def pytest_runtest_logreport(report):
    _phases[report.nodeid][report.when] = report.duration

# The floor: a fixture that hands over the shared server and does nothing else.
@pytest.fixture
def do_nothing(fake_ses_server):
    yield fake_ses_server


def pytest_sessionfinish(session):
    with open(os.environ["FIXTURE_OVERHEAD_OUT"], "w") as out:
        json.dump(_phases, out)
"""

MESSAGE = 'MESSAGE = b"Subject: hi\\r\\nMessage-ID: <1@bench.example>\\r\\n\\r\\nhello\\r\\n"\n'

TESTS = {
    "bare": "def test_{n}():\n    pass\n",
    "do_nothing": (
        "def test_{n}(do_nothing):\n"
        "    with smtplib.SMTP(do_nothing.host, do_nothing.port) as client:\n"
        "        client.sendmail('a@example.com', ['b@example.com'], MESSAGE)\n"
    ),
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
    kinds = ["bare", "do_nothing", "fake_ses"]
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
        f"{'fixture':<11} {'median ms':>10} {'p90 ms':>8} {'first ms':>9} {'total s':>8}"
        f" {'call median ms':>15}"
    )
    figures = {kind: summarize(phases, kind) for kind in kinds}
    for kind, s in figures.items():
        print(
            f"{kind:<11} {s['median_ms']:>10.3f} {s['p90_ms']:>8.3f} {s['first_ms']:>9.1f}"
            f" {s['total_s']:>8.2f} {s['call_median_ms']:>15.3f}"
        )
    ours, floor = figures["fake_ses"]["median_ms"], figures["do_nothing"]["median_ms"]
    bare = figures["bare"]["median_ms"]
    print(f"\nfake_ses's own work, above the do_nothing floor: {ours - floor:.3f} ms")
    if "smtpd" in figures:
        theirs = figures["smtpd"]["median_ms"]
        print(
            f"fake_ses / smtpd, median overhead: {ours / theirs:.2f}x (target <= 0.05x); "
            f"above a bare test's own {bare:.3f} ms: {(ours - bare) / (theirs - bare):.2f}x; "
            f"do_nothing / smtpd: {floor / theirs:.2f}x, above bare "
            f"{(floor - bare) / (theirs - bare):.2f}x; bare / smtpd (no fixture at all): "
            f"{bare / theirs:.2f}x"
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
