"""Peak memory of the fake server while a client sends one line with no CRLF in DATA.

    python bench/long_line.py [--line-mib 1024] [--quick]

After `DATA`, the client writes `--line-mib` chunks of 1 MiB of `C` with no line break, then
`\\r\\n.\\r\\n`, and reads the reply. The server (`ses` profile, its own process) must refuse
the message (552, or 500 for the line) and then accept a normal one on the same connection.
Prints the server's resident memory before and its high-water mark (VmHWM) after, next to the
size cap. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import rss_kib, serving

CHUNK = b"C" * 2**20
TIMEOUT_S = 600.0
MESSAGE = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: after\r\n\r\nHello.\r\n.\r\n"


class Replies:
    """Reply lines from a socket, one at a time (several may arrive in one read)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def next(self) -> bytes:
        """The next complete reply's last line; b"" once the server has closed."""
        while True:
            while b"\r\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\r\n", 1)
                if line[3:4] != b"-":
                    return line
            chunk = self.sock.recv(65536)
            if not chunk:
                return b""
            self.buffer += chunk


def send_long_line(port: int, line_mib: int) -> tuple[bytes, bytes]:
    """The refused long line's reply, and the reply to a normal message after it."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        replies = Replies(sock)
        replies.next()  # greeting
        for command in (b"EHLO bench", b"MAIL FROM:<a@example.com>", b"RCPT TO:<b@example.com>"):
            sock.sendall(command + b"\r\n")
            replies.next()
        sock.sendall(b"DATA\r\n")
        replies.next()
        for _ in range(line_mib):
            sock.sendall(CHUNK)
        sock.sendall(b"\r\n.\r\n")
        refused = replies.next()
        for command in (b"MAIL FROM:<a@example.com>", b"RCPT TO:<b@example.com>", b"DATA"):
            sock.sendall(command + b"\r\n")
            replies.next()
        sock.sendall(MESSAGE)
        after = replies.next()
    return refused, after


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--line-mib", type=int, default=1024, help="length of the line (1024)")
    parser.add_argument("--quick", action="store_true", help="a 64 MiB line")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if args.quick:
        args.line_mib = 64
    with serving("fake_ses") as peer:
        rss_start = rss_kib(peer.pid)
        refused, after = send_long_line(peer.port, args.line_mib)
        peak = rss_kib(peer.pid, "VmHWM")
    from harness.core.profiles import PROFILES

    cap = PROFILES["ses"].limits.max_message_bytes
    figures = {
        "line_mib": args.line_mib,
        "size_cap_mib": round(cap / 2**20, 1) if cap else None,
        "rss_start_mib": round(rss_start / 1024, 1),
        "peak_rss_mib": round(peak / 1024, 1),
        "refused": refused.decode(errors="replace"),
        "after": after.decode(errors="replace")[:40],
    }
    print(f"one line of {args.line_mib} MiB with no CRLF, in DATA (ses profile):")
    print(f"  size cap              {figures['size_cap_mib']} MiB")
    print(f"  server RSS at start   {figures['rss_start_mib']} MiB")
    print(f"  server peak RSS       {figures['peak_rss_mib']} MiB  (VmHWM)")
    print(f"  reply to the line     {figures['refused']}")
    print(f"  next message          {figures['after']}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    ok = figures["refused"][:3] in ("552", "500") and figures["after"].startswith("250")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
