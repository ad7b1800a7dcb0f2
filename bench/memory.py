"""Peak memory of the fake server after accepting 100,000 messages of 10 KB, counts checked.

    python bench/memory.py [--messages 100000] [--body-bytes 10240] [--quick]

The server (`ses` profile: 350 messages a session, rate and daily quota off, ledger on with its
default 32 MiB budget for bodies) runs in its own process; the load generator's processes send
over 8 concurrent sessions and, like a batch mailer at SES's cap, start a new session every 350
messages. Prints the server process's resident memory at start, at the end, and its high-water
mark (VmHWM), and checks that the ledger holds exactly one record per message acknowledged,
each with its own SES id and Message-ID. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import Load, drive
from peers import rss_kib, serving

SESSION_CAP = 350


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--body-bytes", type=int, default=10 * 1024)
    parser.add_argument("--sessions", type=int, default=8, help="concurrent sessions")
    parser.add_argument("--processes", type=int, default=2, help="load generator processes")
    parser.add_argument(
        "--budget-mib",
        type=float,
        help="the ledger's memory budget for bodies (default: the Ledger's own, 32 MiB)",
    )
    parser.add_argument(
        "--pipelined",
        action="store_true",
        help="the old load: each transaction in one write, the body before the 354",
    )
    parser.add_argument("--quick", action="store_true", help="5,000 messages")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if args.quick:
        args.messages = 5_000
    # Keep the profile's session cap: transcripts of many sessions are part of the memory.
    options = {}
    if args.budget_mib is not None:
        options["memory_budget_bytes"] = int(args.budget_mib * 1024 * 1024)
    with serving("fake_ses", session_limit=SESSION_CAP, **options) as peer:
        rss_start = rss_kib(peer.pid)
        began = time.perf_counter()
        result = drive(
            Load(
                peer.port,
                sessions=args.sessions,
                processes=args.processes,
                body_bytes=args.body_bytes,
                messages=args.messages,
                per_session=SESSION_CAP,
                pipelined=args.pipelined,
            )
        )
        elapsed = time.perf_counter() - began
        rss_end, peak = rss_kib(peer.pid), rss_kib(peer.pid, "VmHWM")
    ledger = peer.ledger
    exact = (
        result.acked == args.messages
        and result.refused == 0
        and ledger["messages"] == ledger["acknowledged"] == args.messages
        and ledger["unique_ses_ids"] == ledger["unique_message_ids"] == args.messages
    )
    figures = {
        "messages": args.messages,
        "body_bytes": args.body_bytes,
        "sessions_opened": result.sessions,
        "seconds": round(elapsed, 1),
        "rss_start_mib": round(rss_start / 1024, 1),
        "rss_end_mib": round(rss_end / 1024, 1),
        "peak_rss_mib": round(peak / 1024, 1),
        "budget_mib": args.budget_mib,
        "ledger": ledger,
        "exact": exact,
    }
    print(
        f"{args.messages:,} messages of {args.body_bytes:,} B over {result.sessions} sessions "
        f"({args.sessions} at a time) in {elapsed:.0f} s"
    )
    print(
        f"server RSS: {rss_start / 1024:.1f} MiB at start, {rss_end / 1024:.1f} MiB at the end, "
        f"peak {peak / 1024:.1f} MiB (target: under 200 MB)"
    )
    print(
        f"ledger: {ledger['messages']:,} messages ({ledger['acknowledged']:,} acknowledged, "
        f"{ledger['unique_ses_ids']:,} distinct SES ids, {ledger['unique_message_ids']:,} distinct "
        f"Message-IDs, {ledger['bodies_held']:,} bodies in memory), {ledger['sessions']:,} "
        f"sessions, {ledger['transcript_lines']:,} transcript lines"
    )
    print(f"counts and ids exact: {'yes' if exact else 'NO'}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
