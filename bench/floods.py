"""Floods against a fake SES in its own process: figures for connections, throughput and memory.

1. `--connections` connections opened at once: how many got the greeting, how many the SES
   `421 Too many concurrent SMTP connections`.
2. `--senders` concurrent senders for `--seconds`: each connects, sends `--per-connection`
   messages, quits and starts over; a refused sender tries again. Messages/s, connections
   accepted and refused, and the server process's RSS before, at peak and after.

Prints figures; asserts nothing about time.

    python bench/floods.py [--connections 1000] [--senders 200] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import resource
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

from harness import FakeSES

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import rss_kib

TIMEOUT_S = 30.0


def serve(pipe: Connection, cap: int) -> None:
    """The server process: start, report the port, run until told to stop, report the ledger."""
    with FakeSES(profile="ses", max_connections=cap, rate_per_s=None, daily_quota=None) as ses:
        pipe.send(ses.port)
        pipe.recv()
        ledger = ses.ledger
        with contextlib.suppress(TimeoutError):  # sessions whose clients just quit still close
            ledger.wait_for(lambda led: not any(s.open for s in led.sessions), TIMEOUT_S)
        pipe.send(
            {
                "sessions": len(ledger.sessions),
                "messages": len(ledger.messages),
                "acknowledged": sum(m.acknowledged for m in ledger.messages),
                "refused": sum(f.name == "max_connections" for f in ledger.faults),
                "open": sum(s.open for s in ledger.sessions),
            }
        )


@dataclass
class Counts:
    greeted: int = 0
    refused: int = 0
    acked: int = 0
    other: list[bytes] = field(default_factory=list)


async def reply(reader: asyncio.StreamReader) -> bytes:
    """One SMTP reply (the last line of a multi-line one)."""
    while True:
        line = await asyncio.wait_for(reader.readline(), TIMEOUT_S)
        if not line or line[3:4] != b"-":
            return line


async def one_connection(port: int, counts: Counts, hold: asyncio.Event) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    greeting = await reply(reader)
    if greeting.startswith(b"220"):
        counts.greeted += 1
        await hold.wait()
        writer.write(b"QUIT\r\n")
        await reply(reader)
    elif greeting.startswith(b"421"):
        counts.refused += 1
    else:
        counts.other.append(greeting)
    writer.close()


async def connections_at_once(port: int, count: int) -> tuple[Counts, float]:
    counts, hold = Counts(), asyncio.Event()
    began = time.perf_counter()
    tasks = [asyncio.create_task(one_connection(port, counts, hold)) for _ in range(count)]
    while counts.greeted + counts.refused + len(counts.other) < count:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - began
    hold.set()
    await asyncio.gather(*tasks)
    return counts, elapsed


async def sender(
    port: int, worker: int, per_connection: int, backoff_s: float, until: float, counts: Counts
) -> None:
    n = 0
    while time.monotonic() < until:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        greeting = await reply(reader)
        if not greeting.startswith(b"220"):
            counts.refused += 1
            writer.close()
            await asyncio.sleep(backoff_s)  # a refused client backs off before trying again
            continue
        counts.greeted += 1
        writer.write(b"EHLO bench\r\n")
        await reply(reader)
        for _ in range(per_connection):
            n += 1
            writer.write(b"MAIL FROM:<a@example.com>\r\n")
            await reply(reader)
            writer.write(b"RCPT TO:<b@example.com>\r\n")
            await reply(reader)
            writer.write(b"DATA\r\n")
            await reply(reader)
            writer.write(
                b"Subject: flood\r\nMessage-ID: <%d.%d@bench>\r\n\r\n%s\r\n.\r\n"
                % (worker, n, b"x" * 990)
            )
            answer = await reply(reader)
            if answer.startswith(b"250 Ok "):
                counts.acked += 1
            else:
                counts.other.append(answer)
        writer.write(b"QUIT\r\n")
        await reply(reader)
        writer.close()


async def senders(
    port: int, count: int, seconds: float, per_connection: int, backoff_s: float
) -> Counts:
    counts = Counts()
    until = time.monotonic() + seconds
    await asyncio.gather(
        *(sender(port, w, per_connection, backoff_s, until, counts) for w in range(count))
    )
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--per-connection", type=int, default=10)
    parser.add_argument("--backoff-s", type=float, default=0.01, help="wait after a 421")
    parser.add_argument("--cap", type=int, default=50, help="max_connections (SES: about 50)")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(4096, hard)), hard))

    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(theirs, args.cap), daemon=True)
    server.start()
    port = ours.recv()
    rss_start = rss_kib(server.pid)
    print(f"server: cap {args.cap} connections, RSS at start {rss_start / 1024:.1f} MiB")

    counts, elapsed = asyncio.run(connections_at_once(port, args.connections))
    print(
        f"{args.connections} connections at once: {counts.greeted} greeted, "
        f"{counts.refused} refused with 421, {len(counts.other)} other, "
        f"all answered in {elapsed:.2f} s"
    )

    rss_before = rss_kib(server.pid)
    peak = rss_before

    async def flood() -> Counts:
        nonlocal peak
        task = asyncio.create_task(
            senders(port, args.senders, args.seconds, args.per_connection, args.backoff_s)
        )
        while not task.done():
            peak = max(peak, rss_kib(server.pid))
            await asyncio.wait({task}, timeout=0.25)
        return task.result()

    began = time.perf_counter()
    flooded = asyncio.run(flood())
    elapsed = time.perf_counter() - began
    rss_after, high_water = rss_kib(server.pid), rss_kib(server.pid, "VmHWM")
    ours.send("stop")
    ledger = ours.recv()
    server.join()
    print(
        f"{args.senders} senders for {elapsed:.1f} s: {flooded.acked} messages acknowledged "
        f"({flooded.acked / elapsed:.0f}/s), connections {flooded.greeted} accepted, "
        f"{flooded.refused} refused with 421, {len(flooded.other)} other replies"
    )
    print(
        f"server RSS: {rss_before / 1024:.1f} MiB before the senders, "
        f"peak {peak / 1024:.1f} MiB (sampled every 0.25 s), {rss_after / 1024:.1f} MiB after; "
        f"high-water mark of the whole run {high_water / 1024:.1f} MiB"
    )
    print(f"server ledger at the end: {ledger}")


if __name__ == "__main__":
    main()
