"""The proxy's side toward its upstream server: one SMTP client connection over asyncio streams.

:class:`Upstream` opens the connection (plain, implicit TLS or STARTTLS, the certificate
verified by default), says EHLO, logs in with the proxy's own credentials when it has them,
and then relays one command at a time. Every line it sends and every reply line it reads goes
to `on_line`, which the proxy's session turns into ledger lines and a recording. Any failure
(refused, closed, silent past the timeout, a reply that is not SMTP) is an
:class:`UpstreamError` carrying the reply that caused it, if there was one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NoReturn

from harness.base.endpoint import TlsMode

#: The longest reply line read from an upstream (RFC 5321 allows 512; some servers say more).
REPLY_LINE_LIMIT = 8192
#: Reply lines of one reply read at most (an EHLO has a dozen).
REPLY_LINES_LIMIT = 100


@dataclass(frozen=True)
class UpstreamConfig:
    """Where the proxy relays to, and how.

    `tls`: "none", "starttls" (required: the proxy refuses to go on in the clear when the
    upstream does not offer it) or "implicit". The certificate is verified against the system's
    trust store or `ca_file`, unless `verify` is False. `credentials`: the proxy logs in with
    these (AUTH PLAIN, else LOGIN); None relays the client's own AUTH. `timeout_s` bounds each
    wait for the upstream.

    >>> UpstreamConfig.parse("127.0.0.1:2525").port
    2525
    """

    host: str
    port: int
    tls: TlsMode = TlsMode.NONE
    verify: bool = True
    ca_file: str | None = None
    credentials: tuple[str, str] | None = None
    timeout_s: float = 60.0

    @classmethod
    def parse(cls, text: str, **options: object) -> UpstreamConfig:
        """From "HOST:PORT" ("[::1]:25" for IPv6); ValueError says what was expected."""
        host, sep, port = text.strip().rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected HOST:PORT (e.g. 127.0.0.1:25), got {text!r}")
        config = cls(host, int(port), **options)  # type: ignore[arg-type]
        return config.checked()

    def checked(self) -> UpstreamConfig:
        mode = TlsMode(self.tls)
        if not (self.timeout_s > 0 and self.timeout_s < 86400):
            raise ValueError(f"timeout_s must be above 0 and below 86400, got {self.timeout_s}")
        return UpstreamConfig(
            self.host, self.port, mode, self.verify, self.ca_file, self.credentials, self.timeout_s
        )

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


@dataclass(frozen=True)
class Reply:
    """One whole reply: its code and the text of each line (after the code)."""

    code: int
    lines: tuple[str, ...] = ("",)

    @property
    def positive(self) -> bool:
        return 200 <= self.code < 400

    def __str__(self) -> str:
        return f"{self.code} {self.lines[-1]}".rstrip()


class UpstreamError(Exception):
    """The upstream cannot go on: `reason` in words, `reply` when it answered with a refusal."""

    def __init__(self, reason: str, reply: Reply | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reply = reply


#: on_line(stage, sent, text, code, last): a command sent (code None) or a reply line read.
LineSink = Callable[[str, bool, str, "int | None", bool], None]


@dataclass
class Upstream:
    config: UpstreamConfig
    on_line: LineSink
    extensions: dict[str, str] = field(default_factory=dict)
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None
    closed: bool = True
    waiting: bool = False  # for a reply (or the connection): the client is not idle meanwhile

    async def open(self, helo: str) -> Reply:
        """Connect, read the greeting, EHLO (STARTTLS and EHLO again), AUTH with the proxy's
        credentials; the last reply. Raises UpstreamError when any step is refused."""
        config = self.config
        implicit = config.ssl_context() if config.tls is TlsMode.IMPLICIT else None
        self.waiting = True
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(
                    config.host,
                    config.port,
                    ssl=implicit,
                    server_hostname=config.host if implicit else None,
                    limit=REPLY_LINE_LIMIT,
                ),
                config.timeout_s,
            )
        except (OSError, TimeoutError) as error:
            self.waiting = False
            reason = f"cannot reach {config.address}: {_words(error)}"
            self.on_line("CONNECT", False, f"[{reason}]", None, True)
            raise UpstreamError(reason) from None
        self.closed = False
        greeting = await self._expect("CONNECT", 220)
        reply = await self._ehlo(helo)
        if config.tls is TlsMode.STARTTLS:
            if "STARTTLS" not in self.extensions:
                await self.close()
                raise UpstreamError(f"{config.address} does not offer STARTTLS", reply)
            await self.command("STARTTLS", "STARTTLS", expect=220)
            await self._start_tls()
            reply = await self._ehlo(helo)
        if config.credentials is not None:
            reply = await self.auth(*config.credentials)
            if reply.code != 235:
                await self.close()
                raise UpstreamError(f"{config.address} refused the proxy's AUTH", reply)
        return reply or greeting

    async def auth(self, user: str, password: str) -> Reply:
        """Log in (PLAIN if offered, else LOGIN); the upstream's last reply."""
        methods = self.extensions.get("AUTH", "").upper().split()
        if "PLAIN" in methods or "LOGIN" not in methods:
            secret = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
            return await self.command("AUTH", f"AUTH PLAIN {secret}", shown="AUTH PLAIN ****")
        reply = await self.command("AUTH", "AUTH LOGIN")
        if reply.code == 334:
            reply = await self.command("AUTH", _b64(user), shown="****")
        if reply.code == 334:
            reply = await self.command("AUTH", _b64(password), shown="****")
        return reply

    async def command(
        self, stage: str, line: str, *, shown: str | None = None, expect: int | None = None
    ) -> Reply:
        """Send one command line and read its reply (an UpstreamError if it is not `expect`)."""
        await self._write(stage, line.encode("utf-8", "surrogateescape") + b"\r\n", shown or line)
        if expect is None:
            return await self.read(stage)
        return await self._expect(stage, expect)

    async def send_message(self, data: bytes) -> Reply:
        """DATA, then the message (dots stuffed) and its end; the reply to the end, or the
        refusal of DATA itself."""
        reply = await self.command("DATA", "DATA")
        if reply.code != 354:
            return reply
        body = data if data.endswith(b"\r\n") or not data else data + b"\r\n"
        if body.startswith(b"."):
            body = b"." + body
        body = body.replace(b"\r\n.", b"\r\n..")
        await self._write("EOM", body + b".\r\n", f"[{len(data)} bytes of message data] .")
        return await self.read("EOM")

    async def read(self, stage: str) -> Reply:
        """One whole reply, each line given to `on_line` as it arrives."""
        assert self._reader is not None
        code: int | None = None
        lines: list[str] = []
        while True:
            try:
                async with asyncio.timeout(self.config.timeout_s):  # no task per line
                    raw = await self._reader.readline()
            except TimeoutError:
                await self._fail(stage, f"no reply within {self.config.timeout_s:g} s")
            except ValueError:  # asyncio's "chunk exceed the limit"
                await self._fail(stage, f"sent a line longer than {REPLY_LINE_LIMIT:,} bytes")
            except OSError as error:  # reset
                await self._fail(stage, _words(error))
            if not raw:
                await self._fail(stage, "closed the connection")
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            head, separator = text[:3], text[3:4]
            if (
                not head.isdigit()
                or separator not in ("", " ", "-")
                or (code and int(head) != code)
            ):
                await self._fail(stage, f"answered with a line that is not SMTP: {text[:80]!r}")
            code = int(head)
            last = separator != "-"
            lines.append(text[4:])
            self.on_line(stage, False, text[4:], code, last)
            if last:
                self.waiting = False
                return Reply(code, tuple(lines))
            if len(lines) >= REPLY_LINES_LIMIT:
                await self._fail(stage, f"sent a reply of more than {REPLY_LINES_LIMIT} lines")

    async def close(self, *, quit: bool = False) -> Reply | None:
        """QUIT (when asked and still open), then close; the reply to QUIT, if one came."""
        reply = None
        self.waiting = False
        if quit and not self.closed:
            with contextlib.suppress(UpstreamError):  # gone: nothing more to say to it
                reply = await self.command("QUIT", "QUIT")
        self.closed = True
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
                await asyncio.wait_for(writer.wait_closed(), self.config.timeout_s)
        return reply

    def abort(self) -> None:
        """Close at once (the proxy's session ended under it)."""
        self.closed = True
        self.waiting = False
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.transport.abort()

    # --- steps -----------------------------------------------------------------------------

    async def _ehlo(self, helo: str) -> Reply:
        reply = await self.command("EHLO", f"EHLO {helo}")
        if reply.code != 250:
            reply = await self.command("EHLO", f"HELO {helo}", expect=250)
            self.extensions = {}
            return reply
        self.extensions = {}
        for line in reply.lines[1:]:
            keyword, _, value = line.partition(" ")
            self.extensions[keyword.upper()] = value
        return reply

    async def _start_tls(self) -> None:
        assert self._writer is not None
        try:
            await asyncio.wait_for(
                self._writer.start_tls(self.config.ssl_context(), server_hostname=self.config.host),
                self.config.timeout_s,
            )
        except (OSError, TimeoutError, ssl.SSLError) as error:
            await self._fail("STARTTLS", f"TLS handshake failed: {_words(error)}")

    async def _expect(self, stage: str, code: int) -> Reply:
        reply = await self.read(stage)
        if reply.code != code:
            await self.close()
            raise UpstreamError(f"{self.config.address} answered {stage} with {reply}", reply)
        return reply

    async def _write(self, stage: str, data: bytes, shown: str) -> None:
        if self._writer is None or self.closed:
            raise UpstreamError(f"{self.config.address}: the connection is closed")
        self.on_line(stage, True, shown, None, True)
        self.waiting = True
        self._writer.write(data)
        try:
            async with asyncio.timeout(self.config.timeout_s):
                await self._writer.drain()
        except TimeoutError:
            await self._fail(stage, f"read nothing within {self.config.timeout_s:g} s")
        except OSError as error:
            await self._fail(stage, _words(error))

    async def _fail(self, stage: str, what: str) -> NoReturn:
        reason = f"{self.config.address} {what}"
        self.on_line(stage, False, f"[{reason}]", None, True)
        self.abort()
        raise UpstreamError(reason)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _words(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"certificate not trusted ({error.verify_message})"
    return str(error) or type(error).__name__
