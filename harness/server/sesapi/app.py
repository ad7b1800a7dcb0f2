"""The SES API's HTTP side: check the signature, ask the engine, record, answer (or not).

Like the SMTP adapter, this decides nothing: the engine says whether a fault rule fires for a
send request (stage API) and whether the account's limits let each message through; this
module carries the decision out on the wire. A message is in the ledger before its answer is
written, so ``drop_after_accept`` here is the same ambiguous loss as at SMTP's end of data: a
retrying SDK sends it again.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

from harness.base.clock import answered, arrived, sleep_on
from harness.base.ledger import FaultRecord
from harness.core import api_errors
from harness.core.api_errors import V1, V2, SesApiError
from harness.core.engine import Decision, Outcome
from harness.core.plan import Stage
from harness.server.sesapi import responses, sigv4, v1, v2
from harness.server.sesapi.mime import content_key
from harness.server.sesapi.requests import BadRequest, Send
from harness.server.state import ServerState

#: Request bodies above this are refused unread: a 40 MB message in base64, with room.
MAX_BODY_BYTES = 60 * 1024 * 1024
#: How often a stalled request looks whether its client has gone.
STALL_POLL_S = 0.05
#: Requests prepared (signature, parsing, building) in worker threads at once; the rest wait
#: their turn on the loop, holding only their body.
PREPARING = 2
#: Work on fewer bytes than this (a body to check and parse, a message to build) is done on
#: the loop: a millisecond at most, less than a thread's round trip costs an SDK's request.
INLINE_BYTES = 16 * 1024
Templates = Mapping[str, Mapping[str, str]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")


class _Cut(Exception):
    """The connection was cut on purpose: nothing is to be written."""


class ApiService:
    """The SES API of one fake server: its engine, ledger and clock, plus API settings.

    `credentials` maps access key ids to secrets; `any_key_secret` is a secret any key id may
    sign with (``serve --api-token``); with neither, any well-formed signature passes. Every
    signature must be scoped to `region` and service ``ses`` and dated within 15 minutes of the
    server's clock. `templates` are the stored templates a v2 Template content may name
    (``{"Subject": ..., "Text": ..., "Html": ...}`` each).
    """

    def __init__(
        self,
        state: ServerState,
        *,
        credentials: Mapping[str, str] | None = None,
        templates: Templates | None = None,
        region: str = "us-east-1",
        any_key_secret: str | None = None,
    ) -> None:
        self.verifier = sigv4.Verifier(
            region, dict(credentials) if credentials is not None else None, any_key_secret
        )
        if self.verifier.verifies:
            sigv4.require_botocore()
        self.state = state
        self.templates = dict(templates or {})
        self._requests = 0
        self._preparing = asyncio.Semaphore(PREPARING)
        #: The handler of each route, by (method, path).
        self.handlers: dict[tuple[str, str], Handler] = {
            ("POST", v2.SEND_EMAIL): self._v2(self._v2_send_email),
            ("POST", v2.SEND_BULK_EMAIL): self._v2(self._v2_send_bulk_email),
            ("GET", v2.GET_ACCOUNT): self._v2(self._v2_get_account),
            ("POST", "/"): self._v1,
        }

    # --- routes ----------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return [
            web.route(method, path, self._answering(h))
            for (method, path), h in self.handlers.items()
        ]

    def _answering(
        self, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """`handler`, telling the clock when a request arrives and when it has its answer
        (see harness.base.clock.Accounting)."""

        async def handle(request: web.Request) -> web.StreamResponse:
            arrived(self.state.clock)
            try:
                return await handler(request)
            finally:
                answered(self.state.clock)

        return handle

    def _v2(
        self, operation: Callable[[bytes, str, web.Request], Awaitable[web.StreamResponse]]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            request_id = self._request_id()
            try:
                body = await _read(request)
                await self._work(len(body), self._authorize, _Signed.of(request), body)
                return await operation(body, request_id, request)
            except sigv4.SignatureProblem as problem:
                return responses.v2_error(
                    api_errors.error_for(problem.kind, V2, problem.detail), request_id
                )
            except BadRequest as bad:
                return responses.v2_error(
                    api_errors.error_for(bad.kind, V2, bad.message), request_id
                )
            except _Cut:
                return web.Response()  # never written: the transport is gone
            except Exception as error:  # a bug of ours: SES's 500, in v2's format
                return responses.v2_error(
                    responses.internal_failure(request, error, V2), request_id
                )

        return handle

    async def _v1(self, request: web.Request) -> web.StreamResponse:
        request_id = self._request_id()
        try:
            body = await _read(request)
            size = len(body) + len(request.query_string)
            await self._work(size, self._authorize, _Signed.of(request), body)
            now = self.state.clock.now()
            action, sends = await self._work(size, _v1_request, body, request.query_string, now)
            if action == "GetSendQuota":
                with self.state.lock:
                    quota = self.state.engine.send_quota(now=now)
                return responses.xml_answer(v1.send_quota(quota, request_id))
            results = await self._send(request, V1, sends)
            message_id, _, error = results[0]
            if error is not None:
                return responses.v1_error(error, request_id)
            assert message_id is not None
            return responses.xml_answer(v1.sent(action, message_id, request_id))
        except sigv4.SignatureProblem as problem:
            return responses.v1_error(
                api_errors.error_for(problem.kind, V1, problem.detail), request_id
            )
        except BadRequest as bad:
            return responses.v1_error(api_errors.error_for(bad.kind, V1, bad.message), request_id)
        except _RuleError as refused:
            return responses.v1_error(refused.error, request_id, close=refused.close)
        except _Cut:
            return web.Response()
        except Exception as error:  # a bug of ours: SES's 500, in v1's format
            return responses.v1_error(responses.internal_failure(request, error, V1), request_id)

    async def _v2_send_email(
        self, body: bytes, request_id: str, request: web.Request
    ) -> web.StreamResponse:
        now = self.state.clock.now()
        send = await self._work(len(body), _v2_send_email, body, self.templates, now)
        try:
            results = await self._send(request, V2, [send])
        except _RuleError as refused:
            return responses.v2_error(refused.error, request_id, close=refused.close)
        message_id, _, error = results[0]
        if error is not None:
            return responses.v2_error(error, request_id)
        assert message_id is not None
        return responses.json_answer(v2.sent(message_id), request_id)

    async def _v2_send_bulk_email(
        self, body: bytes, request_id: str, request: web.Request
    ) -> web.StreamResponse:
        now = self.state.clock.now()
        sends = await self._work(len(body), _v2_send_bulk_email, body, self.templates, now)
        try:
            results = await self._send(request, V2, sends, bulk=True)
        except _RuleError as refused:
            return responses.v2_error(refused.error, request_id, close=refused.close)
        return responses.json_answer(v2.bulk_result(results), request_id)

    async def _v2_get_account(
        self, body: bytes, request_id: str, request: web.Request
    ) -> web.StreamResponse:
        with self.state.lock:
            engine = self.state.engine
            quota = engine.send_quota(now=self.state.clock.now())
            sandbox = engine.limits.verified is not None
        return responses.json_answer(v2.account(quota, sandbox=sandbox), request_id)

    # --- the shared path of every send -----------------------------------------------------

    async def _send(
        self, request: web.Request, version: str, sends: list[Send], *, bulk: bool = False
    ) -> list[tuple[str | None, str | None, SesApiError | None]]:
        """Each send's (SES message id, refusing limit, error); raises _RuleError or _Cut.

        A message is built only once the account's recipient cap lets it through (a request
        past the cap costs its validation, never the building), one at a time, off the loop.
        """
        state = self.state
        state.clock.network_delay()
        recipients = tuple(r for send in sends for r in send.recipients)
        key = content_key(*(s.key for s in sends)) if bulk else sends[0].key
        with state.lock:
            decision = state.engine.api_request(
                now=state.clock.now(), sender=sends[0].sender, recipients=recipients, key=key
            )
            number = state.engine.api_requests
            error = (
                state.engine.api_error(decision, version)
                if decision.outcome is Outcome.REPLY
                else None
            )
        self._record_faults(decision, number)
        await self._wait(decision.delay_s)
        if error is not None:
            raise _RuleError(error, decision.close)
        if decision.outcome is Outcome.DROP:
            _abort(request)
        if decision.outcome is Outcome.STALL:
            await _stall(request, decision.stall_s)
        by_fiat = decision.outcome is Outcome.DROP_AFTER_ACCEPT
        results: list[tuple[str | None, str | None, SesApiError | None]] = []
        via = f"api-{version}"
        for send in sends:
            data = b""
            with state.lock:
                cap = state.engine.limits.max_recipients
            if by_fiat or cap is None or len(send.recipients) <= cap:
                try:
                    data = await self._work(send.work_bytes, send.build)
                except BadRequest as bad:
                    error = api_errors.error_for(bad.kind, version, bad.message)
                    results.append((None, bad.kind, error))
                    continue
            now = state.clock.now()
            with state.lock:
                verdict = state.engine.api_message(
                    now=now,
                    version=version,
                    recipients=send.recipients,
                    size=len(data),  # 0 past the cap: refused for its recipients, unbuilt
                    sender=send.sender,
                    by_fiat=by_fiat,
                )
            self._record_faults(verdict, number)
            if verdict.outcome is not Outcome.ACCEPT:
                results.append((None, verdict.fired[-1].name, verdict.error))
                continue
            assert verdict.ses_id is not None
            data = responses.with_message_id(data, verdict.ses_id)
            state.ledger.accept(
                None,
                ses_id=verdict.ses_id,
                mail_from=send.sender,
                rcpt_tos=send.recipients,
                data=data,
                at=now,
                wall_at=state.wall(),
                acknowledged=not by_fiat,
                via=via,
            )
            results.append((verdict.ses_id, None, None))
        if by_fiat:
            _abort(request)
        return results

    async def _work(self, size: int | None, work: Callable[..., T], *args: Any) -> T:
        """`work(*args)`, which reads or writes about `size` bytes (None: unknown): on the loop
        when that is under INLINE_BYTES, else in a worker thread, PREPARING at a time. Checking
        a signature, parsing a body and building a message cost time linear in their size (up
        to 60 MB), and the event loop that SMTP shares keeps answering meanwhile."""
        if size is not None and size < INLINE_BYTES:
            return work(*args)
        async with self._preparing:
            return await asyncio.to_thread(work, *args)

    # --- helpers ---------------------------------------------------------------------------

    def _authorize(self, signed: _Signed, body: bytes) -> None:
        sigv4.check(
            signed.headers,
            verifier=self.verifier,
            now_s=self._signing_now(),
            method=signed.method,
            url=signed.url,
            body=body,
        )

    def _signing_now(self) -> float:
        """The time a signature's date is checked against: the server's clock, unless it is
        virtual, then the wall's. Nobody signs on a virtual clock (boto3 in this process signs
        on the wall, and so does every other process); a scaled clock's clients run under
        libfaketime at its scale and start (harness.runner.faketime), so they sign on it."""
        clock = self.state.clock
        return self.state.wall() if clock.virtual else clock.now()

    def _request_id(self) -> str:
        self._requests += 1
        key = f"{self.state.engine.plan.seed}:request:{self._requests}".encode()
        return str(uuid.UUID(bytes=hashlib.blake2b(key, digest_size=16).digest(), version=4))

    def _record_faults(self, decision: Decision, number: int) -> None:
        for fired in decision.fired:
            self.state.ledger.fault(
                FaultRecord(
                    session=0,
                    command=number,
                    stage=Stage.API.value,
                    source=fired.source,
                    name=fired.name,
                    action=fired.action,
                    reply=fired.reply,
                    at=self.state.clock.now(),
                    rule_index=fired.rule_index,
                )
            )

    async def _wait(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self.state.clock.virtual:
            self.state.clock.sleep(seconds)
        else:
            await sleep_on(self.state.clock, seconds)


class _RuleError(Exception):
    """A fault rule answers the request with an error."""

    def __init__(self, error: SesApiError, close: bool) -> None:
        super().__init__(error.line)
        self.error = error
        self.close = close


@dataclass(frozen=True)
class _Signed:
    """What the signature covers, read on the loop for a worker thread to check."""

    headers: Mapping[str, str]
    method: str
    url: str

    @classmethod
    def of(cls, request: web.Request) -> _Signed:
        return cls(request.headers, request.method, f"http://{request.host}{request.raw_path}")


def _v1_request(body: bytes, query: str, now: float) -> tuple[str, list[Send]]:
    """A v1 request's action and the messages it asks for, every field checked."""
    params = v1.form(body, query)
    action = params.get("Action", "")
    if action == "GetSendQuota":
        return action, []
    if action == "SendEmail":
        return action, [v1.send_email(params, now)]
    if action == "SendRawEmail":
        return action, [v1.send_raw_email(params)]
    raise BadRequest(f"Could not find operation {action} for version 2010-12-01", kind="not_found")


