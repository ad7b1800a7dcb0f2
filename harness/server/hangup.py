"""Whether a client hung up waiting for a reply: what a client whose own timeout fired does.

A client on a fast clock (a process run by the harness through libfaketime) has timeouts k times
shorter in wall time than it set them, so whether one fires is up to the machine's load: the
session records it (`SessionRecord.hung_up_waiting_at`) and the case says its counts depend on
time (harness.runner.scale.hung_up_waiting). Seen two ways: the connection ended while a command
had no reply yet, or a reply was about to be written to a client that had gone already.
"""

from __future__ import annotations

from harness.base.records import ClientLine, ServerLine, SessionRecord


class HangUpMixin:
    record: SessionRecord | None
    _waiting_since: float | None = None  # a command's time, until its reply

    def _note_line(self, line: ClientLine | ServerLine) -> None:
        """Keep track of the command waiting for its reply (none after QUIT)."""
        if isinstance(line, ClientLine):
            self._waiting_since = line.at if line.verb != "QUIT" else None
        elif line.last:
            self._waiting_since = None

    def _note_end(self, by: str) -> None:
        """The session is over: a command still waiting, when the client ended it."""
        if by == "client" and self._waiting_since is not None:
            self._hung_up_waiting(self._waiting_since)

    def _hung_up_waiting(self, at: float) -> None:
        if self.record is not None and self.record.hung_up_waiting_at is None:
            self.record.hung_up_waiting_at = at
