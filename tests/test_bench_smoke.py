"""Smoke runs of bench/ at tiny sizes: every benchmark runs and its counts add up.

No figure is asserted (these are not timings); what is asserted is that each script finishes,
prints its comparison, and that the load generator and the ledger agree message for message.
"""

from __future__ import annotations

import asyncio
import json
import queue
import subprocess
import sys
import threading
from pathlib import Path
from shutil import which as shutil_which

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

from loadgen import Load, drive  # noqa: E402
from peers import maildev_missing, serving, smtp_sink_missing  # noqa: E402


def run_bench(script: str, *args: str, timeout_s: float = 300.0) -> str:
    finished = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    return finished.stdout


def test_load_generator_sends_every_message_of_a_counted_run() -> None:
    with serving("instant") as peer:
        result = drive(Load(peer.port, sessions=3, processes=2, messages=50, per_session=7))
    assert (result.acked, result.refused) == (50, 0)
    assert result.sessions >= 50 // 7  # it reconnected after 7 messages a session


def test_fake_ses_ledger_matches_the_load_message_for_message() -> None:
    with serving("fake_ses", session_limit=5) as peer:
        result = drive(Load(peer.port, sessions=2, processes=1, messages=23, per_session=5))
    assert (result.acked, result.refused) == (23, 0)
    ledger = peer.ledger
    assert ledger["messages"] == ledger["acknowledged"] == 23
    assert ledger["unique_ses_ids"] == ledger["unique_message_ids"] == 23
    assert ledger["faults"] == 0  # the armed rules never fire
    assert ledger["sessions"] == result.sessions


class _Strict(asyncio.Protocol):
    """An SMTP sink that counts bytes a client wrote before the reply it had to wait for: what
    is left in the buffer after a command (RFC 2920 lets a client send MAIL and RCPT on
    without waiting, never the message before DATA's 354; this counts strictly)."""

    early = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.buffer, self.in_data = b"", False
        transport.write(b"220 strict ESMTP\r\n")  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if self.in_data:
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    return
                self.buffer, self.in_data, reply = self.buffer[end + 5 :], False, b"250 ok"
            else:
                end = self.buffer.find(b"\r\n")
                if end < 0:
                    return
                verb, self.buffer = self.buffer[:4].upper(), self.buffer[end + 2 :]
                self.in_data = verb == b"DATA"
                reply = b"354 go" if self.in_data else b"221 bye" if verb == b"QUIT" else b"250 ok"
            _Strict.early += len(self.buffer)  # written before this reply went out
            self.transport.write(reply + b"\r\n")  # type: ignore[attr-defined]


def _strict_server(ready: queue.Queue[int], stop: threading.Event) -> None:
    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(_Strict, "127.0.0.1", 0)
        ready.put(server.sockets[0].getsockname()[1])
        while not stop.is_set():
            await asyncio.sleep(0.05)
        server.close()

    asyncio.run(serve())


@pytest.mark.parametrize(("pipelined", "early"), [(False, False), (True, True)])
def test_the_waiting_client_writes_nothing_before_the_reply_it_waits_for(
    pipelined: bool, early: bool
) -> None:
    """The headline's client sends the message after the 354 (RFC 2920); the old one, kept as
    `pipelined`, sent it before, which the same sink sees."""
    ready: queue.Queue[int] = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(target=_strict_server, args=(ready, stop), daemon=True)
    thread.start()
    try:
        port = ready.get(timeout=10)
        _Strict.early = 0
        load = Load(port, sessions=2, processes=1, messages=20, per_session=7, pipelined=pipelined)
        result = drive(load)
    finally:
        stop.set()
        thread.join(10)
    assert (result.acked, result.refused) == (20, 0)
    assert (_Strict.early > 0) is early, _Strict.early


@pytest.mark.slow
def test_throughput_compares_against_aiosmtpd_and_the_instant_sink() -> None:
    out = run_bench(
        "throughput.py", "--seconds", "0.3", "--repeats", "1", "--concurrency", "1", "2",
        "--no-maildev", "--no-smtp-sink",
    )  # fmt: skip
    assert "== waiting: a client that waits for each reply (the headline)" in out
    assert "== pipelined:" in out
    assert "fake_ses / aiosmtpd" in out
    assert "instant / fake_ses" in out
    assert "smtp_sink: left out (--no-smtp-sink); measuring without it" in out


