"""Messages/s of the fake SES server next to bare aiosmtpd and maildev, measured in one run.

    python bench/throughput.py [--seconds 3] [--repeats 3] [--quick] [--uvloop]

Every server runs in its own process; the load comes from bench/loadgen.py's worker processes
(whole pipelined transactions, 1 KB messages). Each repeat measures every server once at 1 and
at 8 concurrent sessions, one after the other, so the ratios compare figures taken moments
apart on a shared machine; the table shows medians over the repeats. The `instant` row is an
asyncio sink that answers at once: the load generator's own ceiling, which must sit well above
every server for the other figures to mean anything.

Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import Load, drive
from peers import cpu_s, maildev_missing, serving

CONCURRENCY = (1, 8)


def measure(
    name: str, sessions: int, seconds: float, processes: int, body_bytes: int
) -> tuple[float, float]:
    """Messages/s acknowledged, and the server process's CPU microseconds per message."""
    use_uvloop = name == "fake_ses+uvloop"
    peer_name = "fake_ses" if use_uvloop else name
    with serving(peer_name, use_uvloop=use_uvloop) as peer:
        cpu_before = cpu_s(peer.pid)
        result = drive(
            Load(
                peer.port,
                sessions=sessions,
                processes=min(processes, sessions),
                body_bytes=body_bytes,
                seconds=seconds,
            )
        )
        cpu_used = cpu_s(peer.pid) - cpu_before
    if result.refused:
        raise RuntimeError(f"{name} refused {result.refused} messages: the load hit a limit")
    if peer.ledger and peer.ledger["acknowledged"] < result.acked:
        raise RuntimeError(f"{name} acknowledged more than its ledger holds: {peer.ledger}")
    return result.per_s, 1e6 * cpu_used / max(1, result.acked)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--processes", type=int, default=2, help="load generator processes")
    parser.add_argument("--body-bytes", type=int, default=1024)
    parser.add_argument("--quick", action="store_true", help="0.5 s, one repeat")
    parser.add_argument("--uvloop", action="store_true", help="also the fake server on uvloop")
    parser.add_argument("--no-maildev", action="store_true", help="leave maildev out")
    parser.add_argument("--json", type=Path, help="write the medians here")
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=list(CONCURRENCY),
        metavar="N",
        help="concurrent sessions per figure (default: 1 8)",
    )
    parser.add_argument(
        "--servers", nargs="+", metavar="NAME", help="only these: instant aiosmtpd fake_ses maildev"
    )
    args = parser.parse_args(argv)
    concurrency = tuple(args.concurrency)
    if args.quick:
        args.seconds, args.repeats = 0.5, 1
    names = ["instant", "aiosmtpd", "fake_ses"]
    missing = "left out (--no-maildev)" if args.no_maildev else maildev_missing()
    if missing:
        print(f"maildev: {missing}; measuring without it")
    else:
        names.append("maildev")
    if args.servers:
        names = [n for n in names if n in args.servers]
    if args.uvloop:
        if importlib.util.find_spec("uvloop") is None:
            print("uvloop is not installed (pip install 'ses-fault-harness[fast]'); leaving it out")
        else:
            names.append("fake_ses+uvloop")

    rates: dict[tuple[str, int], list[float]] = {}
    cpu_us: dict[tuple[str, int], list[float]] = {}
    for repeat in range(args.repeats):
        for sessions in concurrency:
            for name in names:
                per_s, us = measure(name, sessions, args.seconds, args.processes, args.body_bytes)
                rates.setdefault((name, sessions), []).append(per_s)
                cpu_us.setdefault((name, sessions), []).append(us)
        print(f"repeat {repeat + 1}/{args.repeats} done", file=sys.stderr)

    def ratio(a: str, b: str, sessions: int) -> float:
        pairs = zip(rates[(a, sessions)], rates[(b, sessions)], strict=True)
        return statistics.median(x / y for x, y in pairs)

    print(
        f"\nmessages/s ({args.body_bytes} B messages, pipelined, {args.seconds:g} s per figure, "
        f"median of {args.repeats})"
    )
    print(
        f"{'server':<16}"
        + "".join(f"{f'{c} session' + ('s' if c > 1 else ''):>14}" for c in concurrency)
    )
    medians = {}
    for name in names:
        row = [statistics.median(rates[(name, c)]) for c in concurrency]
        medians[name] = dict(zip(map(str, concurrency), row, strict=True))
        print(f"{name:<16}" + "".join(f"{r:>14.0f}" for r in row))
    print("\nserver CPU time per message, microseconds (user + system of its process)")
    for name in names:
        row = [statistics.median(cpu_us[(name, c)]) for c in concurrency]
        medians[name].update({f"cpu_us_{c}": r for c, r in zip(concurrency, row, strict=True)})
        print(f"{name:<16}" + "".join(f"{r:>14.0f}" for r in row))
    print("\nratios (median of per-repeat ratios)")
    comparisons = [
        ("fake_ses", "aiosmtpd", "target >= 1.0"),
        ("fake_ses", "maildev", "target >= 1.5"),
        ("fake_ses+uvloop", "aiosmtpd", ""),
        ("fake_ses+uvloop", "fake_ses", ""),
    ]
    comparisons.append(("instant", "fake_ses", "load generator headroom"))
    comparisons = [(a, b, n) for a, b, n in comparisons if a in names and b in names]
    ratios = {}
    for a, b, note in comparisons:
        values = [ratio(a, b, c) for c in concurrency]
        ratios[f"{a}/{b}"] = dict(zip(map(str, concurrency), values, strict=True))
        print(f"{a + ' / ' + b:<30}" + "".join(f"{v:>10.2f}x" for v in values) + f"   {note}")
    if args.json:
        args.json.write_text(json.dumps({"messages_per_s": medians, "ratios": ratios}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
