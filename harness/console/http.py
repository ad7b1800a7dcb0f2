"""Serve the API app on loopback inside the running event loop (the fake server's own)."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError


class _OneLine(logging.Filter):
    """aiohttp logs a malformed request (a NUL in a header, a broken request line) with a whole
    traceback. The client gets its 400; the server's terminal gets one line, not a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            detail = " ".join(str(error).split())[:200]
            record.msg, record.args = f"{record.getMessage()}: {detail}", ()
            record.exc_info = record.exc_text = None
        return True


#: The API server's own logger, for aiohttp's errors about requests.
LOG = logging.getLogger("harness.console.http")
LOG.addFilter(_OneLine())


class ApiServer:
    """``async with ApiServer(create_app(ses), port=0) as api: api.url``; binds 127.0.0.1."""

    def __init__(self, app: web.Application, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.requested_port = port
        self.port = 0
        # A request whose client has gone is cancelled, as aiohttp's TestServer (and so every
        # test) does: a long-poll or an event stream ends with its connection, instead of
        # working for a client that left until its timeout (harness.console.waits).
        self._runner = web.AppRunner(app, access_log=None, logger=LOG, handler_cancellation=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def __aenter__(self) -> ApiServer:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.requested_port)
        try:
            await site.start()
        except BaseException:
            await self._runner.cleanup()
            raise
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()