@pytest.mark.skipif(
    smtp_sink_missing() is not None,
    reason=f"Postfix's smtp-sink unavailable ({smtp_sink_missing()}); see docs/performance.md",
)
def test_throughput_compares_smtp_sink_with_the_baseline_in_the_same_run(tmp_path: Path) -> None:
    out = run_bench(
        "throughput.py", "--seconds", "0.3", "--repeats", "1", "--concurrency", "1",
        "--servers", "aiosmtpd", "fake_ses", "smtp_sink", "--no-maildev",
        "--json", str(tmp_path / "t.json"),
    )  # fmt: skip
    assert "smtp_sink / aiosmtpd" in out and "fake_ses / smtp_sink" in out
    figures = json.loads((tmp_path / "t.json").read_text())
    assert figures["waiting"]["messages_per_s"]["smtp_sink"]["1"] > 0
    assert set(figures["waiting/pipelined"]) == {"aiosmtpd", "fake_ses", "smtp_sink"}


@pytest.mark.skipif(
    maildev_missing() is not None,
    reason=f"maildev peer unavailable ({maildev_missing()}); see docs/performance.md",
)
def test_throughput_compares_against_maildev() -> None:
    out = run_bench(
        "throughput.py", "--seconds", "0.3", "--repeats", "1", "--concurrency", "1",
        "--servers", "fake_ses", "maildev",
    )  # fmt: skip
    assert "fake_ses / maildev" in out


def test_memory_run_reports_exact_counts() -> None:
    out = run_bench(
        "memory.py", "--messages", "400", "--body-bytes", "2048", "--sessions", "2",
        "--processes", "1",
    )  # fmt: skip
    assert "counts and ids exact: yes" in out


def test_case_memory_prints_the_case_peak_and_checks_the_score(tmp_path: Path) -> None:
    out = run_bench("case_memory.py", "--messages", "300", "--json", str(tmp_path / "c.json"))
    assert "300 messages in" in out and "case process peak" in out
    assert "delivered once 300, duplicated 0, silently lost 0" in out
    assert json.loads((tmp_path / "c.json").read_text())["exact"] is True


def test_long_line_run_refuses_the_line_and_takes_the_next_message() -> None:
    out = run_bench("long_line.py", "--line-mib", "8")
    assert "reply to the line     500" in out or "reply to the line     552" in out
    assert "next message          250 Ok" in out


def test_fuzz_hardening_runs_and_prints_its_figures() -> None:
    out = run_bench("fuzz_hardening.py", "--examples", "5")
    assert "hardening fuzz of ses-harness serve, 5 examples" in out
    assert "server peak RSS" in out


def test_fixture_overhead_measures_fake_ses(tmp_path: Path) -> None:
    out = run_bench("fixture_overhead.py", "--tests", "5", "--json", str(tmp_path / "f.json"))
    assert "fake_ses" in out
    assert (tmp_path / "f.json").exists()


def test_run_all_runs_the_matrix_benchmark_quickly() -> None:
    out = run_bench("run_all.py", "--quick", "--only", "matrix_speed")
    assert "simulated / wall" in out
    assert "=== matrix_speed: exit 0" in out


def test_matrix_benchmark_compares_pinned_and_unpinned_workers() -> None:
    out = run_bench("matrix_speed.py", "--quick", "--compare-pinning")
    assert "default matrix, pinned" in out and "default matrix, unpinned" in out
    assert "wall time unpinned / pinned:" in out


@pytest.mark.skipif(
    not (shutil_which("chromium") or shutil_which("chromium-browser")), reason="no chromium"
)
@pytest.mark.slow
def test_live_page_benchmark_runs_and_prints_its_figures(tmp_path: Path) -> None:
    out = run_bench("live_page.py", "--quick", "--json", str(tmp_path / "live.json"))
    assert "first render (ms)" in out
    assert "wait satisfied while waiting" in out
    assert "API text: (body text, cached) at 5,000 (ms)" in out
    assert (tmp_path / "live.json").exists()


@pytest.mark.slow
def test_page_abuse_benchmark_prints_a_ratio_for_each_kind_of_page_client(tmp_path: Path) -> None:
    out = run_bench("page_abuse.py", "--quick", "--json", str(tmp_path / "abuse.json"))
    for phase in ("event streams that never read", "long-polls open", "long-polls abandoned"):
        assert phase in out
    assert "0 tracebacks" in out
    assert len(json.loads((tmp_path / "abuse.json").read_text())["summary"]) == 3


def test_command_floor_prints_each_server_against_the_instant_one() -> None:
    out = run_bench("command_floor.py", "--messages", "30", "--per-session", "7", "--repeats", "1")
    for name in ("instant", "aiosmtpd", "fake_ses"):
        assert f"  {name} " in out
    assert "x instant" in out
