"""`FakeSES`: start the fake server in its own loop-in-a-thread (sync) or in a running loop (async).

>>> import smtplib
>>> with FakeSES(profile="ses", session_limit=2, seed=7) as ses:        # 127.0.0.1, port 0
...     with smtplib.SMTP(ses.host, ses.port) as client:
...         _ = client.sendmail("a@example.com", ["b@example.com"], b"Subject: hi\\r\\n\\r\\nhello")
...     len(ses.ledger.messages)
1
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from harness.core.plan import Plan, Rule
from harness.server.clock import Clock, RealClock
from harness.server.endpoint import Endpoint, TlsMode
from harness.server.ledger import FaultRecord, Ledger, LedgerSink, MessageRecord, SessionRecord
from harness.server.protocol import SesSMTP
from harness.server.state import ServerState
from harness.server.tls import shared_certificates

START_TIMEOUT_S = 10.0
# A burst of connects beyond the listen queue is not refused by the kernel: the handshake's last
# ACK is dropped and the client, which waits for the greeting, hangs until SYN-ACK retries (tens
# of seconds). A deep queue lets the server itself answer every one, with 421 past the cap.
LISTEN_BACKLOG = 4096
#: Set to 1 to run the sync API's loop on uvloop (`pip install 'ses-fault-harness[fast]'`).
UVLOOP_ENV = "SES_HARNESS_UVLOOP"
#: The access key the API's clients sign with when no credentials are configured: any
#: well-formed signature is then accepted.
DUMMY_AWS_CREDENTIALS = ("AKIAFAKESES000000000", "fake-ses-secret")


class FakeSES:
    """A fake Amazon SES SMTP server on loopback.

    Arguments: a `profile` name ("ses", "ses-sandbox", "plain") or a full `plan`; `seed`;
    `faults` (rules); any limit of :class:`harness.Limits` as a keyword (`session_limit=3`,
    `rate_per_s=None` to switch one off); `clock` (default real); `tls` ("starttls" or
    "implicit", with a certificate generated for the run); `auth=(user, password)`; `sink` for a
    durable store.
    """

    def __init__(
        self,
        profile: str = "ses",
        *,
        plan: Plan | None = None,
        seed: int | None = None,
        faults: Iterable[Rule] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        tls: TlsMode | str | None = None,
        auth: tuple[str, str] | None = None,
        sink: LedgerSink | None = None,
        ledger: Ledger | None = None,
        api: bool = True,
        api_port: int = 0,
        aws_credentials: tuple[str, str] | None = None,
        templates: Mapping[str, Mapping[str, str]] | None = None,
        **limits: Any,
    ) -> None:
        plan = plan or Plan(profile=profile)
        if seed is not None:
            plan = Plan(plan.profile, seed, plan.limits, plan.faults)
        if auth is not None and "require_auth" not in limits and "require_auth" not in plan.limits:
            limits["require_auth"] = True
        self.plan = plan.with_limits(**limits).with_faults(*faults)
        self.bind_host = host
        self.requested_port = port
        self.clock = clock or RealClock()
        self.tls = TlsMode(tls or TlsMode.NONE)
        self.credentials = auth
        self.ledger = ledger or Ledger(sink=sink)
        self.port = 0
        # The SES HTTP API beside the SMTP port (harness.server.sesapi): same engine, same
        # ledger. `aws_credentials` (key id, secret) makes it verify signatures.
        self.api_enabled = api
        self.requested_api_port = api_port
        self.api_port = 0
        self.aws_credentials = aws_credentials
        self.templates = dict(templates or {})
        self.api_service: Any = None
        self._api_runner: Any = None
        self._state: ServerState | None = None
        self._server: asyncio.AbstractServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # --- where to connect ------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self.bind_host

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def endpoint(self) -> Endpoint:
        """What a client needs: host, port, TLS mode, credentials, CA file."""
        user, password = self.credentials or (None, None)
        ca_file = shared_certificates().ca_file if self.tls is not TlsMode.NONE else None
        key, secret = self.aws_credentials or DUMMY_AWS_CREDENTIALS
        return Endpoint(
            self.host,
            self.port,
            self.tls,
            user,
            password,
            ca_file,
            api_url=self.api_url,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
        )

    # --- async API (inside a running loop) -------------------------------------------------

    async def start_async(self) -> FakeSES:
        ssl_context = (
            shared_certificates().server_context() if self.tls is not TlsMode.NONE else None
        )
        self._state = ServerState.create(
            self.plan,
            self.ledger,
            self.clock,
            tls=self.tls,
            ssl_context=ssl_context,
            credentials=self.credentials,
        )
        state = self._state
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._server = await loop.create_server(
            lambda: SesSMTP(state),
            host=self.bind_host,
            port=self.requested_port,
            ssl=ssl_context if self.tls is TlsMode.IMPLICIT else None,
            backlog=LISTEN_BACKLOG,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        if self.api_enabled:
            await self._start_api()
        return self

    async def stop_async(self) -> None:
        if self._server is None:
            return
        if self._api_runner is not None:
            await self._api_runner.cleanup()
            self._api_runner = None
        self._server.close()
        assert self._state is not None
        for connection in list(self._state.live):
            connection.stop()
        await self._server.wait_closed()
        # Let aborted connections run their connection_lost callbacks.
        for _ in range(3):
            await asyncio.sleep(0)
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and _is_ours(t)]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._server = None

    async def __aenter__(self) -> FakeSES:
        return await self.start_async()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_async()

    # --- sync API (own loop in a thread) ---------------------------------------------------

    def start(self) -> FakeSES:
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start_async())
            except BaseException as error:  # handed to the starting thread
                failure.append(error)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop_async())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=serve, name="fake-ses", daemon=True)
        self._thread.start()
        if not ready.wait(START_TIMEOUT_S):
            raise TimeoutError(f"fake SES did not start within {START_TIMEOUT_S}s")
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._thread = None

    def __enter__(self) -> FakeSES:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- changing the plan and reading the ledger ------------------------------------------

    def set_plan(self, plan: Plan) -> None:
        """Replace faults and limits; effective for the next commands."""
        self.plan = plan
        if self._state is not None:
            self._state.set_plan(plan)

    def reset(self) -> None:
        """Clear the ledger and restart rule counters (limits' state restarts too)."""
        self.ledger.clear()
        if self._state is not None:
            with self._state.lock:
                self._state.engine.reset(self.plan, now=self.clock.now())

    @property
    def messages(self) -> list[MessageRecord]:
        return self.ledger.messages

    @property
    def sessions(self) -> list[SessionRecord]:
        return self.ledger.sessions

    @property
    def faults(self) -> list[FaultRecord]:
        return self.ledger.faults

    # --- the SES HTTP API ----------------------------------------------------------------

    @property
    def api_url(self) -> str | None:
        """Where the SES API answers (an SDK's `endpoint_url`); None before start or when off."""
        if not self.api_port:
            return None
        return f"http://{self.host}:{self.api_port}"

    def boto3_client(self, service: str = "sesv2", **config: Any) -> Any:
        """A boto3 client for this server's API: `"sesv2"` or `"ses"` (v1), no retries.

        Keywords go to `botocore.config.Config` (e.g. ``retries={"mode": "standard"}``); the
        default makes one attempt, so a test sees each error as SES sent it. Needs boto3
        (``pip install 'ses-fault-harness[aws]'``).
        """
        if self.api_url is None:
            raise RuntimeError("the SES API is not running: start the server with api=True")
        try:
            import boto3
            from botocore.config import Config
        except ImportError as missing:
            raise RuntimeError(
                "boto3_client needs boto3: pip install 'ses-fault-harness[aws]'"
            ) from missing
        key, secret = self.aws_credentials or DUMMY_AWS_CREDENTIALS
        config.setdefault("retries", {"total_max_attempts": 1, "mode": "standard"})
        return boto3.client(
            service,
            endpoint_url=self.api_url,
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=Config(**config),
        )

    async def _start_api(self) -> None:
        from aiohttp import web

        from harness.server.sesapi import ApiService, make_app

        assert self._state is not None
        credentials = dict([self.aws_credentials]) if self.aws_credentials else None
        self.api_service = ApiService(
            self._state, credentials=credentials, templates=self.templates
        )
        runner = web.AppRunner(make_app(self.api_service), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.bind_host, self.requested_api_port, backlog=LISTEN_BACKLOG)
        await site.start()
        self._api_runner = runner
        self.api_port = runner.addresses[0][1]

    def __repr__(self) -> str:
        return f"FakeSES(profile={self.plan.profile!r}, address={self.host}:{self.port})"


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The loop of the sync API's thread: uvloop's when SES_HARNESS_UVLOOP=1, else asyncio's."""
    if os.environ.get(UVLOOP_ENV, "") not in ("", "0"):
        try:
            import uvloop
        except ImportError as missing:
            raise RuntimeError(
                f"{UVLOOP_ENV} is set but uvloop is not installed: "
                "pip install 'ses-fault-harness[fast]'"
            ) from missing
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def _is_ours(task: asyncio.Task[Any]) -> bool:
    coro = task.get_coro()
    qualname = getattr(coro, "__qualname__", "")
    return "SMTP" in qualname or "SesSMTP" in qualname
