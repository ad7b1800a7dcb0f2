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
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from harness.base.clock import Clock, RealClock
from harness.base.endpoint import Endpoint, TlsMode
from harness.base.ledger import FaultRecord, Ledger, LedgerSink, MessageRecord, SessionRecord
from harness.base.profile_file import ProfileSpec, resolve_profile
from harness.base.sesevents import FeedFaults
from harness.core.margins import CloseCall
from harness.core.plan import Plan, Rule
from harness.server.boto3_client import boto3_client
from harness.server.events.delivery import DeliveryPolicy
from harness.server.fake_ses_events import EventsSide
from harness.server.loop import new_event_loop
from harness.server.protocol import SesSMTP
from harness.server.state import ServerState
from harness.server.tls import shared_certificates
from harness.server.view import FakeSESView

START_TIMEOUT_S = 10.0
# A burst of connects beyond the listen queue is not refused by the kernel: the handshake's last
# ACK is dropped and the client, which waits for the greeting, hangs until SYN-ACK retries (tens
# of seconds). A deep queue lets the server itself answer every one, with 421 past the cap.
LISTEN_BACKLOG = 4096
#: The access key the API's clients sign with when no credentials are configured: any
#: well-formed signature is then accepted.
DUMMY_AWS_CREDENTIALS = ("AKIAFAKESES000000000", "fake-ses-secret")
T = TypeVar("T")


