"""One connection of the fake server: an aiosmtpd `SMTP` that asks the engine before acting.

Every command goes through :meth:`SesSMTP._on_command`, which logs it, asks the core for a
decision and carries it out (reply, close, drop, delay, stall) before aiosmtpd's own handling.
Replies pass through :meth:`push`, which logs them and maps aiosmtpd's fixed wordings onto the
profile's. aiosmtpd traps handled here: a hook's 421 does not close the connection, a hook
that answers must leave nothing more to be written, and an AUTH answer longer than a line made
aiosmtpd report its own ValueError (see :meth:`SesSMTP.challenge_auth`).
"""

from __future__ import annotations

import asyncio
import binascii
import functools
import hashlib
import re
import socket
from base64 import b64decode, b64encode
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from typing import Any

from aiosmtpd.smtp import (
    MISSING,
    SMTP,
    AuthResult,
    Envelope,
    LoginPassword,
    Session,
    TLSSetupException,
    syntax,
)

from harness.base.clock import wall_seconds
from harness.base.endpoint import TlsMode
from harness.base.ledger import FaultRecord, SessionRecord, parse_headers
from harness.core.address import is_mailbox
from harness.core.engine import Decision, Outcome
from harness.core.plan import STAGES, Stage
from harness.server.data import read_message
from harness.server.handler import SesHandler
from harness.server.state import ServerState

# Without a profile limit, bodies are still capped so a runaway client cannot exhaust memory.
HARD_SIZE_CAP = 64 * 1024 * 1024
# Without an idle limit (or on a virtual clock), a silent client is still let go eventually.
SAFETY_TIMEOUT_S = 300.0
OVERSIZE = "552 Error: Too much mail data"  # aiosmtpd's wording
MALFORMED = "553 5.1.3 Error: malformed address"  # aiosmtpd's, for what _getaddr refuses
AUTH_LINE_TOO_LONG = "500 5.5.6 Authentication Exchange line is too long"  # RFC 4954 section 4
_ADDRESS = re.compile(r"<([^>]*)>")
# What one read from the socket may take. asyncio asks recv() for 256 KiB: glibc serves an
# allocation that size with mmap, and the shrink to what arrived and the free each cost a
# system call more, on every read (a command is one read), until the process has freed a block
# larger still (glibc then raises its threshold). Below the 128 KiB it starts at, the buffer
# comes from the heap in any process; a large message simply takes more reads.
READ_SIZE = 64 * 1024


def _address(arg: str | None) -> str | None:
    if not arg:
        return None
    found = _ADDRESS.search(arg)
    if found:
        return found.group(1)
    _, _, rest = arg.partition(":")
    return rest.strip().split(" ")[0] or None


@functools.lru_cache(maxsize=4096)
def parsed_address(arg: str) -> tuple[str | None, str | None]:
    """aiosmtpd's `SMTP._getaddr`, without its per-call class definition, memoised.

    A batch sender repeats the same few addresses; parsing each with the email package's
    header parser was a quarter of the server's time per message.
    """
    try:
        if arg.lstrip().startswith("<"):
            address, rest = get_angle_addr(arg)
        else:
            address, rest = get_addr_spec(arg)
    except HeaderParseError:
        return None, None
    spec = address.addr_spec
    if spec == "<>":  # the null sender of a bounce
        return spec, rest
    # The parser reads past what SMTP allows (comments, spaces): the address must be the text
    # as sent, and a mailbox.
    path = f"<{spec}>" if arg.lstrip().startswith("<") else spec
    if not is_mailbox(spec) or arg.strip()[: len(path) + 1].rstrip() != path:
        return None, None
    return spec, rest


def _masked(verb: str, arg: str | None) -> str:
    if verb == "AUTH" and arg:
        mechanism = arg.split()[0]
        return f"AUTH {mechanism} ****" if len(arg.split()) > 1 else f"AUTH {mechanism}"
    return verb if arg is None else f"{verb} {arg}"


