"""One client connection of the proxy: the fake server's session, relaying to an upstream.

The plan decides first, exactly as in `SesSMTP._on_command`: a limit or a rule that answers
answers the client without relaying; a delay or a stall holds the client. What the plan lets
through is relayed: MAIL, RCPT, RSET, NOOP and QUIT through aiosmtpd's handler hooks, AUTH
(unless the proxy logs in with its own credentials), and the message at its end of data. The
upstream's reply goes back to the client as it was sent; the ledger records it (`ServerLine`
with `decided_by="upstream"`) beside what was said to the upstream and what it answered
(`UpstreamCommand`, `UpstreamReply`).

The proxy answers DATA's 354 itself and relays the message once the plan has accepted it (the
proxy holds the message until then, so a plan's 454 at the end of data reaches the upstream
as nothing more than a transaction it resets). A message is recorded accepted only when the
upstream accepted it, before its 250 goes back (or before the cut of `drop_after_accept`).
The upstream connection opens at the client's first AUTH or MAIL FROM, with the client's EHLO
name, and closes with the client's session.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import MISSING, AuthResult, Envelope, LoginPassword

from harness.base.headers import parse_headers
from harness.base.records import EOM, ClientLine, ServerLine, UpstreamCommand, UpstreamReply
from harness.core.decision import Outcome
from harness.core.plan import Stage
from harness.server.protocol import SesSMTP
from harness.server.relay.recording import Recorder
from harness.server.relay.upstream import Reply, Upstream, UpstreamConfig, UpstreamError
from harness.server.state import ServerState

#: What a reply the upstream gave names in `ServerLine.decided_by`.
UPSTREAM = "upstream"
# MAIL and RCPT parameters passed on when the upstream announces the extension they belong to.
_EXTENSION_OF = {
    "SIZE": "SIZE",
    "BODY": "8BITMIME",
    "SMTPUTF8": "SMTPUTF8",
    "RET": "DSN",
    "ENVID": "DSN",
    "NOTIFY": "DSN",
    "ORCPT": "DSN",
}


@dataclass(frozen=True)
class Relay:
    """What every connection of one proxy shares: where to relay, and the recording."""

    config: UpstreamConfig
    recorder: Recorder | None = None


class RelaySMTP(SesSMTP):
    def __init__(self, state: ServerState, relay: Relay) -> None:
        super().__init__(state)
        self.relay = relay
        self._upstream: Upstream | None = None
        self._upstream_open = False  # a transaction the upstream may still hold
        self._pending_login: tuple[str, str] | None = None
        self._relayed: Reply | None = None  # an AUTH reply aiosmtpd is about to push
        self._handle_hooks.update(
            MAIL=self._hook_mail,
            RCPT=self._hook_rcpt,
            RSET=self._hook_simple("RSET"),
            NOOP=self._hook_simple("NOOP"),
            QUIT=self._hook_quit,
        )

    # --- the upstream connection -----------------------------------------------------------

    async def _ready(self) -> Upstream:
        if self._upstream is None:
            self._upstream = Upstream(self.relay.config, self._upstream_line)
            helo = (self.session.host_name if self.session else None) or self.hostname
            await self._upstream.open(helo)
        elif self._upstream.closed:
            raise UpstreamError(f"{self.relay.config.address} closed the connection")
        return self._upstream

    def _upstream_line(
        self, stage: str, sent: bool, text: str, code: int | None, last: bool
    ) -> None:
        at = self.state.clock.now()
        line: UpstreamCommand | UpstreamReply
        if sent:
            line = UpstreamCommand(at, text, stage=stage)
        else:
            line = UpstreamReply(at, code, text, stage=stage, last=last)
        if self.record is not None:  # the ledger's; not the client's side (self._log)
            self.state.ledger.log(self.record, line)
        if self.relay.recorder is not None:
            self.relay.recorder.line(self.number, stage, sent, text, code, last)

    async def _relay(self, stage: str, line: str) -> Reply | None:
        """Relay one command and pass the reply back; None when the upstream failed (the
        client then has its 421 and the session is over)."""
        try:
            upstream = await self._ready()
            if stage == "MAIL" and self._upstream_open:
                await upstream.command("RSET", "RSET")  # a transaction the plan ended here
            reply = await upstream.command(stage, line)
        except UpstreamError as error:
            await self._upstream_failed(error)
            return None
        if stage in ("MAIL", "RSET"):
            self._upstream_open = stage == "MAIL" and reply.positive
        await self._pass_back(reply)
        return reply

    async def _pass_back(self, reply: Reply, *, but_last: bool = False) -> ServerLine:
        """Send the upstream's reply to the client (all of it, or all but its last line, which
        is returned); its 421 ends the session."""
        at = self.state.clock.now()
        lines = [
            ServerLine(at, reply.code, text, decided_by=UPSTREAM, last=n == len(reply.lines) - 1)
            for n, text in enumerate(reply.lines)
        ]
        for line in lines[:-1] if but_last else lines:
            await self._send(line)
        if reply.code == 421 and not but_last:
            self._close_upstream(quit=False)  # it is closing
            self._hang_up("server", f"{UPSTREAM}: {reply}")
        return lines[-1]

    async def _upstream_failed(self, error: UpstreamError) -> None:
        """The upstream cannot go on: the client gets a 421 naming why, and the session ends."""
        at = self.state.clock.now()
        await self._send(ServerLine(at, 421, f"4.4.0 Upstream {error.reason}", decided_by=UPSTREAM))
        self._close_upstream(quit=False)
        self._hang_up("server", f"{UPSTREAM}: {error.reason}")

    def _close_upstream(self, *, quit: bool = True) -> None:
        """QUIT the upstream (in the background), or cut it when it is closing or a reply is
        still due (the client left mid-command)."""
        upstream = self._upstream
        if upstream is None or upstream.closed:
            return
        if quit and not upstream.waiting:
            self.loop.create_task(self._quit_upstream(upstream))
        else:
            upstream.abort()

    async def _quit_upstream(self, upstream: Upstream) -> None:
        await upstream.close(quit=True)

    def _timeout_cb(self) -> None:
        # The idle timer is the client's silence: a client waiting for the upstream's reply
        # is not idle (SES's 451 is a "Timeout waiting for data from client").
        if self._upstream is not None and self._upstream.waiting and not self._ended:
            self._reset_timeout()
            return
        super()._timeout_cb()

    def connection_lost(self, error: Exception | None) -> None:
        self._close_upstream()
        super().connection_lost(error)

    # --- aiosmtpd's hooks ------------------------------------------------------------------

    async def _hook_mail(
        self, server: Any, session: Any, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = await self._relay("MAIL", f"MAIL FROM:<{address}>{self._params(options)}")
        if reply is not None and reply.positive:
            envelope.mail_from = address
            envelope.mail_options.extend(options)
        return ""  # answered already

    async def _hook_rcpt(
        self, server: Any, session: Any, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = await self._relay("RCPT", f"RCPT TO:<{address}>{self._params(options)}")
        if reply is not None and reply.positive:
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(options)
        return ""

    def _hook_simple(self, verb: str) -> Any:
        async def hook(server: Any, session: Any, envelope: Any, *args: Any) -> Any:
            if self._upstream is None:  # nothing to relay to yet: the proxy answers
                return MISSING
            await self._relay(verb, verb)
            return ""

        return hook

    async def _hook_quit(self, server: Any, session: Any, envelope: Any) -> Any:
        upstream, self._upstream = self._upstream, None
        if upstream is None or upstream.closed:
            return MISSING
        reply = await upstream.close(quit=True)
        if reply is None:
            return MISSING
        await self._pass_back(reply)
        return ""

    def _params(self, options: list[str]) -> str:
        extensions = self._upstream.extensions if self._upstream else {}
        kept = [o for o in options if _EXTENSION_OF.get(o.partition("=")[0].upper()) in extensions]
        return "".join(f" {option}" for option in kept)

    # --- AUTH: the client's login, checked by the upstream ---------------------------------

    def _check_credentials(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if self.relay.config.credentials is not None or not isinstance(auth_data, LoginPassword):
            return super()._check_credentials(server, session, envelope, mechanism, auth_data)
        login = (
            auth_data.login.decode("utf-8", "replace"),
            auth_data.password.decode("utf-8", "replace"),
        )
        if self.state.credentials is not None and login != self.state.credentials:
            return super()._check_credentials(server, session, envelope, mechanism, auth_data)
        self._pending_login = login  # the upstream decides: see _relay_login
        return AuthResult(success=False, handled=True)

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._relay_login(await super().auth_PLAIN(_, args))

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._relay_login(await super().auth_LOGIN(_, args))

    async def _relay_login(self, result: AuthResult) -> AuthResult:
        login, self._pending_login = self._pending_login, None
        if login is None:
            return result
        try:
            reply = await (await self._ready()).auth(*login)
        except UpstreamError as error:
            await self._upstream_failed(error)
            return AuthResult(success=False, handled=True)
        await self._pass_back(reply, but_last=True)
        self._relayed = reply
        text = f"{reply.code} {reply.lines[-1]}".rstrip()
        if reply.code != 235:
            return AuthResult(success=False, handled=False, message=text)
        if self.record is not None:
            self.record.user = login[0]
        with self.state.lock:
            self.state.engine.authenticated(self.number)
        user, password = (part.encode() for part in login)
        return AuthResult(success=True, auth_data=LoginPassword(user, password), message=text)

    async def push(self, status: str | bytes) -> None:
        relayed, self._relayed = self._relayed, None
        if relayed is not None:  # the upstream's AUTH reply, as it said it
            await self._pass_back(relayed)
            return
        await super().push(status)

    # --- the message -----------------------------------------------------------------------

    async def end_of_message(self, envelope: Envelope) -> ServerLine | None:
        """End of data: the plan decides; what it accepts is relayed, and recorded when the
        upstream accepts it; the upstream's reply is the one to send."""
        assert self.record is not None
        state = self.state
        data: bytes = envelope.original_content or b""
        at = state.clock.now()
        if self._ended:
            self._log(ClientLine(at, EOM, size=len(data)))
            return None
        headers = parse_headers(data)
        message_id = next((v for k, v in headers if k.lower() == "message-id"), None)
        with state.lock:
            decision = state.engine.end_of_data(
                self.number,
                now=state.clock.now(),
                sender=envelope.mail_from or "",
                recipients=tuple(envelope.rcpt_tos),
                key=message_id or hashlib.sha256(data).hexdigest(),
                size=len(data),
            )
            number = state.engine.commands_in(self.number)
        self._log(ClientLine(at, EOM, size=len(data), number=number))
        self._record_faults(decision, Stage.EOM.value)
        if decision.outcome not in (Outcome.ACCEPT, Outcome.DROP_AFTER_ACCEPT):
            await self._carry_out(decision)
            return None
        await self._wait(decision.delay_s)
        try:
            reply = await (await self._ready()).send_message(data)
        except UpstreamError as error:
            await self._upstream_failed(error)
            return None
        self._upstream_open = not reply.positive
        if reply.positive:
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
        if decision.outcome is Outcome.DROP_AFTER_ACCEPT:
            self._drop(decision)
            return None
        last = await self._pass_back(reply, but_last=True)
        if reply.code == 421:
            await self._send(last)
            self._close_upstream(quit=False)
            self._hang_up("server", f"{UPSTREAM}: {reply}")
            return None
        return last
