"""The SES API's HTTP side: check the signature, ask the engine, record, answer (or not).

Like the SMTP adapter, this decides nothing: the engine says whether a fault rule fires for a
send request (stage API) and whether the account's limits let each message through; this
module carries the decision out on the wire. A message is in the ledger before its answer is
written, so ``drop_after_accept`` here is the same ambiguous loss as at SMTP's end of data: a
retrying SDK sends it again.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
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
from harness.server.events.configsets import ConfigurationSets
from harness.server.sesapi import configsets, responses, sigv4, suppression, v1, v2
from harness.server.sesapi import templates as templates_
from harness.server.sesapi.connection import Cut, abort, gone, read_body, stall
from harness.server.sesapi.mime import content_key
from harness.server.sesapi.requests import BadRequest, Send
from harness.server.state import ServerState

#: Requests prepared (signature, parsing, building) in worker threads at once; the rest wait
#: their turn on the loop, holding only their body.
PREPARING = 2
#: Work on fewer bytes than this (a body to check and parse, a message to build) is done on
#: the loop: a millisecond at most, less than a thread's round trip costs an SDK's request.
INLINE_BYTES = 16 * 1024
Templates = Mapping[str, Mapping[str, str]]
#: The operation a request turned out to be (v1's, from its Action), for its count.
OPERATION: contextvars.ContextVar[str | None] = contextvars.ContextVar("operation", default=None)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")


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
        configuration_sets: ConfigurationSets | None = None,
    ) -> None:
        self.verifier = sigv4.Verifier(
            region, dict(credentials) if credentials is not None else None, any_key_secret
        )
        if self.verifier.verifies:
            sigv4.require_botocore()
        self.state = state
        self.templates = templates_.TemplateBook(templates)
        #: Requests answered, by (operation, HTTP status or "cut"): /metrics reads them.
        self.answered: collections.Counter[tuple[str, str]] = collections.Counter()
        self._requests = 0
        self._preparing = asyncio.Semaphore(PREPARING)
        #: The handler of each operation (v1's: "v1"; harness.server.sesapi.mount routes them).
        self._handlers: dict[str, Handler] = {
            "SendEmail": self._v2(self._v2_send_email),
            "SendBulkEmail": self._v2(self._v2_send_bulk_email),
            "GetAccount": self._v2(self._v2_get_account),
            **{op: self._v2(self._v2_template(op)) for op in templates_.V2_OPERATIONS},
            "v1": self._v1,
        }
        for name, operation in configsets.OPERATIONS.items():  # v2's configuration sets
            self._handlers[name] = self._v2(
                configsets.handler(operation, lambda: configuration_sets)
            )
        for name, listed in suppression.OPERATIONS.items():  # the account's suppression list
            self._handlers[name] = self._v2(suppression.handler(listed, state))

    # --- routes ----------------------------------------------------------------------------

    def handler(self, operation: str) -> Handler:
        """The handler of `operation`, counting its answers in `answered`."""
        handler = self._handlers[operation]

        async def handle(request: web.Request) -> web.StreamResponse:
            named = OPERATION.set(None)  # a request is a task of its own: this is its context
            try:
                response = await handler(request)
                status = "cut" if gone(request) else str(response.status)
                self.answered[(OPERATION.get() or operation, status)] += 1
            finally:
                OPERATION.reset(named)
            return response

        return handle

    def answering(
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
                body = await read_body(request)
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
            except Cut:
                return web.Response()  # never written: the transport is gone
            except Exception as error:  # a bug of ours: SES's 500, in v2's format
                return responses.v2_error(
                    responses.internal_failure(request, error, V2), request_id
                )

        return handle

    async def _v1(self, request: web.Request) -> web.StreamResponse:
        request_id = self._request_id()
        try:
            body = await read_body(request)
            size = len(body) + len(request.query_string)
            await self._work(size, self._authorize, _Signed.of(request), body)
            now = self.state.clock.now()
            query, book = request.query_string, self.templates.content
            action, params = await self._work(size, _v1_request, body, query)
            OPERATION.set(action)
            if action == "GetSendQuota":
                with self.state.lock:
                    quota = self.state.engine.send_quota(now=now)
                return responses.xml_answer(v1.send_quota(quota, request_id), request_id)
            if action in templates_.V1_ACTIONS:
                result = templates_.v1_operation(self.templates, action, params, self.state.wall())
                return responses.xml_answer(v1.answer(action, result, request_id), request_id)
            sends = await self._work(size, _v1_sends, action, params, book, now)
            results = await self._send(request, V1, sends)
            message_id, _, error = results[0]
            if error is not None:
                return responses.v1_error(error, request_id)
            assert message_id is not None
            return responses.xml_answer(v1.sent(action, message_id, request_id), request_id)
        except sigv4.SignatureProblem as problem:
            return responses.v1_error(
                api_errors.error_for(problem.kind, V1, problem.detail), request_id
            )
        except BadRequest as bad:
            return responses.v1_error(api_errors.error_for(bad.kind, V1, bad.message), request_id)
        except _RuleError as refused:
            return responses.v1_error(refused.error, request_id, close=refused.close)
        except Cut:
            return web.Response()
        except Exception as error:  # a bug of ours: SES's 500, in v1's format
            return responses.v1_error(responses.internal_failure(request, error, V1), request_id)

    async def _v2_send_email(
        self, body: bytes, request_id: str, request: web.Request
    ) -> web.StreamResponse:
        now = self.state.clock.now()
        send = await self._work(len(body), _v2_send_email, body, self.templates.content, now)
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
        book = self.templates.content
        sends = await self._work(len(body), _v2_send_bulk_email, body, book, now)
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
            reasons = engine.suppression.reasons
        answer = v2.account(quota, sandbox=sandbox, suppressed_reasons=reasons)
        return responses.json_answer(answer, request_id)

    def _v2_template(
        self, operation: str
    ) -> Callable[[bytes, str, web.Request], Awaitable[web.StreamResponse]]:
        async def handle(body: bytes, request_id: str, request: web.Request) -> web.Response:
            name, query = request.match_info.get("TemplateName", ""), request.query
            data = v2.loads(body) if body else {}
            now = self.state.wall()
            answer = templates_.v2_operation(self.templates, operation, data, name, query, now)
            return responses.json_answer(answer, request_id)

        return handle

    # --- the shared path of every send -----------------------------------------------------

    async def _send(
        self, request: web.Request, version: str, sends: list[Send], *, bulk: bool = False
    ) -> list[tuple[str | None, str | None, SesApiError | None]]:
        """Each send's (SES message id, refusing limit, error); raises _RuleError or Cut.

        A message is built only once the account's recipient cap lets it through (a request
        past the cap costs its validation, never the building), one at a time, off the loop.
        """
        state = self.state
        state.clock.network_delay()
        recipients = tuple(r for send in sends for r in send.recipients)
        key = content_key(*(s.key for s in sends)) if bulk else sends[0].key
        with state.lock:
            decision = state.engine.api_request(
                now=state.clock.now(),
                sender=sends[0].sender,
                recipients=recipients,
                key=key,
                tenant=sends[0].tenant,
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
            abort(request)
        if decision.outcome is Outcome.STALL:
            await stall(request, decision.stall_s)
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
                    fates=decision.fates,
                )
            self._record_faults(verdict, number, send)
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
                configuration_set=send.configuration_set,
                tenant=send.tenant,
                fates=verdict.fates,
            )
            results.append((verdict.ses_id, None, None))
        if by_fiat:
            abort(request)
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
        engine = self.state.engine
        salt = f":{engine.salt}" if engine.salt else ""
        key = f"{engine.plan.seed}:request:{self._requests}{salt}".encode()
        return str(uuid.UUID(bytes=hashlib.blake2b(key, digest_size=16).digest(), version=4))

    def _record_faults(self, decision: Decision, number: int, send: Send | None = None) -> None:
        """The rules and limits that fired; a refusal of one message (`send`) names it."""
        for fired in decision.fired:
            named = send is not None and fired.action == "reply"
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
                    sender=send.sender if named and send else None,
                    recipient=send.recipients[0] if named and send and send.recipients else None,
                    permanent=named and fired.name not in api_errors.TRANSIENT,
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


def _v1_request(body: bytes, query: str) -> tuple[str, dict[str, str]]:
    """A v1 request's action (one the fake knows) and its parameters."""
    params = v1.form(body, query)
    action = params.get("Action", "")
    if action not in v1.ACTIONS and action not in templates_.V1_ACTIONS:
        message = f"Could not find operation {action[:100]} for version 2010-12-01"
        raise BadRequest(message, kind="not_found")
    return action, params


def _v1_sends(action: str, params: dict[str, str], book: Templates, now: float) -> list[Send]:
    """The message a v1 send action asks for, every field checked."""
    if action == "SendEmail":
        return [v1.send_email(params, now)]
    if action == "SendTemplatedEmail":
        return [v1.send_templated_email(params, book, now)]
    return [v1.send_raw_email(params)]


def _v2_send_email(body: bytes, templates: Templates, now: float) -> Send:
    return v2.with_tenant([v2.send_email(data := v2.loads(body), templates, now)], data)[0]


def _v2_send_bulk_email(body: bytes, templates: Templates, now: float) -> list[Send]:
    return v2.with_tenant(v2.send_bulk_email(data := v2.loads(body), templates, now), data)