class _Session(Session):
    """aiosmtpd's Session without the warning its own AUTH code logs on every login (it sets
    the deprecated `login_data` itself; nothing here reads it)."""

    @property
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class SesSMTP(SMTP):
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
        self._in_data = False  # reading message data: what arrives keeps the session alive
        self._busy = 0  # commands being carried out; see quiet()
        replies = engine.replies
        self._wording = {
            "250 OK": str(replies.ok),
            "503 Error: nested MAIL command": str(replies.sender_repeated),
            OVERSIZE: str(replies.too_large),
            "235 2.7.0 Authentication successful": str(replies.auth_ok),
            "535 5.7.8 Authentication credentials invalid": str(replies.auth_invalid),
        }
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
        self.state.ledger.close_session(self.record, by, reason, at)

    async def _handle_client(self) -> None:
        state = self.state
        now = state.clock.now()
        with state.lock:
            self.number, decision = state.engine.connect(now=now)
            greeting = state.engine.greeting(self.number)
        peer = self.session.peer if self.session else None
        peer_text = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.record = state.ledger.open_session(self.number, peer_text, now, state.wall())
        self.record.tls = state.tls is TlsMode.IMPLICIT
        state.record_faults(self.record, 0, Stage.CONNECT.value, decision)
        self.__ident__ = greeting.split(" ", 2)[2]
        if await self._carry_out(decision):
            return
        await super()._handle_client()

    def _reset_timeout(self, duration: float | None = None) -> None:
        """aiosmtpd calls this on every command; its own cancels the timer and makes a new one.

        Here a later deadline (the usual case) only moves `_idle_deadline`: the armed timer
        fires first and re-arms itself for what is left, so the timeout still comes exactly
        `duration` after the last command.
        """
        limit = self.state.engine.limits.idle_timeout_s
        if duration is None and limit is not None and not self.state.clock.virtual:
            duration = limit
        # In SES seconds; the loop's timer runs on the wall (a ScaledClock's is k times faster).
        deadline = self.loop.time() + wall_seconds(self.state.clock, duration or SAFETY_TIMEOUT_S)
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
        if self.loop.time() < self._idle_deadline:
            self._arm_timer()
        else:
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
        limit = self.state.engine.limits.idle_timeout_s
        if self._ended or self.record is None or limit is None or self.state.clock.virtual:
            self._hang_up("server", "safety timeout")
            return
        with self.state.lock:
            decision = self.state.engine.idle_timeout(self.number)
        self._record_faults(decision, "IDLE")
        assert decision.reply is not None
        self._log("<", decision.reply)
        self._flush()
        self._writer.write(decision.reply.encode() + b"\r\n")  # unprompted, as SES does
        self._hang_up("server", "limit:idle_timeout_s")

    def _create_session(self) -> Session:
        return _Session(self.loop)

    async def handle_exception(self, error: Exception) -> str:
        """A STARTTLS handshake that fails (a client that gives up, or never spoke TLS) ends the
        session, as aiosmtpd does, without the traceback aiosmtpd logs for it; anything else
        is a bug and keeps aiosmtpd's handling."""
        if isinstance(error, TLSSetupException):
            cause = error.__cause__
            self._log("<", f"[TLS handshake failed: {cause or 'connection lost'}]")
            return ""
        return await super().handle_exception(error)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        if not arg:
            return "", ""
        address, rest = parsed_address(arg)
        local_part_limit = self.local_part_limit
        if (
            address is not None
            and local_part_limit
            and len(address.rpartition("@")[0]) > (local_part_limit)
        ):
            return None, None
        return address, rest

    async def challenge_auth(
        self, challenge: str | bytes, encode_to_b64: bool = True, log_client_response: bool = False
    ) -> Any:
        """aiosmtpd's, with the client's answer read as a command line is: an answer longer
        than a line may be is read to its end and refused as RFC 4954 says. aiosmtpd's own
        answered `500 Error: (ValueError) ...`, logged a traceback, and read the rest of a long
        answer as commands."""
        raw = challenge.encode() if isinstance(challenge, str) else challenge
        await self.push(b"334 " + (b64encode(raw) if encode_to_b64 else raw))
        line = await self._answer_line()
        if line is None:
            await self.push(AUTH_LINE_TOO_LONG)
            return MISSING
        blob = line.strip()
        if blob == b"*":  # the client gives up (RFC 4954)
            await self.push("501 5.7.0 Auth aborted")
            return MISSING
        try:
            return b64decode(blob, validate=True)
        except binascii.Error:
            await self.push("501 5.5.2 Can't decode base64")
            return MISSING

    async def _answer_line(self) -> bytes | None:
        """The next line; None, once it has been read to its end, when it is too long."""
        too_long = False
        while True:
            try:
                line = await self._reader.readuntil(b"\n")
            except asyncio.LimitOverrunError as overrun:  # the reader keeps at most its limit
                await self._reader.read(overrun.consumed)
                too_long = True
                continue
            except asyncio.IncompleteReadError as closed:  # what came before the close
                line = closed.partial
            return None if too_long or len(line) > self.line_length_limit else line

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
        self._log(">", _masked(verb, arg))
        if self._after_421:
            self.record.commands_after_421 += 1
        if self._ended:  # pipelined behind a hang-up: read, never answered
            return
        self.state.clock.network_delay()
        stage = STAGES.get(verb)
        if stage is Stage.AUTH and self.state.tls is TlsMode.STARTTLS and not self._tls_protocol:
            await self.push(str(self.state.engine.replies.starttls_first))
            return
        if stage is not None:
            envelope = self.envelope
            sender = _address(arg) if stage is Stage.MAIL else envelope.mail_from
            if stage is Stage.RCPT:
                recipient = _address(arg)
                recipients: tuple[str, ...] = (recipient,) if recipient else ()
            else:
                recipients = tuple(envelope.rcpt_tos)
            with self.state.lock:
                decision = self.state.engine.command(
                    self.number,
                    stage,
                    now=self.state.clock.now(),
                    sender=sender,
                    recipients=recipients,
                )
            self._record_faults(decision, stage.value)
            if await self._carry_out(decision):
                return
            if stage is Stage.QUIT and not arg:  # the session ends now, not at the close
                self._quit_at = self.state.clock.now()
        self._verb = verb
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
        if error is not None:
            await self.push(error)
            self._set_post_data_state()
            return
        self.envelope.content = self.envelope.original_content = data
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push(status)

    async def end_of_message(self, envelope: Envelope) -> str:
        """End of data: ask the engine, record an accepted message, then answer (or not)."""
        assert self.record is not None
        state = self.state
        data: bytes = envelope.original_content or b""
        self._log(">", f"[{len(data)} bytes of message data] .")
        if self._ended:
            return ""
        state.clock.network_delay()
        headers = parse_headers(data)
        message_id = next((v for k, v in headers if k.lower() == "message-id"), None)
        key = message_id or hashlib.sha256(data).hexdigest()
        with state.lock:
            decision = state.engine.end_of_data(
                self.number,
                now=state.clock.now(),
                sender=envelope.mail_from or "",
                recipients=tuple(envelope.rcpt_tos),
                key=key,
                size=len(data),
            )
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
            )
            if decision.outcome is Outcome.ACCEPT:
                return decision.reply or ""
            self._drop(decision)
            return ""
        await self._carry_out(decision)
        return ""  # answered already, or silenced

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
            await self.push(decision.reply)
            if decision.close:
                self._hang_up("server", _reason(decision), at=sent_at)
        elif decision.outcome is Outcome.DROP:
            self._drop(decision)
        elif decision.outcome is Outcome.STALL:
            self._flush()
            if decision.stall_s is None:
                await self._lost.wait()
            else:
                await asyncio.sleep(wall_seconds(self.state.clock, decision.stall_s))
                self._drop(decision)
        return True

    async def _wait(self, seconds: float) -> None:
        if seconds <= 0:
            return
        self._flush()  # what was answered before the delay reaches the client before it
        if self.state.clock.virtual:
            self.state.clock.sleep(seconds)
        else:
            await asyncio.sleep(wall_seconds(self.state.clock, seconds))

    def _hang_up(self, by: str, reason: str, at: float | None = None) -> None:
        """Close after what was written is flushed."""
        self._flush()
        self._end(by, reason, at)
        self._silenced = True
        if self.transport is not None:
            self.transport.close()

    def _drop(self, decision: Decision) -> None:
        """Cut the connection at once; nothing buffered or later reaches the client.

        Replies to earlier pipelined commands are written first, as they were due before.
        """
        self._flush()
        self._end("server", _reason(decision))
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

    # --- replies and records ---------------------------------------------------------------

    async def push(self, status: str | bytes) -> None:
        text = status.decode("utf-8", "replace") if isinstance(status, bytes) else status
        if self._silenced or not text:  # "" from a hook that answered (or dropped) already
            return
        if text == OVERSIZE:
            # aiosmtpd enforces the size cap itself while reading; record it like the engine would.
            self._record_limit(
                "max_message_bytes", Stage.EOM, str(self.state.engine.replies.too_large)
            )
        if text == MALFORMED:
            replies = self.state.engine.replies
            text = str(replies.bad_sender if self._verb == "MAIL" else replies.bad_recipient)
        text = self._wording.get(text, text)
        self._log("<", text)
        if text.startswith("421"):
            self._after_421 = True
        if self.number and not self._ended:
            with self.state.lock:
                self.state.engine.replied(self.number, now=self.state.clock.now())
        if self._quit_at is not None and text.startswith("221"):
            # Recorded closed before the 221 can reach the client: whoever has the 221 (a test
            # that then reads the ledger) finds the session over, without waiting for the close.
            self._end("client", "client quit", at=self._quit_at)
        self._unsent.append(text.encode("utf-8" if self.enable_SMTPUTF8 else "ascii") + b"\r\n")
        if text[3:4] == "-":
            # Not the last line of a multi-line reply (EHLO's): the rest follows at once, and
            # the client reads until the last line; one write for the whole reply.
            return
        if text.startswith("250") and b"\n" in self._reader._buffer:  # type: ignore[attr-defined]
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
            self._writer.write(b"".join(self._unsent))
            self._unsent.clear()

    def _log(self, direction: str, text: str) -> None:
        if self.record is not None:
            self.state.ledger.log(self.record, direction, text, self.state.clock.now())

    def _record_faults(self, decision: Decision, stage: str) -> None:
        if decision.fired and self.record is not None:
            self.state.record_faults(self.record, self._command_number(), stage, decision)

    def _record_limit(self, name: str, stage: Stage, reply: str) -> None:
        if self.record is not None:
            self.state.ledger.fault(
                FaultRecord(
                    session=self.number,
                    command=self._command_number(),
                    stage=stage.value,
                    source="limit",
                    name=name,
                    action="reply",
                    reply=reply,
                    at=self.state.clock.now(),
                )
            )

    def _command_number(self) -> int:
        return self.state.engine.commands_in(self.number)

    def _check_credentials(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        replies = self.state.engine.replies
        if isinstance(auth_data, LoginPassword):
            user = auth_data.login.decode("utf-8", "replace")
            password = auth_data.password.decode("utf-8", "replace")
            expected = self.state.credentials
            if expected is None or (user, password) == expected:
                if self.record is not None:
                    self.record.user = user
                with self.state.lock:
                    self.state.engine.authenticated(self.number)
                return AuthResult(success=True, auth_data=auth_data, message=str(replies.auth_ok))
        return AuthResult(success=False, handled=False, message=str(replies.auth_invalid))


_HOOK_NAMES = tuple(sorted(n for n in dir(SesSMTP) if n.startswith(("smtp_", "auth_"))))


def _reason(decision: Decision) -> str:
    if not decision.fired:
        return "server"
    fired = decision.fired[-1]
    return f"{fired.source}:{fired.name}"
