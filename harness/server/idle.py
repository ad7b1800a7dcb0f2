"""Silence on a connection: the idle timer (one a connection, moved rather than remade on
every command as aiosmtpd does), SES's unprompted 451 when it fires, and whether a pooled
connection is quiet between two tests."""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Any

from harness.base.clock import answered, wall_seconds, wall_until
from harness.server.replies import answer_line

if TYPE_CHECKING:
    from harness.base.records import ServerLine, SessionRecord
    from harness.core.decision import Decision
    from harness.server.state import ServerState

# Without an idle limit (or on a virtual clock), a silent client is still let go eventually.
SAFETY_TIMEOUT_S = 300.0


class IdleTimerMixin:
    """The timer parts of `SesSMTP` (an aiosmtpd `SMTP`); `_timeout_cb` is the SMTP's."""

    state: ServerState
    loop: asyncio.AbstractEventLoop
    _timeout_handle: asyncio.TimerHandle | None
    _idle_deadline: float  # loop time
    _idle_at_s: float | None  # the same on the server's clock (None on a virtual clock)
    _timer_at: float | None  # when the armed timer fires

    number: int
    record: SessionRecord | None
    transport: asyncio.BaseTransport | None
    _reader: asyncio.StreamReader
    _writer: asyncio.StreamWriter
    _ended: bool
    _busy: int
    _in_data: bool

    if TYPE_CHECKING:

        def _record_faults(self, decision: Decision, stage: str) -> None: ...
        def _log(self, line: ServerLine) -> None: ...
        def _flush(self) -> None: ...
        def _hang_up(self, by: str, reason: str, at: float | None = None) -> None: ...

    def _reset_timeout(self, duration: float | None = None) -> None:
        """aiosmtpd calls this on every command; its own cancels the timer and makes a new one.

        Here a later deadline (the usual case) only moves the deadline: the armed timer fires
        first and re-arms itself for what is left, so the timeout still comes exactly
        `duration` after the last command. The deadline is on the server's clock, in SES
        seconds; the loop's timer, on the wall, only says when to look again (a
        ProgressClock's SES time may pass slower than k times the wall).
        """
        limit = self.state.engine.idle_timeout_s(self.number)
        clock = self.state.clock
        if duration is None and limit is not None and not clock.virtual:
            duration = limit
        seconds = duration or SAFETY_TIMEOUT_S
        # A virtual clock's time does not pass on the wall: the safety timeout is the loop's.
        self._idle_at_s = None if clock.virtual else clock.now() + seconds
        deadline = self.loop.time() + wall_seconds(clock, seconds)
        self._idle_deadline = deadline
        if self._timer_at is not None and self._timer_at <= deadline:
            return
        self._arm_timer()

    def _arm_timer(self) -> None:
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()
        self._timer_at = self._idle_deadline
        self._timeout_handle = self.loop.call_at(self._idle_deadline, self._timer_fired)

    def _timer_fired(self) -> None:
        self._timer_at = None
        if self._idle_at_s is not None:  # asked of the clock, every time it fires
            wait_s = wall_until(self.state.clock, self._idle_at_s)
            if wait_s > 0:
                self._idle_deadline = self.loop.time() + wait_s
                self._arm_timer()
                return
        elif self.loop.time() < self._idle_deadline:
            self._arm_timer()
            return
        self._timeout_cb()

    def data_received(self, data: bytes) -> None:
        # SES's 451 is a "Timeout waiting for data from client": bytes arriving (a message
        # sent line by line, slowly) are not silence. aiosmtpd re-arms the timer per command.
        if self._timeout_handle is not None:
            self._reset_timeout()
        if self._in_data and not self._ended:  # a command's own bytes are not activity before it
            with self.state.lock:
                self.state.engine.received(self.number, now=self.state.clock.now())
        super().data_received(data)

    def _timeout_cb(self) -> None:
        limit = self.state.engine.idle_timeout_s(self.number)
        if self._ended or self.record is None or limit is None or self.state.clock.virtual:
            self._hang_up("server", "safety timeout")
            return
        with self.state.lock:
            decision = self.state.engine.idle_timeout(self.number)
        self._record_faults(decision, "IDLE")
        assert decision.reply is not None
        line = answer_line(decision.reply, self.state.clock.now(), decision.decided_by)
        self._log(line)
        self._flush()
        answered(self.state.clock)
        self._writer.write(line.text.encode() + b"\r\n")  # unprompted, as SES does
        self._hang_up("server", decision.decided_by or "server")

    def quiet(self) -> bool:
        """True when the client is neither talking nor hanging up: nothing unread, here or in
        the kernel (a FIN counts as something). A pooled connection between two tests is quiet;
        one whose client just closed is not, though its `connection_lost` has not run yet."""
        reader: Any = self._reader
        if self._ended or self._busy or reader._buffer or reader.at_eof():
            return False
        sock = self.transport.get_extra_info("socket") if self.transport else None
        if sock is None:
            return False
        peek = socket.socket(fileno=sock.fileno())
        try:
            peek.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True  # open, and nothing sent
        except OSError:
            return False
        finally:
            peek.detach()  # the fd stays the transport's
        return False  # data or end of file waiting to be read
