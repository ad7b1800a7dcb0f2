"""One connection of the fake server: an aiosmtpd `SMTP` that asks the engine before acting.

Every command goes through :meth:`SesSMTP._on_command`, which asks the core for a decision,
records the command as data (verb, address, the engine's number for it) and carries the
decision out (reply, close, drop, delay, stall) before aiosmtpd's own handling. The engine's
replies come as data (code, text, what decided them); aiosmtpd's own pass through :meth:`push`,
which says them in the profile's words (`harness.server.replies`). Every reply is recorded and
written by :meth:`_send`. aiosmtpd traps handled here: a hook's 421 does not close the
connection, and a hook that answers must leave nothing more to be written. AUTH is in
`harness.server.auth`, the idle timer in `harness.server.idle`.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, TLSSetupException, syntax

from harness.base.clock import answered, arrived, sleep_on, wall_seconds
from harness.base.endpoint import TlsMode
from harness.base.headers import first, parse_headers
from harness.base.records import EOM, ClientLine, ServerLine, SessionRecord
from harness.core.decision import Decision, Outcome
from harness.core.plan import STAGES, Stage
from harness.server.addresses import masked, parsed_address, path_of
from harness.server.auth import AuthMixin, QuietSession
from harness.server.data import TOO_MUCH, read_message
from harness.server.handler import SesHandler
from harness.server.hangup import HangUpMixin
from harness.server.idle import SAFETY_TIMEOUT_S, IdleTimerMixin
from harness.server.replies import Wording, answer_line
from harness.server.state import ServerState

# Without a profile limit, bodies are still capped so a runaway client cannot exhaust memory.
HARD_SIZE_CAP = 64 * 1024 * 1024
# What one read from the socket may take. asyncio asks recv() for 256 KiB: glibc serves an
# allocation that size with mmap, and the shrink to what arrived and the free each cost a
# system call more, on every read (a command is one read), until the process has freed a block
# larger still (glibc then raises its threshold). Below the 128 KiB it starts at, the buffer
# comes from the heap in any process; a large message simply takes more reads.
READ_SIZE = 64 * 1024


class SesSMTP(AuthMixin, IdleTimerMixin, HangUpMixin, SMTP):
    def __init__(self, state: ServerState) -> None:
        engine = state.engine
        super().__init__(
            SesHandler(engine.replies),
            hostname=engine.replies.host,
            data_size_limit=engine.limits.max_message_bytes or HARD_SIZE_CAP,
            tls_context=state.ssl_context if state.tls is TlsMode.STARTTLS else None,
            auth_require_tls=False,  # the SES wording for it is sent from _on_command
            authenticator=self._check_credentials,
            timeout=SAFETY_TIMEOUT_S,
            # Gmail and Microsoft 365 say SMTPUTF8 last: what is advertised is taken.
            enable_SMTPUTF8=engine.replies.ehlo_last.upper() == "SMTPUTF8",
        )
        self.state = state
        self.number = 0
        self.record: SessionRecord | None = None
        self._silenced = False  # after a drop nothing more may reach the client
        self._ended = False  # the engine and the ledger know the session is over
        self._after_421 = False
        self._quit_at: float | None = None  # when the client said QUIT
        self._lost = asyncio.Event()
        self._unsent: list[bytes] = []  # replies held back to go out with the next ones
        self._idle_deadline = 0.0  # loop time; see _reset_timeout
        self._timer_at: float | None = None  # when the armed timer fires
        self._verb = ""  # the command being carried out, for the wording of its errors
        self._path: str | None = None  # its MAIL FROM / RCPT TO path, as the ledger has it
        self._in_data = False  # reading message data: what arrives keeps the session alive
        self._busy = 0  # commands being carried out; see quiet()
        self._wording = Wording(engine.replies)
        self._smtp_methods = {
            verb: self._intercepted(verb, method) for verb, method in self._smtp_methods.items()
        }

    def __dir__(self) -> list[str]:
        # aiosmtpd's __init__ finds its command and AUTH methods with dir() and
        # inspect.getmembers() on every new connection; listing only those names makes that
        # ~200 us cheaper per connection (a reconnecting client opens hundreds).
        return list(_HOOK_NAMES)

    # --- connection lifecycle --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        upgraded = self.transport is not None
        if hasattr(transport, "max_size"):  # a plain socket's (TLS reads into its own buffer)
            transport.max_size = READ_SIZE  # type: ignore[attr-defined]
        super().connection_made(transport)
        if upgraded and self.record is not None:
            self.record.tls = True
            if not self._ended:
                with self.state.lock:
                    self.state.engine.encrypted(self.number)
        self.state.live.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self.state.live.discard(self)
        self._lost.set()
        if self._quit_at is not None:
            self._end("client", "client quit", at=self._quit_at)
        else:
            self._end("client", "client disconnected")
        super().connection_lost(error)

    def _end(self, by: str, reason: str, at: float | None = None) -> None:
        """Tell the engine, then the ledger, that the session is over; once.

        After this the connection no longer talks to the engine: a `reset()` may have forgotten
        its session number (or given it to a new connection) while the socket still closes.
        """
        if self._ended or self.record is None:
            return
        self._ended = True
        with self.state.lock:
            self.state.engine.disconnected(self.number)
        at = self.state.clock.now() if at is None else at
        self._note_end(by)
        self.state.ledger.close_session(self.record, by, reason, at)

    async def _handle_client(self) -> None:
        state = self.state
        arrived(state.clock)  # the client waits for the greeting
        now = state.clock.now()
        with state.lock:
            starttls = state.tls is TlsMode.STARTTLS
            self.number, decision = state.engine.connect(now=now, starttls=starttls)
            ident = state.engine.ident(self.number)
        peer = self.session.peer if self.session else None
        peer_text = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.record = state.ledger.open_session(self.number, peer_text, now, state.wall())
        self.record.tls = state.tls is TlsMode.IMPLICIT
        state.record_faults(self.record, 0, Stage.CONNECT.value, decision)
        self.__ident__ = ident  # aiosmtpd says "220 {hostname} {__ident__}"
        if await self._carry_out(decision):
            return
        await super()._handle_client()

    def _create_session(self) -> QuietSession:
        return QuietSession(self.loop)

    async def handle_exception(self, error: Exception) -> str:
        """A STARTTLS handshake that fails (a client that gives up, or never spoke TLS) ends the
        session, as aiosmtpd does, without the traceback aiosmtpd logs for it; anything else
        is a bug and keeps aiosmtpd's handling."""
        if isinstance(error, TLSSetupException):
            cause = error.__cause__
            note = f"[TLS handshake failed: {cause or 'connection lost'}]"
            self._log(ServerLine(self.state.clock.now(), None, note))
            return ""
        return await super().handle_exception(error)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        if not arg:
            return "", ""
        address, rest = parsed_address(arg)
        if address is not None and address == self._path:
            # The envelope's copy is the transcript's: one string a recipient, not two.
            address = self._path
        local_part_limit = self.local_part_limit
        if (
            address is not None
            and local_part_limit
            and len(address.rpartition("@")[0]) > (local_part_limit)
        ):
            return None, None
        return address, rest

    # --- commands --------------------------------------------------------------------------

    def _intercepted(self, verb: str, method: Any) -> Any:
        async def run(arg: str | None) -> None:
            self._busy += 1  # a command in hand (a delay, a stall, DATA): not quiet
            try:
                await self._on_command(verb, arg, method)
            finally:
                self._busy -= 1

        return run

    async def _on_command(self, verb: str, arg: str | None, method: Any) -> None:
        assert self.record is not None
        at = self.state.clock.now()
        if self._after_421:
            self.record.commands_after_421 += 1
        stage = STAGES.get(verb)
        address = path_of(arg) if stage in (Stage.MAIL, Stage.RCPT) else None
        if self._ended:  # pipelined behind a hang-up: read, never answered
            self._log(ClientLine(at, verb, masked(verb, arg), address=address))
            return
        self.state.clock.network_delay()
        if stage is None:  # STARTTLS and the like: the engine is not asked
            self._log(ClientLine(at, verb, masked(verb, arg)))
            self._verb = verb
            await method(arg)
            return
        envelope = self.envelope
        sender = address if stage is Stage.MAIL else envelope.mail_from
        if stage is Stage.RCPT:
            recipients: tuple[str, ...] = (address,) if address else ()
        else:
            recipients = tuple(envelope.rcpt_tos)
        with self.state.lock:
            engine = self.state.engine
            before = engine.commands_in(self.number)
            decision = engine.command(
                self.number, stage, now=self.state.clock.now(), sender=sender, recipients=recipients
            )
            number = engine.commands_in(self.number)
        counted = number if number != before else None
        self._log(ClientLine(at, verb, masked(verb, arg), address=address, number=counted))
        self._record_faults(decision, stage.value)
        if await self._carry_out(decision):
            return
        if stage is Stage.QUIT and not arg:  # the session ends now, not at the close
            self._quit_at = self.state.clock.now()
        self._verb, self._path = verb, address
        await method(arg)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA, with the message data read in blocks (see harness.server.data)."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        self._in_data = True
        try:
            data, error = await read_message(
                self._reader, line_limit=self.line_length_limit, size_limit=self.data_size_limit
            )
        except asyncio.CancelledError:  # the connection went away mid-data
            self._writer.close()
            raise
        finally:
            self._in_data = False
        if error == TOO_MUCH:  # the size limit, enforced while reading: the engine's refusal
            await self._oversized()
        elif error is not None:
            await self.push(error)
        else:
            self.envelope.content = self.envelope.original_content = data
            line = await self.end_of_message(self.envelope)
            self._set_post_data_state()
            if line is not None:
                await self._send(line)
            return
        self._set_post_data_state()

    async def _oversized(self) -> None:
        assert self.record is not None
        if self._ended:
            return
        with self.state.lock:
            decision = self.state.engine.too_large(self.number)
        self._record_faults(decision, Stage.EOM.value)
        await self._carry_out(decision)

    async def end_of_message(self, envelope: Envelope) -> ServerLine | None:
        """End of data: ask the engine, record an accepted message; the 250 to send, if any."""
        assert self.record is not None
        state = self.state
        data: bytes = envelope.original_content or b""
        at = state.clock.now()
        if self._ended:
            self._log(ClientLine(at, EOM, size=len(data)))
            return None
        state.clock.network_delay()
        headers = parse_headers(data)
        message_id, tenant = (first(headers, name) for name in ("message-id", "x-ses-tenant"))
        key = message_id or hashlib.sha256(data).hexdigest()
        with state.lock:
            decision = state.engine.end_of_data(
                self.number,
                now=state.clock.now(),
                sender=envelope.mail_from or "",
                recipients=tuple(envelope.rcpt_tos),
                key=key,
                size=len(data),
                tenant=tenant,
            )
            number = state.engine.commands_in(self.number)
        self._log(ClientLine(at, EOM, size=len(data), number=number))
        self._record_faults(decision, Stage.EOM.value)
        if decision.outcome in (Outcome.ACCEPT, Outcome.DROP_AFTER_ACCEPT):
            await self._wait(decision.delay_s)
            assert decision.ses_id is not None
            state.ledger.accept(
                self.record,
                ses_id=decision.ses_id,
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=data,
                at=state.clock.now(),
                wall_at=state.wall(),
                acknowledged=decision.outcome is Outcome.ACCEPT,
                headers=headers,
                command=number,
                tenant=tenant,
                fates=decision.fates,
            )
            if decision.outcome is Outcome.ACCEPT:
                assert decision.reply is not None
                return answer_line(decision.reply, state.clock.now(), decision.decided_by)
            self._drop(decision)
            return None
        await self._carry_out(decision)
        return None  # answered already, or silenced

    # --- carrying decisions out ------------------------------------------------------------

    async def _carry_out(self, decision: Decision) -> bool:
        """Do what the decision says; True when it answered the command itself."""
        await self._wait(decision.delay_s)
        if decision.outcome is Outcome.PROCEED:
            return False
        if decision.outcome is Outcome.REPLY:
            assert decision.reply is not None
            # The session ends when the reply is sent: once the client has it, it may act
            # (and move a virtual clock) before this coroutine resumes.
            sent_at = self.state.clock.now()
            if not self._silenced:
                await self._send(answer_line(decision.reply, sent_at, decision.decided_by))
            if decision.close:
                self._hang_up("server", decision.decided_by or "server", at=sent_at)
        elif decision.outcome is Outcome.DROP:
            self._drop(decision)
        elif decision.outcome is Outcome.STALL:
            self._flush()
            if decision.stall_s is None:
                await self._lost.wait()
            elif self.state.clock.virtual:
                await asyncio.sleep(wall_seconds(self.state.clock, decision.stall_s))
                self._drop(decision)
            else:
                await sleep_on(self.state.clock, decision.stall_s)
                self._drop(decision)
        return True

    async def _wait(self, seconds: float) -> None:
        if seconds <= 0:
            return
        self._flush()  # what was answered before the delay reaches the client before it
        if self.state.clock.virtual:
            self.state.clock.sleep(seconds)
        else:
            await sleep_on(self.state.clock, seconds)

    def _hang_up(self, by: str, reason: str, at: float | None = None) -> None:
        """Close after what was written is flushed."""
        self._flush()
        answered(self.state.clock)  # a hang-up is the answer too
        self._end(by, reason, at)
        self._silenced = True
        if self.transport is not None:
            self.transport.close()

    def _drop(self, decision: Decision) -> None:
        """Cut the connection at once; nothing buffered or later reaches the client.

        Replies to earlier pipelined commands are written first, as they were due before.
        """
        self._flush()
        answered(self.state.clock)  # a cut connection is the answer too
        self._end("server", decision.decided_by or "server")
        self._silenced = True
        if self.transport is not None:
            self.transport.abort()

    def stop(self) -> None:
        """The server is shutting down."""
        self._hang_up("server", "server stopped")

    def carry_over(self) -> None:
        """A reset (the next test's start) found this connection open: it goes on, afresh.

        Its idle timer restarts from now, as the engine's counters did; called on the loop.
        """
        self._after_421 = False
        if not self._ended:
            self._reset_timeout()

    # --- replies and records ---------------------------------------------------------------

    async def push(self, status: str | bytes) -> None:
        """aiosmtpd's way out for every reply it makes: said in the profile's words."""
        text = status.decode("utf-8", "replace") if isinstance(status, bytes) else status
        if self._silenced or not text:  # "" from a hook that answered (or dropped) already
            return
        await self._send(self._wording.line(text, verb=self._verb, at=self.state.clock.now()))

    async def _send(self, line: ServerLine) -> None:
        """Record a reply, keep the session's state in step with it, and write it."""
        if self._silenced:
            return
        self._log(line)
        if line.last and self._quit_at is None and self._reader.at_eof():
            self._hung_up_waiting(line.at)  # it hung up before its reply was written
        if line.code == 421:
            self._after_421 = True
        if self.number and not self._ended:
            with self.state.lock:
                self.state.engine.replied(self.number, now=self.state.clock.now())
        if self._quit_at is not None and line.code == 221:
            # Recorded closed before the 221 can reach the client: whoever has the 221 (a test
            # that then reads the ledger) finds the session over, without waiting for the close.
            self._end("client", "client quit", at=self._quit_at)
        encoding = "utf-8" if self.enable_SMTPUTF8 else "ascii"
        self._unsent.append(line.text.encode(encoding) + b"\r\n")
        if not line.last:
            # Not the last line of a multi-line reply (EHLO's): the rest follows at once, and
            # the client reads until the last line; one write for the whole reply.
            return
        if line.code == 250 and b"\n" in self._reader._buffer:  # type: ignore[attr-defined]
            # A pipelining client has sent the next command already: its reply goes out with
            # this one, one write (one wake-up of the client) per batch instead of per reply.
            # Only 250s wait: a client may wait for a 354 before it sends the message, and any
            # other reply may come with a change of state (TLS, close).
            return
        self._flush()
        await self._writer.drain()

    def _flush(self) -> None:
        """Write the replies held back, in order."""
        if self._unsent:
            answered(self.state.clock)  # before the client can have them
            self._writer.write(b"".join(self._unsent))
            self._unsent.clear()

    def _log(self, line: ClientLine | ServerLine) -> None:
        self._note_line(line)
        if self.record is not None:
            self.state.ledger.log(self.record, line)

    def _record_faults(self, decision: Decision, stage: str) -> None:
        if decision.fired and self.record is not None:
            command = self.state.engine.commands_in(self.number)
            self.state.record_faults(self.record, command, stage, decision)


_HOOK_NAMES = tuple(sorted(n for n in dir(SesSMTP) if n.startswith(("smtp_", "auth_"))))
