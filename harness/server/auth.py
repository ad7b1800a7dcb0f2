"""AUTH for the fake server's connections: credentials checked against the configured pair,
and an over-long answer refused as RFC 4954 says (aiosmtpd's own answered with its
ValueError, logged a traceback and read the rest of a long answer as commands)."""

from __future__ import annotations

import asyncio
import binascii
from base64 import b64decode, b64encode
from typing import TYPE_CHECKING, Any

from aiosmtpd.smtp import MISSING, AuthResult, LoginPassword, Session

from harness.server.replies import AUTH_LINE_TOO_LONG

if TYPE_CHECKING:
    from harness.base.records import SessionRecord
    from harness.server.state import ServerState


class QuietSession(Session):
    """aiosmtpd's Session without the warning its own AUTH code logs on every login (it sets
    the deprecated `login_data` itself; nothing here reads it)."""

    @property
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class AuthMixin:
    """The AUTH parts of `SesSMTP` (an aiosmtpd `SMTP`)."""

    state: ServerState
    number: int
    record: SessionRecord | None
    _reader: asyncio.StreamReader
    line_length_limit: int

    if TYPE_CHECKING:

        async def push(self, status: str | bytes) -> None: ...  # SesSMTP's

    async def challenge_auth(
        self, challenge: str | bytes, encode_to_b64: bool = True, log_client_response: bool = False
    ) -> Any:
        """aiosmtpd's, with the client's answer read as a command line is."""
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

    def _check_credentials(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        replies = self.state.engine.replies
        if isinstance(auth_data, LoginPassword):
            user = auth_data.login.decode("utf-8", "replace")
            password = auth_data.password.decode("utf-8", "replace")
            users = self.state.credentials  # each user's password (None: any)
            if users is None or users.get(user) == password:
                if self.record is not None:
                    self.record.user = user
                with self.state.lock:
                    self.state.engine.authenticated(self.number, user)
                return AuthResult(success=True, auth_data=auth_data, message=str(replies.auth_ok))
        return AuthResult(success=False, handled=False, message=str(replies.auth_invalid))
