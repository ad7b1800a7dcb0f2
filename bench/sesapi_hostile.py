"""One SES API request with many recipients against `ses-harness serve`: its answer time, and
how long SMTP greetings wait meanwhile (issue 28, fault 1).

    python bench/sesapi_hostile.py [--recipients 1000,8000,16000,100000] [--profile ses]
                                   [--timeout 60] [--tree DIR] [--json FILE]

For each count a fresh server is started (`--tree` runs another checkout's code, to measure a
before and an after on the same machine in the same run); one signed v2 SendEmail (Simple
content, N ToAddresses) is sent while a thread opens SMTP connections one after another and
times each greeting. Prints, per count: the answer's status and time, the greetings taken
during the request and the slowest of them, against the idle greeting just before. A request
not answered within --timeout is reported so, and its server killed. Asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import queue
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
V2_SEND = "/v2/email/outbound-emails"


class Serve:
    """`python -m harness serve` from `tree`, on ports of its own."""

    def __init__(self, tree: Path, profile: str) -> None:
        command = [sys.executable, "-m", "harness", "serve", "--port", "0", "--api-port", "0"]
        command += ["--profile", profile, "--limit", "rate_per_s=none"]
        command += ["--limit", "daily_quota=none"]
        env = {**os.environ, "PYTHONPATH": str(tree)}
        self.process = subprocess.Popen(
            command,
            cwd=tree,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        ready: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, args=(ready,), daemon=True).start()
        found = ready.get(timeout=60)
        self.smtp = (found["smtp_host"], found["smtp_port"])
        self.api_url = found["api_url"]

    def _read(self, ready: queue.Queue[dict[str, Any]]) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:  # read to the end: a full pipe would stall the server
            if line.startswith("READY "):
                ready.put(json.loads(line[len("READY ") :]))

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


def greeting_s(address: tuple[str, int], timeout_s: float) -> float:
    began = time.perf_counter()
    with socket.create_connection(address, timeout=timeout_s) as sock:
        sock.recv(512)
        elapsed = time.perf_counter() - began
        sock.sendall(b"QUIT\r\n")
    return elapsed


def signed_request(api_url: str, body: bytes) -> urllib.request.Request:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = api_url + V2_SEND
    request = AWSRequest("POST", url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials("AKIAFAKESES000000000", "fake-ses-secret"), "ses", "us-east-1").add_auth(
        request
    )
    return urllib.request.Request(url, data=body, headers=dict(request.headers), method="POST")


def one(tree: Path, profile: str, count: int, timeout_s: float) -> dict[str, Any]:
    server = Serve(tree, profile)
    try:
        idle = statistics.median(greeting_s(server.smtp, timeout_s) for _ in range(5))
        payload = {
            "FromEmailAddress": "app@example.com",
            "Destination": {"ToAddresses": [f"user{i}@example.com" for i in range(count)]},
            "Content": {"Simple": {"Subject": {"Data": "Hi"}, "Body": {"Text": {"Data": "x"}}}},
        }
        request = signed_request(server.api_url, json.dumps(payload).encode())
        done = threading.Event()
        greetings: list[float] = []
        stalled: list[str] = []

        def greet() -> None:
            while not done.is_set():
                try:
                    greetings.append(greeting_s(server.smtp, timeout_s))
                except OSError as error:
                    stalled.append(type(error).__name__)
                    return
                done.wait(0.02)

        greeter = threading.Thread(target=greet, daemon=True)
        began = time.perf_counter()
        greeter.start()
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as answer:
                status: int | str = answer.status
        except urllib.error.HTTPError as error:
            status = error.code
        except OSError as error:  # no answer in time
            status = f"none ({type(error).__name__})"
        answer_s = time.perf_counter() - began
        done.set()
        greeter.join(timeout_s)
        return {
            "recipients": count,
            "status": status,
            "answer_s": round(answer_s, 3),
            "idle_greeting_ms": round(idle * 1000, 2),
            "greetings_during": len(greetings),
            "slowest_greeting_ms": round(max(greetings, default=0.0) * 1000, 1),
            "greeting_stalled": stalled[0] if stalled else None,
        }
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", default="1000,8000,16000,100000")
    parser.add_argument("--profile", default="ses")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--tree", type=Path, default=REPO, help="the checkout to run")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.recipients.split(",")]
    rows = [one(args.tree, args.profile, n, args.timeout) for n in counts]
    print(f"profile {args.profile}, tree {args.tree}, {datetime.date.today()}")
    print("recipients  status            answer s  idle greet ms  greetings  slowest greet ms")
    for row in rows:
        slowest = row["slowest_greeting_ms"]
        stalled = f" (then {row['greeting_stalled']})" if row["greeting_stalled"] else ""
        print(
            f"{row['recipients']:>10}  {row['status']!s:<16}  {row['answer_s']:>8}  "
            f"{row['idle_greeting_ms']:>13}  {row['greetings_during']:>9}  {slowest:>9}{stalled}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
