"""`RemoteFakeSES`: the `fake_ses` fixture's views and assertions over a `ses-harness serve`
in another process (a container, another machine, a test suite in another language's CI).

>>> remote = RemoteFakeSES("http://127.0.0.1:8025")                      # doctest: +SKIP
>>> remote.reset()
>>> send_the_batch(smtp_host, 2525)                  # the mailer under test, anywhere
>>> remote.wait_for_messages(100)
>>> remote.assert_delivered_once([f"<order-{i}@shop.example>" for i in range(100)])

Only the HTTP API is used (docs/http-api.md), through the standard library: a test that has
this package installed needs nothing else, and the server may run any version that speaks the
same API. Records come back as the ledger's own types (`MessageRecord`, `SessionRecord`,
`FaultRecord`), so code written against the fixture reads them the same way.
"""

from __future__ import annotations

import dataclasses
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any

from harness.base.ledger import FaultRecord, MessageRecord, SessionRecord
from harness.base.records import line_from_json
from harness.core.plan import Plan
from harness.server.verdicts import (
    DeliveryVerdict,
    delivery_report,
    delivery_verdict,
    recipient_verdict,
)

#: Seconds a request may take beyond what the server was asked to wait.
SLACK_S = 10.0


class RemoteError(Exception):
    """The API answered with an error: `status` and its JSON `body`."""

    def __init__(self, status: int, body: Any) -> None:
        text = body.get("error") if isinstance(body, dict) else body
        super().__init__(f"HTTP {status}: {text}")
        self.status = status
        self.body = body


