"""Requests/s of the fake SES API next to moto's server mode, on the same SendEmail load.

    python bench/api_vs_moto.py [--seconds 3] [--repeats 3] [--quick]

Both servers run in their own process on 127.0.0.1: the fake (FakeSES's API port, profile
"ses" with its rate bucket and daily quota switched on, set high enough never to refuse, and
its ledger recording every message) and moto (``ThreadedMotoServer`` from PyPI's moto, with
the sender verified, as it requires). The load is the same for both: one SESv2 SendEmail
request with raw content, signed once by botocore and replayed over keep-alive connections by
worker processes, so the client's cost is the same small constant and the servers are what is
measured. Each repeat measures both servers at 1 and at 8 concurrent connections, one after the
other; the table shows medians. At the end the fake's ledger must hold every message it
acknowledged.

Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = (1, 8)
SENDER = "app@example.com"
MESSAGE = (
    b"From: app@example.com\r\nTo: user@example.com\r\nSubject: load\r\n"
    b"Message-ID: <load@bench.example>\r\n\r\n" + b"x" * 1000 + b"\r\n"
)

FAKE = """
import sys
from harness.server.fake_ses import FakeSES
with FakeSES(profile="ses", rate_per_s=1e6, daily_quota=1_000_000_000, session_limit=None) as ses:
    print(ses.api_port, flush=True)
    sys.stdin.read()
    print(len(ses.ledger.messages), flush=True)
"""

MOTO = """
import logging, sys, boto3
logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no log line per request
from moto.server import ThreadedMotoServer
port = int(sys.argv[1])
server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
server.start()
boto3.client("ses", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
             aws_access_key_id="AKIAFAKE", aws_secret_access_key="fake"
             ).verify_email_identity(EmailAddress=sys.argv[2])
print(port, flush=True)
sys.stdin.read()
server.stop()
print(-1, flush=True)
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A server process that prints its port, and at the end (stdin closed) a count."""

    def __init__(self, name: str, code: str, *args: str) -> None:
        env = {**os.environ, "AWS_EC2_METADATA_DISABLED": "true"}
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def close(self) -> int:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        count = int(self.process.stdout.readline() or -1)
        self.process.wait(timeout=30)
        return count


def signed_request(port: int) -> tuple[str, dict[str, str], bytes]:
    """SendEmail as boto3 sends it, signed once (neither server here checks the time)."""
    import boto3

    client = boto3.client(
        "sesv2",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="AKIAFAKE",
        aws_secret_access_key="fake",
    )
    captured: dict[str, object] = {}

    def capture(request: object, **_: object) -> None:
        captured["request"] = request
        raise _Captured

    client.meta.events.register("before-send.sesv2.SendEmail", capture)
    with contextlib.suppress(_Captured):
        client.send_email(Content={"Raw": {"Data": MESSAGE}})
    request = captured["request"]
    path = urllib.parse.urlsplit(request.url).path  # type: ignore[attr-defined]
    headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}  # type: ignore[attr-defined]
    body = request.body  # type: ignore[attr-defined]
    return path, headers, body if isinstance(body, bytes) else body.encode()


class _Captured(Exception):
    pass


def worker(port: int, path: str, headers: dict, body: bytes, seconds: float, out) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    ok = failed = 0
    started = time.perf_counter()  # timed here: process start-up is not the server's cost
    deadline = started + seconds
    while time.perf_counter() < deadline:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status == 200:
            ok += 1
        else:
            failed += 1
    connection.close()
    out.put((ok, failed, time.perf_counter() - started))


def measure(server: Server, connections: int, seconds: float) -> tuple[float, int]:
    path, headers, body = signed_request(server.port)
    warm = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    warm.request("POST", path, body=body, headers=headers)  # moto loads its backend lazily
    warm.getresponse().read()
    warm.close()
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [
        context.Process(target=worker, args=(server.port, path, headers, body, seconds, results))
        for _ in range(connections)
    ]
    for process in workers:
        process.start()
    counts = [results.get(timeout=seconds + 120) for _ in workers]
    for process in workers:
        process.join()
    ok = sum(c[0] for c in counts)
    failed = sum(c[1] for c in counts)
    if failed:
        raise RuntimeError(f"{server.name} refused {failed} requests: the load hit a limit")
    return sum(c[0] / c[2] for c in counts), ok + 1  # the warm-up request was kept too


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one short repeat (smoke test)")
    args = parser.parse_args(argv)
    seconds, repeats = (0.5, 1) if args.quick else (args.seconds, args.repeats)
    try:
        import moto  # noqa: F401
    except ImportError:
        print("moto is not installed: pip install -e '.[test]'", file=sys.stderr)
        return 2
    fake = Server("fake SES API", FAKE)
    peer = Server("moto server", MOTO, str(free_port()), SENDER)
    figures: dict[tuple[str, int], list[float]] = {}
    acknowledged = 0
    try:
        for _ in range(repeats):
            for connections in CONCURRENCY:
                for server in (fake, peer):
                    per_s, ok = measure(server, connections, seconds)
                    figures.setdefault((server.name, connections), []).append(per_s)
                    if server is fake:
                        acknowledged += ok
    finally:
        recorded = fake.close()
        peer.close()
    print(f"SendEmail requests/s, median of {repeats}, {seconds:g} s each:")
    print(f"{'server':<16}" + "".join(f"{f'{c} conn':>12}" for c in CONCURRENCY))
    for name in (fake.name, peer.name):
        row = [statistics.median(figures[(name, c)]) for c in CONCURRENCY]
        print(f"{name:<16}" + "".join(f"{v:>12.0f}" for v in row))
    ratios = [
        statistics.median(figures[(fake.name, c)]) / statistics.median(figures[(peer.name, c)])
        for c in CONCURRENCY
    ]
    print("fake / moto     " + "".join(f"{r:>11.1f}x" for r in ratios))
    print(f"fake ledger: {recorded} messages recorded, {acknowledged} acknowledged")
    if recorded < acknowledged:
        print("the fake acknowledged messages its ledger does not hold", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
