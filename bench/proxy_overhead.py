"""What the proxy costs: messages/s and time per command through `ses-harness proxy` against
talking to the same upstream directly, measured in the same run, rounds alternating.

The upstream is Postfix's smtp-sink (Debian's postfix package), or maildev (`npm ci` in
bench/peers) with `--upstream maildev`; the proxy runs as a user runs it, `ses-harness proxy
--profile plain` in a process of its own. Prints figures and ratios; asserts nothing.

    python bench/proxy_overhead.py [--messages 2000] [--sessions 1 4] [--commands 300]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator

from loadgen import Load, drive
from peers import _free_port, _maildev, _wait_for_port, maildev_missing

SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
START_TIMEOUT_S = 60.0


@contextlib.contextmanager
def smtp_sink() -> Iterator[int]:
    port = _free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    process = subprocess.Popen(
        [SMTP_SINK, *user, f"127.0.0.1:{port}", "1000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_port(port, process)
        yield port
    finally:
        process.terminate()
        process.wait(START_TIMEOUT_S)


@contextlib.contextmanager
def upstream(name: str) -> Iterator[int]:
    if name == "maildev":
        with _maildev() as peer:
            yield peer.port
    else:
        with smtp_sink() as port:
            yield port


@contextlib.contextmanager
def proxy(upstream_port: int) -> Iterator[int]:
    """`ses-harness proxy` in front of the upstream, no limits; its SMTP port."""
    with harness("proxy", "--upstream", f"127.0.0.1:{upstream_port}") as port:
        yield port


@contextlib.contextmanager
def harness(*args: str) -> Iterator[int]:
    """`ses-harness ARGS --profile plain` (serve or proxy) in a process; its SMTP port."""
    with tempfile.TemporaryDirectory():
        command = [sys.executable, "-m", "harness", *args, "--profile", "plain"]
        command += ["--port", "0", "--api-port", "0"]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        ready: dict[str, int] = {}
        found = threading.Event()

        def read() -> None:  # the live log is read to its end: a full pipe costs log lines
            assert process.stdout is not None
            for line in process.stdout:
                if line.startswith("READY "):
                    ready.update(json.loads(line[len("READY ") :]))
                    found.set()
            found.set()

        threading.Thread(target=read, daemon=True).start()
        try:
            if not found.wait(START_TIMEOUT_S) or "smtp_port" not in ready:
                raise RuntimeError(f"ses-harness {args[0]} did not start")
            yield ready["smtp_port"]
        finally:
            process.terminate()
            process.wait(START_TIMEOUT_S)


def per_command_us(port: int, commands: int) -> float:
    """Median wall time of one relayed command (MAIL FROM, RCPT TO, RSET in turn)."""
    times = []
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.ehlo("[127.0.0.1]")
        client.docmd("MAIL FROM:<a@example.com>")  # opens the proxy's upstream connection
        client.docmd("RSET")
        for _ in range(commands):
            for command in ("MAIL FROM:<a@example.com>", "RCPT TO:<b@example.com>", "RSET"):
                began = time.perf_counter()
                code, _ = client.docmd(command)
                times.append(time.perf_counter() - began)
                assert code == 250, (command, code)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--upstream", choices=("smtp-sink", "maildev"), default="smtp-sink")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--commands", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.upstream == "maildev" and maildev_missing():
        sys.exit(f"proxy_overhead: {maildev_missing()}")
    if args.upstream == "smtp-sink" and not os.path.exists(SMTP_SINK):
        sys.exit("proxy_overhead: smtp-sink is not installed (apt-get install postfix)")
    rates: dict[tuple[str, int], list[float]] = {}
    latency: dict[str, list[float]] = {"direct": [], "fake": [], "proxy": []}
    with (
        upstream(args.upstream) as upstream_port,
        proxy(upstream_port) as proxy_port,
        harness("serve") as fake_port,
    ):
        # The fake alone (serve, same profile, nothing relayed) says what of the proxy's cost
        # is the harness's own SMTP server and what is the relay.
        ports = {"direct": upstream_port, "fake": fake_port, "proxy": proxy_port}
        for _ in range(args.rounds):
            for path, port in ports.items():  # alternating, so drift hits both alike
                latency[path].append(per_command_us(port, args.commands))
                for sessions in args.sessions:
                    load = Load(port, sessions=sessions, processes=min(sessions, 2))
                    load.messages = args.messages
                    result = drive(load)
                    assert result.refused == 0, result
                    rates.setdefault((path, sessions), []).append(result.per_s)
    print(f"upstream: {args.upstream}; medians of {args.rounds} rounds")
    us = {path: statistics.median(times) for path, times in latency.items()}
    print(
        f"per command (MAIL, RCPT, RSET): direct {us['direct']:,.0f} us, fake alone "
        f"{us['fake']:,.0f} us, proxy {us['proxy']:,.0f} us; the proxy adds "
        f"{us['proxy'] - us['direct']:,.0f} us to talking to the upstream directly "
        f"({us['proxy'] / us['direct']:.2f}x), {us['proxy'] - us['fake']:,.0f} us to the fake "
        f"alone ({us['proxy'] / us['fake']:.2f}x)"
    )
    for sessions in args.sessions:
        rate = {path: statistics.median(rates[(path, sessions)]) for path in ports}
        direct, fake, relayed = rate["direct"], rate["fake"], rate["proxy"]
        print(
            f"{sessions} session(s), {args.messages} messages: direct {direct:,.0f} msg/s, "
            f"fake alone {fake:,.0f}, proxy {relayed:,.0f}; proxy / direct "
            f"{relayed / direct:.2f}x, proxy / fake {relayed / fake:.2f}x"
        )


if __name__ == "__main__":
    main()