class RemoteFakeSES:
    """A client for the HTTP API of `ses-harness serve` at `api_url` (its READY line's
    `api_url`); `token` if the server wants one (`--api-token`)."""

    def __init__(self, api_url: str, *, token: str | None = None, timeout_s: float = 30.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s

    # --- the fixture's views --------------------------------------------------------------

    @property
    def messages(self) -> list[MessageRecord]:
        """Every message the server accepted (and the page did not delete), oldest first."""
        return [_message(item) for item in self.request("GET", "/api/messages")]

    def find_messages(self, q: str = "", **filters: Any) -> list[MessageRecord]:
        """Messages matching a search (`q`, e.g. ``"to:@example.com is:cut"``) or filters of
        the same names (`sender=`, `recipient=`, `subject=`, `text=`, `session=`, `status=`)."""
        return [_message(item) for item in self.request("GET", "/api/messages", _query(q, filters))]

    @property
    def sessions(self) -> list[SessionRecord]:
        """Every SMTP session, in order of connection, with its transcript."""
        return [_session(item) for item in self.request("GET", "/api/sessions")]

    @property
    def faults_fired(self) -> list[FaultRecord]:
        """Every fault rule and limit that changed what the server did, in order."""
        return [_fault(item) for item in self.request("GET", "/api/faults")]

    @property
    def plan(self) -> Plan:
        return Plan.from_dict(self.request("GET", "/api/plan"), source=f"{self.api_url}/api/plan")

    def stats(self) -> dict[str, Any]:
        """The endpoint, the limits in force and the counters (`GET /api/stats`)."""
        return self.request("GET", "/api/stats")

    def message(self, sequence: int) -> dict[str, Any]:
        """One message with its headers, text and HTML bodies and parts, as JSON."""
        return self.request("GET", f"/api/messages/{sequence}")

    def raw(self, sequence: int) -> bytes:
        """The message exactly as the server received it."""
        return self.request("GET", f"/api/messages/{sequence}/raw")

    # --- waiting and asserting ------------------------------------------------------------

    def wait_for_messages(
        self, count: int, timeout_s: float = 10.0, q: str = "", **filters: Any
    ) -> list[MessageRecord]:
        """Block until the server holds `count` messages (matching `q` and `filters`, if any);
        fail with what arrived if that takes longer than `timeout_s`. The server holds the
        request until then: no polling."""
        params = {**_query(q, filters), "wait": str(count), "timeout": f"{timeout_s:g}"}
        try:
            items = self.request("GET", "/api/messages", params, timeout_s=timeout_s + SLACK_S)
        except RemoteError as error:
            if error.status != 408:
                raise
            got = error.body.get("matching") if isinstance(error.body, dict) else "?"
            raise AssertionError(
                f"waited {timeout_s}s for {count} messages; the server at {self.api_url} "
                f"recorded {got}"
            ) from None
        return [_message(item) for item in items]

    def assert_delivered_once(self, ids: Iterable[str]) -> None:
        """Each Message-ID in `ids` reached the server exactly once (a message cut before its
        250 counts as delivered: SES would send it). The failure is the fixture's: the lost
        and duplicated ids, the faults of the sessions involved, and how to reproduce it
        (here: the plan to PUT)."""
        messages = self.messages
        self._report(delivery_verdict(ids, messages), messages)

    def assert_delivered_once_to(self, recipients: Iterable[str]) -> None:
        """Each envelope recipient (RCPT TO, any case) is in exactly one recorded message: for
        mailers that hide Message-IDs. The same verdict and failure text, by recipient."""
        messages = self.messages
        self._report(recipient_verdict(recipients, messages), messages)

    def _report(self, verdict: DeliveryVerdict, messages: list[MessageRecord]) -> None:
        if not verdict.ok:
            raise AssertionError(
                delivery_report(verdict, messages, self.faults_fired, self.reproducer)
            )

    @property
    def reproducer(self) -> str:
        """The plan in force, as the request that sets it again."""
        plan = json.dumps(self.request("GET", "/api/plan"))
        return (
            f"curl -X PUT {self.api_url}/api/plan -H 'Content-Type: application/json' -d '{plan}'"
        )

    # --- changing the server --------------------------------------------------------------

    def set_plan(self, plan: Plan | Mapping[str, Any]) -> Plan:
        """Replace the plan (profile, seed, limits, faults); returns the plan now in force."""
        data = plan.to_dict() if isinstance(plan, Plan) else dict(plan)
        return Plan.from_dict(self.request("PUT", "/api/plan", body=data))

    def reset(self) -> None:
        """Forget messages, sessions and faults; restart rule counters."""
        self.request("POST", "/api/reset", body={})

    def delete_messages(self) -> None:
        """Take every message off the API's lists (the server's ledger keeps them)."""
        self.request("DELETE", "/api/messages", body={})

    # --- HTTP -----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        *,
        body: Any = None,
        timeout_s: float | None = None,
    ) -> Any:
        """One API call; JSON answers are decoded, others returned as bytes."""
        url = self.api_url + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"  # the server refuses other changes
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout_s or self.timeout_s) as answer:
                return _decoded(answer.headers.get_content_type(), answer.read())
        except urllib.error.HTTPError as error:
            raise RemoteError(
                error.code, _decoded(error.headers.get_content_type(), error.read())
            ) from None

    def __repr__(self) -> str:
        return f"RemoteFakeSES({self.api_url!r})"


def _decoded(content_type: str, payload: bytes) -> Any:
    return json.loads(payload) if content_type == "application/json" else payload


def _query(q: str, filters: Mapping[str, Any]) -> dict[str, str]:
    names = {"sender": "from", "recipient": "to"}
    params = {names.get(k, k): str(v) for k, v in filters.items() if v is not None}
    if q:
        params["q"] = q
    return params


def _fields(cls: type, item: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")}
    return {k: v for k, v in item.items() if k in names}


def _message(item: Mapping[str, Any]) -> MessageRecord:
    fields = _fields(MessageRecord, item)
    fields["rcpt_tos"] = tuple(item["rcpt_tos"])
    fields["headers"] = tuple(tuple(pair) for pair in item.get("headers", ()))
    fields.setdefault("wall_at", item["at"])
    return MessageRecord(**fields)


def _session(item: Mapping[str, Any]) -> SessionRecord:
    record = SessionRecord(**_fields(SessionRecord, item))
    record.transcript = [line_from_json(line) for line in item.get("transcript", ())]
    record.transcript_dropped = item.get("transcript_dropped", 0)
    return record


def _fault(item: Mapping[str, Any]) -> FaultRecord:
    return FaultRecord(**_fields(FaultRecord, item))