class FakeSES(EventsSide):
    """A fake Amazon SES SMTP server on loopback.

    Arguments: a `profile` (a name of ``harness.PROFILES``: "ses", "microsoft365", "gmail",
    ...; a :class:`harness.Profile`; or the path of a TOML profile file) or a full `plan`;
    `seed`; `faults` (rules); any limit of :class:`harness.Limits` as a keyword
    (`session_limit=3`, `rate_per_s=None` to switch one off); `clock` (default real); `tls`
    ("starttls" or "implicit", with a certificate generated for the run); `auth=(user,
    password)`, or a mapping of users' passwords (limits per user count each apart); `sink`
    for a durable store. The SES API (`api=True`, the default): `aws_credentials=(key,
    secret)` to verify signatures, or `api_token` (any key id, the token as the secret);
    `region` its signatures are scoped to (us-east-1). SES's events (docs/events.md):
    `events_url` gets every message's events as SNS posts them (`events_signature` 1, 2, None).
    """

    protocol: Callable[[ServerState], SesSMTP] = SesSMTP  # a connection's (SesProxy's relays)

    def __init__(
        self,
        profile: ProfileSpec = "ses",
        *,
        plan: Plan | None = None,
        seed: int | None = None,
        faults: Iterable[Rule] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        tls: TlsMode | str | None = None,
        auth: tuple[str, str] | Mapping[str, str] | None = None,
        sink: LedgerSink | None = None,
        ledger: Ledger | None = None,
        api: bool = True,
        api_port: int = 0,
        aws_credentials: tuple[str, str] | None = None,
        api_token: str | None = None,
        region: str = "us-east-1",
        templates: Mapping[str, Mapping[str, str]] | None = None,
        events_url: str | None = None,
        events_signature: str | None = "1",
        events_policy: DeliveryPolicy | None = None,
        events_feed: bool | FeedFaults = False,
        **limits: Any,
    ) -> None:
        plan = plan or Plan(profile=resolve_profile(profile))
        if seed is not None:
            plan = Plan(plan.profile, seed, plan.limits, plan.faults)
        if auth is not None and "require_auth" not in limits and "require_auth" not in plan.limits:
            limits["require_auth"] = True
        self.plan = plan.with_limits(**limits).with_faults(*faults)
        self.bind_host = host
        self.requested_port = port
        self.clock = clock or RealClock()
        self.tls = TlsMode(tls or TlsMode.NONE)
        self.users = dict(auth) if isinstance(auth, Mapping) else dict([auth]) if auth else None
        self.credentials = next(iter(self.users.items())) if self.users else None
        # What `auth` switched on at start stays on through plan changes (see set_plan).
        self._started_require_auth = self.plan.resolved_limits().require_auth
        self.ledger = ledger or Ledger(sink=sink)
        self.port = 0
        # The SES HTTP API beside the SMTP port (harness.server.sesapi): same engine, ledger.
        # `aws_credentials` (key id, secret) makes it verify signatures; so does `api_token`
        # without them, as the secret of any key id (serve --api-token); scoped to `region`.
        self.api_enabled = api
        self.requested_api_port = api_port
        self.api_port = 0
        self.aws_credentials = aws_credentials
        self.api_token = api_token
        self.region = region
        self.templates = dict(templates or {})
        # "": SES ids follow from the seed, the same each run; serve sets a run's own (Engine).
        self.id_salt = ""
        self.api_service: Any = None
        self._api_runner: Any = None
        self._api_mounted = False
        self._state: ServerState | None = None
        self._server: asyncio.AbstractServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._view: FakeSESView | None = None  # the one `async with` gave out
        self._loop_thread: int | None = None  # the thread the server's loop runs in
        self._init_events(events_url, events_signature, events_policy, self.clock, events_feed)

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
        key, secret = self.signing_credentials
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
            region=self.region,
            events_url=self.events_feed_url,
        )

    @property
    def signing_credentials(self) -> tuple[str, str]:
        """(access key id, secret) a client of the SES API signs with: `aws_credentials`, else
        the dummy key with `api_token` as its secret, else the dummy pair."""
        if self.aws_credentials is not None:
            return self.aws_credentials
        key, secret = DUMMY_AWS_CREDENTIALS
        return key, self.api_token or secret

    #: Whether the SMTP listener accepts connections now: started and not stopped.
    smtp_accepting = property(lambda self: self._server is not None and self._server.is_serving())
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
            credentials=self.users,
            region=self.region,
        )
        state = self._state
        state.engine.id_salt = self.id_salt
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._server = await loop.create_server(
            lambda: self.protocol(state),
            host=self.bind_host,
            port=self.requested_port,
            ssl=ssl_context if self.tls is TlsMode.IMPLICIT else None,
            backlog=LISTEN_BACKLOG,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        await self._start_events()
        if self.api_enabled or self._api_mounted:
            await self._start_api()
        return self

    async def stop_async(self) -> None:
        if self._server is None:
            return
        if self._api_runner is not None:
            await self._api_runner.cleanup()
            self._api_runner = None
        await self._stop_events()
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

    async def __aenter__(self) -> FakeSESView:
        """Start on the running loop and give the view a `fake_ses` fixture gives: `on(...)`,
        `assert_delivered_once`, the awaitable waits (`ses.server` is this object)."""
        await self.start_async()
        self._view = self.view()
        return self._view

    async def __aexit__(self, exc_type: object, *exc: object) -> None:
        """Stop; then, if the block raised nothing, hold its arranged faults to strictness
        (AssertionError naming each rule that never fired), as the fixture does at teardown."""
        await self.stop_async()
        view, self._view = self._view, None
        report = view.strict_report() if view is not None and exc_type is None else None
        if report:
            raise AssertionError(report)

    def view(self, *, strict: bool = True) -> FakeSESView:
        """A test's view of this server: arrangement, records, assertions, waits.

        Rules the server started with are its own; only rules arranged on the view (`on(...)`)
        are held to strictness.
        """
        return FakeSESView(self, self.plan, strict=strict, first_arranged=len(self.plan.faults))

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
        """Replace faults and limits; effective for the next commands.

        A server started with `auth` keeps requiring it unless `plan` sets `require_auth`
        itself: credentials are how the server was started, not part of a plan, and a plan
        sent over the HTTP API used to switch AUTH off without a word.
        """
        if self.credentials is not None and "require_auth" not in plan.limits:
            plan = plan.with_limits(require_auth=self._started_require_auth)
        self.plan = plan
        if self._state is not None:
            self._state.set_plan(plan)

    @property
    def closest_call(self) -> CloseCall | None:
        """How near the clock came to deciding otherwise (:mod:`harness.core.margins`)."""
        return self._state.engine.margins.closest if self._state is not None else None

    def reset(self) -> None:
        """Clear the ledger and restart rule counters and limits' state. An open connection goes
        on, counted afresh (messages, commands, idle timer); its record says `carried_over`."""
        self.ledger.clear()
        if self._state is not None:
            state = self._state
            with state.lock:
                state.engine.reset(self.plan, now=self.clock.now())
            if state.live:
                self._on_loop(lambda: [c.carry_over() for c in list(state.live)])

    def settle(self, timeout_s: float) -> list[int]:
        """Wait until every open session is quiet: its client neither talking nor hanging up.
        A client that closed its socket is seen at once (its end of file waits in the kernel)
        and waited for until the server has recorded the close; a pooled connection left open
        is quiet from the start (it carries into the next reset). Returns the sessions still
        busy after `timeout_s` (a client still sending)."""
        deadline = time.monotonic() + timeout_s
        while True:
            busy = self._busy_sessions()
            remaining = deadline - time.monotonic()
            if not busy or remaining <= 0:
                return [record.number for record in busy]
            with contextlib.suppress(TimeoutError):  # one more look, then report the busy
                self.ledger.wait_for(_any_closed(busy), remaining)

    def _busy_sessions(self) -> list[SessionRecord]:
        state = self._state
        if state is None or not state.live or self._loop is None or self._loop.is_closed():
            return []

        def busy() -> list[SessionRecord]:
            return [
                c.record
                for c in list(state.live)
                if c.record is not None and c.record.open and not c.quiet()
            ]

        return self._on_loop(busy)

    def _on_loop(self, call: Callable[[], T]) -> T:
        """Run `call` on the server's loop (connections belong to it) and return its result."""
        loop = self._loop
        assert loop is not None
        if threading.get_ident() == self._loop_thread:  # waiting for the loop would hang it
            return call()
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(call())
            except BaseException as error:  # handed to the calling thread
                done.set_exception(error)

        loop.call_soon_threadsafe(run)
        return done.result(START_TIMEOUT_S)

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
        return boto3_client(service, self.api_url, self.region, self.signing_credentials, **config)

    def mount_api(self, app: Any) -> None:
        """Answer the SES API on `app` too (an aiohttp app, e.g. ``serve``'s HTTP port), from
        when this server starts. Call before starting."""
        from harness.server.sesapi import add_routes

        self._api_mounted = True
        add_routes(app, lambda: self.api_service)

    async def _start_api(self) -> None:
        from aiohttp import web

        from harness.server.sesapi import ApiService, make_app

        assert self._state is not None
        credentials = dict([self.aws_credentials]) if self.aws_credentials else None
        self.api_service = ApiService(
            self._state,
            credentials=credentials,
            templates=self.templates,
            region=self.region,
            any_key_secret=self.api_token,
            configuration_sets=self.events_hub.configuration_sets,
        )
        if not self.api_enabled:  # mounted on another app only
            return
        runner = web.AppRunner(make_app(self.api_service), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.bind_host, self.requested_api_port, backlog=LISTEN_BACKLOG)
        await site.start()
        self._api_runner = runner
        self.api_port = runner.addresses[0][1]

    def __repr__(self) -> str:
        return f"FakeSES(profile={self.plan.profile_name!r}, address={self.host}:{self.port})"


def _any_closed(records: list[SessionRecord]) -> Callable[[Ledger], bool]:
    return lambda _: any(not record.open for record in records)


def _is_ours(task: asyncio.Task[Any]) -> bool:
    coro = task.get_coro()
    qualname = getattr(coro, "__qualname__", "")
    return "SMTP" in qualname or "SesSMTP" in qualname
