"""Messages/s of the fake SES server next to bare aiosmtpd, Postfix's smtp-sink and maildev.

    python bench/throughput.py [--seconds 3] [--repeats 3] [--quick] [--uvloop]
                               [--modes waiting pipelined] [--concurrency 1 8] [--servers ...]

Every server runs in its own process; the load comes from bench/loadgen.py's worker processes
(1 KB messages). The headline is the `waiting` client: each command after the reply to the one
before, the message after DATA's 354, as RFC 2920 requires and as mailers send. The
`pipelined` client (the whole transaction in one write, the body before the 354, which RFC
2920 forbids) is measured beside it: it is what this benchmark used to print, and it flatters
a server that answers a batch of commands in one write, as the fake server does.

Each repeat measures every server once per client and concurrency, one after the other, so
each ratio compares figures taken moments apart on a shared machine; the tables show medians
over the repeats, and every ratio is against bare aiosmtpd (the library the fake server is
built on) measured in the same run. `smtp_sink` is Postfix's C test server (Debian's postfix
package), a fast server that does nothing with the mail; when it is missing its row is left
out and the reason printed. The `instant` row is an asyncio sink that answers at once: the
load generator's own ceiling, which must sit well above every server for the other figures
to mean anything.

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
from peers import cpu_s, maildev_missing, serving, smtp_sink_missing

CONCURRENCY = (1, 8)
MODES = ("waiting", "pipelined")
BASELINE = "aiosmtpd"
#: (server, against, note): every server against the baseline, then the pairs with a target.
COMPARISONS = (
    ("fake_ses", BASELINE, "target >= 1.0"),
    ("smtp_sink", BASELINE, "Postfix's C sink"),
    ("maildev", BASELINE, ""),
    ("fake_ses+uvloop", BASELINE, ""),
    ("fake_ses", "smtp_sink", ""),
    ("fake_ses", "maildev", "target >= 1.5"),
    ("instant", "fake_ses", "load generator headroom"),
)


def measure(
    name: str, mode: str, sessions: int, seconds: float, processes: int, body_bytes: int
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
                pipelined=mode == "pipelined",
            )
        )
        cpu_used = cpu_s(peer.pid) - cpu_before
    if result.refused:
        raise RuntimeError(f"{name} refused {result.refused} messages: the load hit a limit")
    if peer.ledger and peer.ledger["acknowledged"] < result.acked:
        raise RuntimeError(f"{name} acknowledged more than its ledger holds: {peer.ledger}")
    return result.per_s, 1e6 * cpu_used / max(1, result.acked)


def servers(args: argparse.Namespace) -> list[str]:
    """The servers to measure; each one left out is said, with why."""
    names = ["instant", "aiosmtpd", "fake_ses"]
    for name, missing in (
        ("smtp_sink", "left out (--no-smtp-sink)" if args.no_smtp_sink else smtp_sink_missing()),
        ("maildev", "left out (--no-maildev)" if args.no_maildev else maildev_missing()),
    ):
        if missing:
            print(f"{name}: {missing}; measuring without it")
        else:
            names.append(name)
    if args.servers:
        names = [n for n in names if n in args.servers]
    if args.uvloop:
        if importlib.util.find_spec("uvloop") is None:
            print("uvloop is not installed (pip install 'ses-fault-harness[fast]'); leaving it out")
        else:
            names.append("fake_ses+uvloop")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--processes", type=int, default=2, help="load generator processes")
    parser.add_argument("--body-bytes", type=int, default=1024)
    parser.add_argument("--quick", action="store_true", help="0.5 s, one repeat")
    parser.add_argument("--uvloop", action="store_true", help="also the fake server on uvloop")
    parser.add_argument("--no-maildev", action="store_true", help="leave maildev out")
    parser.add_argument("--no-smtp-sink", action="store_true", help="leave smtp-sink out")
    parser.add_argument("--json", type=Path, help="write the medians and ratios here")
    parser.add_argument(
        "--modes", nargs="+", choices=MODES, default=list(MODES), help="the clients (see above)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=list(CONCURRENCY),
        metavar="N",
        help="concurrent sessions per figure (default: 1 8)",
    )
    parser.add_argument(
        "--servers",
        nargs="+",
        metavar="NAME",
        help="only these: instant aiosmtpd fake_ses smtp_sink maildev",
    )
    args = parser.parse_args(argv)
    concurrency = tuple(args.concurrency)
    if args.quick:
        args.seconds, args.repeats = 0.5, 1
    names = servers(args)

    rates: dict[tuple[str, str, int], list[float]] = {}
    cpu_us: dict[tuple[str, str, int], list[float]] = {}
    for repeat in range(args.repeats):
        for mode in args.modes:
            for sessions in concurrency:
                for name in names:
                    per_s, us = measure(
                        name, mode, sessions, args.seconds, args.processes, args.body_bytes
                    )
                    rates.setdefault((name, mode, sessions), []).append(per_s)
                    cpu_us.setdefault((name, mode, sessions), []).append(us)
        print(f"repeat {repeat + 1}/{args.repeats} done", file=sys.stderr)

    def ratio(a: str, b: str, mode_a: str, mode_b: str, sessions: int) -> float:
        pairs = zip(rates[(a, mode_a, sessions)], rates[(b, mode_b, sessions)], strict=True)
        return statistics.median(x / y for x, y in pairs)

    header = f"{'server':<16}" + "".join(
        f"{f'{c} session' + ('s' if c > 1 else ''):>14}" for c in concurrency
    )
    figures: dict[str, dict[str, object]] = {}
    for mode in args.modes:
        title = {
            "waiting": "a client that waits for each reply (the headline)",
            "pipelined": "the whole transaction in one write, body before the 354 (RFC 2920 "
            "forbids it)",
        }[mode]
        print(
            f"\n== {mode}: {title}\nmessages/s ({args.body_bytes} B messages, "
            f"{args.seconds:g} s per figure, median of {args.repeats})\n{header}"
        )
        medians: dict[str, dict[str, float]] = {}
        for name in names:
            row = [statistics.median(rates[(name, mode, c)]) for c in concurrency]
            medians[name] = dict(zip(map(str, concurrency), row, strict=True))
            print(f"{name:<16}" + "".join(f"{r:>14.0f}" for r in row))
        print("server CPU time per message, microseconds (user + system of its process)")
        for name in names:
            row = [statistics.median(cpu_us[(name, mode, c)]) for c in concurrency]
            medians[name].update({f"cpu_us_{c}": r for c, r in zip(concurrency, row, strict=True)})
            print(f"{name:<16}" + "".join(f"{r:>14.0f}" for r in row))
        print("ratios (median of per-repeat ratios)")
        ratios = {}
        for a, b, note in COMPARISONS:
            if a in names and b in names:
                values = [ratio(a, b, mode, mode, c) for c in concurrency]
                ratios[f"{a}/{b}"] = dict(zip(map(str, concurrency), values, strict=True))
                line = "".join(f"{v:>10.2f}x" for v in values)
                print(f"{a + ' / ' + b:<30}{line}   {note}")
        figures[mode] = {"messages_per_s": medians, "ratios": ratios}
    if set(MODES) <= set(args.modes):
        print("\n== waiting / pipelined, each server (what the RFC's client costs it)")
        costs = {}
        for name in names:
            values = [ratio(name, name, "waiting", "pipelined", c) for c in concurrency]
            costs[name] = dict(zip(map(str, concurrency), values, strict=True))
            print(f"{name:<30}" + "".join(f"{v:>10.2f}x" for v in values))
        figures["waiting/pipelined"] = costs
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
