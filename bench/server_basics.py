"""Start+stop time of one fake server, and messages/s over one smtplib session.

Both next to bare aiosmtpd (a Sink handler behind our own port-0 runner) measured in the same run.
Prints figures and ratios; asserts nothing about time.

    python bench/server_basics.py [--starts 100] [--messages 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import smtplib
import statistics
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

from aiosmtpd.handlers import Sink
from aiosmtpd.smtp import SMTP

from harness import FakeSES

BODY = b"Subject: bench\r\nMessage-ID: <%d@bench>\r\n\r\n" + b"x" * 990 + b"\r\n"


class BareAiosmtpd(AbstractContextManager):
    """aiosmtpd with a Sink handler on 127.0.0.1, port 0, in a loop thread (our baseline)."""

    def __enter__(self) -> BareAiosmtpd:
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(self.loop)
            self.server = self.loop.run_until_complete(
                self.loop.create_server(lambda: SMTP(Sink(), hostname="localhost"), "127.0.0.1", 0)
            )
            self.host, self.port = self.server.sockets[0].getsockname()[:2]
            ready.set()
            self.loop.run_forever()
            self.server.close()
            self.loop.run_until_complete(self.server.wait_closed())
            self.loop.close()

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()
        ready.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()


def start_stop_ms(make: Callable[[], AbstractContextManager], starts: int) -> float:
    times = []
    for _ in range(starts):
        began = time.perf_counter()
        with make():
            pass
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def messages_per_s(server, count: int) -> float:
    client = smtplib.SMTP(server.host, server.port)
    began = time.perf_counter()
    for n in range(count):
        client.sendmail("a@example.com", ["b@example.com"], BODY % n)
    elapsed = time.perf_counter() - began
    client.quit()
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--starts", type=int, default=100)
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()

    def fake() -> FakeSES:
        # The ses profile with its limits out of the way of a throughput figure; ledger on.
        return FakeSES(profile="ses", session_limit=None, rate_per_s=None, daily_quota=None)

    ours_ms = start_stop_ms(fake, args.starts)
    bare_ms = start_stop_ms(BareAiosmtpd, args.starts)
    print(
        f"start+stop, median of {args.starts}: fake SES {ours_ms:.2f} ms, "
        f"bare aiosmtpd {bare_ms:.2f} ms, ratio {ours_ms / bare_ms:.2f}x"
    )
    with fake() as ses:
        ours = messages_per_s(ses, args.messages)
    with BareAiosmtpd() as bare:
        base = messages_per_s(bare, args.messages)
    print(
        f"one smtplib session, {args.messages} messages of 1 KB: fake SES {ours:.0f} msg/s, "
        f"bare aiosmtpd {base:.0f} msg/s, ratio {ours / base:.2f}x"
    )


if __name__ == "__main__":
    main()
