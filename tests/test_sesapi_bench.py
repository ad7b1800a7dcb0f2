"""Smoke run of bench/api_vs_moto.py: both servers answer the same load and the fake's ledger
holds every message it acknowledged. No figure is asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"

pytest.importorskip("moto")
pytest.importorskip("boto3")


@pytest.mark.slow
def test_api_vs_moto_runs_and_the_ledger_holds_every_acknowledged_message():
    finished = subprocess.run(
        [sys.executable, str(BENCH / "api_vs_moto.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    assert "fake / moto" in finished.stdout
    recorded, acknowledged = finished.stdout.split("fake ledger: ")[1].split(" messages recorded, ")
    assert int(recorded) == int(acknowledged.split()[0])