def _v2_send_email(body: bytes, templates: Templates, now: float) -> Send:
    return v2.send_email(v2.loads(body), templates, now)


def _v2_send_bulk_email(body: bytes, templates: Templates, now: float) -> list[Send]:
    return v2.send_bulk_email(v2.loads(body), templates, now)


def make_app(service: ApiService) -> web.Application:
    """An app that serves only the SES API (FakeSES runs it on a port of its own)."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.add_routes(service.routes())
    return app


def add_routes(app: web.Application, service: Callable[[], ApiService | None]) -> None:
    """Mount the SES API on an existing app (``serve``'s): /v2/email/... and POST /.

    `service` is asked at each request, so the app can be built before the server starts;
    until then the API answers 503.
    """

    def route(method: str, path: str) -> web.RouteDef:
        async def handle(request: web.Request) -> web.StreamResponse:
            current = service()
            if current is None:
                error = api_errors.error_for("unavailable", V2, "The fake SES is not running.")
                return responses.v2_error(error, "")
            return await current.handlers[(method, path)](request)

        return web.route(method, path, handle)

    app.add_routes([route(method, path) for method, path in _ROUTES])


_ROUTES = (
    ("POST", v2.SEND_EMAIL),
    ("POST", v2.SEND_BULK_EMAIL),
    ("GET", v2.GET_ACCOUNT),
    ("POST", "/"),
)
#: The paths the SES API answers on (``serve`` mounts them beside its page and /api/).
PATHS = frozenset(path for _, path in _ROUTES)


async def _read(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise BadRequest(f"The request body is over {MAX_BODY_BYTES} bytes.")
    chunks, size = [], 0
    while chunk := await request.content.read(1 << 16):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BadRequest(f"The request body is over {MAX_BODY_BYTES} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def _abort(request: web.Request) -> Any:
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise _Cut


async def _stall(request: web.Request, stall_s: float | None) -> None:
    """Never answer: until the client gives up, or `stall_s` real seconds and then a cut."""
    if stall_s is not None:
        await asyncio.sleep(stall_s)
        _abort(request)
    while request.transport is not None and not request.transport.is_closing():
        await asyncio.sleep(STALL_POLL_S)
    raise _Cut
