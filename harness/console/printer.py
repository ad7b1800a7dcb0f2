"""What `ses-harness serve` prints goes out through a `Printer`: printing never decides whether
mail is accepted.

The live log is written from the ledger's sink, inside the server's loop, while a message is
being accepted. Written there directly, a reader that went away (`serve | head`) made every
send fail with `500 Error: (BrokenPipeError)`, and a reader that stopped reading filled the pipe
and blocked the whole loop on the write. A Printer hands each line to a thread of its own that
writes to the stream's file descriptor, so:

- a full pipe costs lines, not time: past `QUEUE_LINES` waiting, new lines are dropped and
  counted, and a line in the log says how many when it flows again;
- a closed stdout ends the printing, and mail goes on;
- each is said once on stderr.

A stream without a file descriptor (a test's StringIO) is written to directly, with the same
care for errors.
"""

from __future__ import annotations

import collections
import contextlib
import io
import os
import sys
import threading
from typing import TextIO

#: Lines that may wait for a slow reader before new ones are dropped (about 2 MB of log).
QUEUE_LINES = 10_000


class Printer:
    """A line-by-line writer to `stream` that never blocks its caller and never raises.

    >>> printer = Printer(io.StringIO())
    >>> printer.write("hello\\n")
    >>> printer.close()
    True
    """

    def __init__(
        self, stream: TextIO, *, errors: TextIO | None = None, queue_lines: int = QUEUE_LINES
    ) -> None:
        self.stream = stream
        self.queue_lines = queue_lines
        self.errors = errors
        self.dropped = 0  # lines a slow reader cost, in all
        self.gone = False  # the reader went away: nothing more is written
        self._unreported = 0  # dropped lines the log has not been told of yet
        self._said: set[str] = set()
        self._lines: collections.deque[str] = collections.deque()
        self._ready = threading.Condition()
        self._closing = False
        self._encoding = getattr(stream, "encoding", None) or "utf-8"
        self._fd = _fd(stream)
        self._thread: threading.Thread | None = None
        if self._fd is not None:
            self._thread = threading.Thread(target=self._run, name="ses-harness-log", daemon=True)
            self._thread.start()

    def write(self, text: str) -> None:
        """Queue `text` (whole lines) for the stream; dropped if the reader is too far behind."""
        if self.gone:
            return
        if self._thread is None:
            self._write_now(text)
            return
        with self._ready:
            if len(self._lines) >= self.queue_lines:
                self.dropped += 1
                self._unreported += 1
                if self.dropped == 1:
                    self._say(
                        "stdout is not being read: live log lines are dropped while it is full "
                        "(mail is still accepted)"
                    )
                return
            self._lines.append(text)
            self._ready.notify()

    def flush(self) -> None:
        """Lines go out as soon as the thread can write them; nothing to do here."""

    def close(self, timeout_s: float = 5.0) -> bool:
        """Write what is queued (for at most `timeout_s`: a reader that stopped reading does not
        hold up the exit) and stop; True if everything queued was written or the reader left."""
        if self._thread is None:
            return True
        with self._ready:
            self._closing = True
            self._ready.notify()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            return False  # stuck in a write to a reader that stopped reading: left to exit
        assert self._fd is not None
        with contextlib.suppress(OSError):
            os.close(self._fd)
        return True

    # --- the writing thread ----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._lines and not self._closing:
                    self._ready.wait()
                if not self._lines:
                    return
                batch = "".join(self._lines)
                self._lines.clear()
                if self._unreported:
                    batch += f"({self._unreported:,} log lines dropped: stdout was not read)\n"
                    self._unreported = 0
            if not self._write_fd(batch.encode(self._encoding, "backslashreplace")):
                return

    def _write_fd(self, data: bytes) -> bool:
        assert self._fd is not None
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as error:
            self._left(error)
            return False
        return True

    def _write_now(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError) as error:  # a closed pipe, a closed file
            self._left(error)

    def _left(self, error: Exception) -> None:
        self.gone = True
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        self._say(f"the live log's reader is gone ({reason}): no more log lines; mail goes on")

    def _say(self, text: str) -> None:
        """One line on stderr, once for each thing said."""
        if text in self._said:
            return
        self._said.add(text)
        with contextlib.suppress(OSError, ValueError):  # stderr gone too: no one left to tell
            print(f"ses-harness: {text}", file=self.errors or sys.stderr, flush=True)


def _fd(stream: TextIO) -> int | None:
    """A duplicate of `stream`'s file descriptor, written to by the thread alone: no Python
    lock on stdout is held by a thread that may be stuck in a write at exit."""
    try:
        fd = stream.fileno()
        stream.flush()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    try:
        return os.dup(fd)
    except OSError:
        return None
