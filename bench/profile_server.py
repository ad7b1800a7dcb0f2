"""Profile the fake server's hot path under the throughput benchmark's load (cProfile).

    python bench/profile_server.py [--sessions 8] [--seconds 5] [--top 30] [--out server.prof]

The server runs in its own process with the profiler on; the load comes from the load
generator's processes. Prints the functions with the most own time and cumulative time.
"""

from __future__ import annotations

import argparse
import pstats
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import Load, drive
from peers import serving


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--out", type=Path, help="keep the stats here (default: a temp file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        out = args.out or Path(folder) / "server.prof"
        with serving("fake_ses", profile=str(out)) as peer:
            result = drive(Load(peer.port, args.sessions, args.processes, seconds=args.seconds))
        print(f"{result.acked} messages in {result.elapsed_s:.1f} s under the profiler")
        stats = pstats.Stats(str(out))
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
