"""SMTP's pace while the live page is abused: messages/s idle, with 600 event streams that never
read, with 500 long-polls (`?wait`) open, and just after 500 long-polls were opened and left.

    python bench/page_abuse.py [--seconds 5] [--repeats 3] [--streams 600] [--waits 500]
                               [--quick] [--json F]

A real `ses-harness serve` process (profile plain, no rate limit or quota) takes SMTP load from
bench/loadgen.py's worker processes (4 sessions, pipelined transactions of 1 KB). The page's
clients are plain sockets in this process: each sends its request and never reads a byte. Each
abused phase is measured right after an idle one, and its ratio is taken against that idle
figure, so each ratio compares figures taken moments apart on a shared machine; a round is

    idle, streams; idle, long-polls open; idle, long-polls abandoned

and the medians over the rounds are printed at the end.
"abandoned": the 500 requests are sent, the server is given a second to take them, and every
socket is closed at once before the load starts (a browser tab closed, a test run killed).
Also printed: how many descriptors the server holds after each phase (from /proc), and how the
clients were answered (a cap refuses with 503). Issue 28's goal is a ratio of at least 0.5.

Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import Load, drive

START_TIMEOUT_S = 60.0
ATTACH_S = 1.0  # time given to the server to take the clients' requests
SESSIONS = 4
PROCESSES = 2
PHASES = ("streams", "open", "abandoned")


class Serve:
    """`python -m harness serve` on free ports; its stdout is read (and dropped) as it comes."""

    def __init__(self) -> None:
        command = [sys.executable, "-m", "harness", "serve", "--port", "0", "--api-port", "0"]
        command += ["--profile", "plain"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        ready: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, args=(ready,), daemon=True).start()
        found = ready.get(timeout=START_TIMEOUT_S)
        if found is None:
            raise RuntimeError(f"serve exited: {self.process.stderr.read()}")  # type: ignore[union-attr]
        self.smtp_port = int(found["smtp_port"])
        host_port = found["api_url"].rsplit("/", 1)[-1]
        self.api_host, api_port = host_port.rsplit(":", 1)
        self.api_port = int(api_port)

    def _read(self, ready: queue.Queue[dict[str, Any] | None]) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("READY "):
                ready.put(json.loads(line[len("READY ") :]))
        ready.put(None)

    def descriptors(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def stop(self) -> str:
        self.process.terminate()
        try:
            _, err = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        return err


@contextlib.contextmanager
def clients(serve: Serve, path: str, count: int) -> Iterator[list[socket.socket]]:
    """`count` sockets that each sent `GET path` and read nothing; closed on exit."""
    request = (f"GET {path} HTTP/1.1\r\nHost: {serve.api_host}:{serve.api_port}\r\n\r\n").encode()
    opened: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection((serve.api_host, serve.api_port), timeout=10)
            sock.sendall(request)
            opened.append(sock)
        time.sleep(ATTACH_S)
        yield opened
    finally:
        for sock in opened:
            sock.close()


def answers(opened: list[socket.socket]) -> dict[str, int]:
    """How each client has been answered so far: its status line's code, or 'none yet'."""
    counts: dict[str, int] = {}
    for sock in opened:
        sock.setblocking(False)
        try:
            head = sock.recv(64)
        except BlockingIOError:
            head = b""
        except OSError:
            head = b"closed"
        code = head.split(b" ", 2)[1].decode() if head.startswith(b"HTTP/1.1 ") else None
        key = code or ("closed" if head in (b"", b"closed") and _closed(sock) else "none yet")
        counts[key] = counts.get(key, 0) + 1
    return counts


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def rate(serve: Serve, seconds: float) -> float:
    load = Load(
        serve.smtp_port, sessions=SESSIONS, processes=PROCESSES, seconds=seconds, pipelined=True
    )
    result = drive(load)
    if result.refused:
        raise RuntimeError(f"{result.refused} messages refused: the load hit a limit")
    return result.per_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; medians are printed")
    parser.add_argument("--streams", type=int, default=600)
    parser.add_argument("--waits", type=int, default=500)
    parser.add_argument(
        "--only",
        nargs="+",
        choices=PHASES,
        help="these phases only (a server from before issue 28 never recovers from 'abandoned')",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny sizes")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.repeats, args.streams, args.waits = 0.5, 1, 20, 20
    wait_path = "/api/messages?wait=1000000000&timeout=300"
    phases = [
        (f"{args.streams} event streams that never read", "/api/events", args.streams, False),
        (f"{args.waits} long-polls open", wait_path, args.waits, False),
        (f"{args.waits} long-polls abandoned", wait_path, args.waits, True),
    ]
    phases = [p for p, key in zip(phases, PHASES, strict=True) if key in (args.only or PHASES)]
    measured: dict[str, list[dict[str, Any]]] = {name: [] for name, *_ in phases}
    serve = Serve()
    try:
        for round_number in range(1, args.repeats + 1):
            for name, path, count, abandon in phases:
                idle = rate(serve, args.seconds)
                with clients(serve, path, count) as opened:
                    held = serve.descriptors()
                    got = answers(opened)
                    if abandon:
                        for sock in opened:
                            sock.close()
                        opened.clear()
                    abused = rate(serve, args.seconds)
                    held_after = serve.descriptors()
                figures = {
                    "idle_per_s": round(idle, 1),
                    "abused_per_s": round(abused, 1),
                    "ratio": round(abused / idle, 3) if idle else 0.0,
                    "server_fds_attached": held,
                    "server_fds_after_load": held_after,
                    "answers_before_load": got,
                }
                measured[name].append(figures)
                print(
                    f"round {round_number}  {name:38} idle {idle:7.1f}  abused {abused:7.1f} "
                    f"msg/s  ratio {figures['ratio']:5.2f}  server fds {held} -> {held_after}  "
                    f"answers {got}",
                    flush=True,
                )
    finally:
        stderr = serve.stop()
    tracebacks = stderr.count("Traceback")
    print(f"\nmedians of {args.repeats} rounds, {args.seconds:g} s each, {SESSIONS} SMTP sessions:")
    summary = []
    for name, rounds in measured.items():
        row = {
            "phase": name,
            "idle_per_s": statistics.median(r["idle_per_s"] for r in rounds),
            "abused_per_s": statistics.median(r["abused_per_s"] for r in rounds),
            "ratio": statistics.median(r["ratio"] for r in rounds),
        }
        summary.append(row)
        print(
            f"  {name:38} idle {row['idle_per_s']:7.1f}  abused {row['abused_per_s']:7.1f} msg/s"
            f"  ratio {row['ratio']:5.2f}"
        )
    print(f"server stderr: {len(stderr.splitlines())} lines, {tracebacks} tracebacks")
    print("goal (issue 28): every ratio >= 0.5")
    if args.json:
        report = {"summary": summary, "rounds": measured, "tracebacks": tracebacks}
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
