"""The HTTP API's daily-tool parts in process: search and paging, `?wait=`, message parts,
delete, session conversations, the plan panel and the event stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import smtplib

import aiosmtplib
from aiohttp.test_utils import TestClient, TestServer

from harness import FakeSES, Rule
from harness.console.app import HUB_KEY, create_app
from harness.console.events import WINDOW_EVENTS
from harness.console.search import MessageQuery
from tests.http_app import JSON, get, mail, run, send


def test_search_reads_words_and_keys_and_pages_from_the_newest() -> None:
    async def scenario(ses: FakeSES, client: TestClient) -> None:
        await send(ses, *(mail(n, f"Invoice {n}") for n in range(1, 8)))
        await send(ses, mail(8, "Welcome aboard"), to="new@other.example")
        response = await client.get("/api/messages?q=invoice&order=newest&offset=2&limit=3")
        assert response.headers["X-Total-Count"] == "7"
        assert [m["subject"] for m in await response.json()] == [
            "Invoice 5",
            "Invoice 4",
            "Invoice 3",
        ]
        found = await get(client, "/api/messages?q=to:@other.example")
        assert [m["subject"] for m in found] == ["Welcome aboard"]
        found = await get(client, "/api/messages?q=" + "text:%22message%203.%22")
        assert [m["sequence"] for m in found] == [3]
        assert await get(client, "/api/messages?from=nobody") == []
        assert len(await get(client, "/api/messages?q=session:2")) == 1
        assert len(await get(client, "/api/messages?q=is:delivered")) == 8
        assert await get(client, "/api/messages?status=cut") == []
        bad = await get(client, "/api/messages?q=is:lost", status=400)
        assert "is:lost is not a status" in bad["error"]
        bad = await get(client, "/api/messages?q=%22open", status=400)
        assert "cannot read the search" in bad["error"]

    run(scenario)


def test_the_query_parses_like_the_search_box() -> None:
    query = MessageQuery.parse("Invoice FROM:Billing@ subject:'March report' is:cut session:3")
    assert query.words == ("invoice",)
    assert query.sender == "billing@"
    assert query.subject == "march report"
    assert (query.status, query.session) == ("cut", 3)
    assert MessageQuery.parse("", {"to": "@x.com"}).recipient == "@x.com"
    assert MessageQuery.parse("").empty


def test_a_wait_returns_when_enough_messages_match_and_408_at_the_timeout() -> None:
    async def scenario(ses: FakeSES, client: TestClient) -> None:
        waiting = asyncio.ensure_future(client.get("/api/messages?wait=2&subject=wanted"))
        await send(ses, mail(1, "wanted"), mail(2, "other"))
        assert not waiting.done()
        await send(ses, mail(3, "wanted"))
        response = await asyncio.wait_for(waiting, 10)
        assert response.status == 200
        assert [m["sequence"] for m in await response.json()] == [1, 3]
        timed_out = await get(client, "/api/messages?wait=5&timeout=0.05", status=408)
        assert (timed_out["matching"], timed_out["wanted"]) == (3, 5)
        for bad in ("nan", "inf", "-1", "301", "soon"):
            body = await get(client, f"/api/messages?wait=1&timeout={bad}", status=400)
            assert "'timeout'" in body["error"]
        assert "'wait'" in (await get(client, "/api/messages?wait=x", status=400))["error"]

    run(scenario)


def test_a_wait_is_woken_by_a_server_in_another_thread() -> None:
    """The ledger's writer is the SMTP server's thread, not the API's loop."""
    with FakeSES(profile="plain") as ses:  # its own loop in its own thread

        async def main() -> None:
            async with TestClient(TestServer(create_app(ses))) as client:
                waiting = asyncio.ensure_future(client.get("/api/messages?wait=1&timeout=20"))
                await asyncio.sleep(0)
                await asyncio.to_thread(_send_sync, ses)
                response = await asyncio.wait_for(waiting, 20)
                assert response.status == 200

        asyncio.run(main())


def _send_sync(ses: FakeSES) -> None:
    with smtplib.SMTP(ses.host, ses.port) as client:
        client.sendmail("sender@example.com", ["rcpt@example.com"], mail(1))


def test_a_message_has_its_parts_and_the_html_part_is_sandboxed() -> None:
    async def scenario(ses: FakeSES, client: TestClient) -> None:
        await send(ses, mail(1, html="<p>hi<script>alert(1)</script></p>"))
        body = (await get(client, "/api/messages/1"))["body"]
        assert body["text"].startswith("Body of message 1.")
        assert "<script>" in body["html"]
        attachment = next(p for p in body["parts"] if p["attachment"])
        assert (attachment["filename"], attachment["content_type"]) == ("a.png", "image/png")
        html = await client.get(f"/api/messages/1/parts/{body['html_part']}")
        assert html.content_type == "text/html"
        policy = html.headers["Content-Security-Policy"]
        assert policy.startswith("sandbox; default-src 'none'")
        assert html.headers["X-Content-Type-Options"] == "nosniff"
        download = await client.get(attachment["url"] + "?download=1")
        assert await download.read() == b"\x00\x01"
        assert download.headers["Content-Disposition"] == 'attachment; filename="a.png"'
        assert (await get(client, "/api/messages/1/parts/0", status=404))["status"] == 404
        assert (await get(client, "/api/messages/1/parts/99", status=404))["status"] == 404

    run(scenario)


def test_deleted_messages_leave_the_lists_but_not_the_ledger() -> None:
    async def scenario(ses: FakeSES, client: TestClient) -> None:
        await send(ses, mail(1), mail(2), mail(3))
        assert (await client.delete("/api/messages/2", headers=JSON)).status == 200
        assert [m["sequence"] for m in await get(client, "/api/messages")] == [1, 3]
        assert "deleted" in (await get(client, "/api/messages/2", status=404))["error"]
        assert (await get(client, "/api/stats"))["messages"]["deleted"] == 1
        response = await client.delete("/api/messages", headers=JSON)
        assert (await response.json())["deleted"] == 2
        assert await get(client, "/api/messages") == []
        await send(ses, mail(4))
        assert [m["sequence"] for m in await get(client, "/api/messages")] == [4]
        assert len(ses.ledger.messages) == 4

    run(scenario)


def test_a_session_conversation_places_each_fault_before_the_reply_it_caused() -> None:
    async def scenario(ses: FakeSES, client: TestClient) -> None:
        async with aiosmtplib.SMTP(hostname=ses.host, port=ses.port) as smtp:
            await smtp.sendmail("sender@example.com", ["rcpt@example.com"], mail(1))
            try:
                await smtp.sendmail("sender@example.com", ["rcpt@example.com"], mail(2))
            except aiosmtplib.SMTPResponseException as error:
                assert error.code == 421
        session = await get(client, "/api/sessions/1")
        kinds = [
            (item["kind"], item.get("text", item.get("name"))) for item in session["conversation"]
        ]
        at = kinds.index(("fault", "session_limit"))
        assert kinds[at - 1][1].startswith("MAIL FROM:<sender@example.com>")
        assert kinds[at + 1][1].startswith("421")
        fault = session["conversation"][at]
        assert fault["why"] == "limit session_limit = 1 (profile plain)"
        assert [m["sequence"] for m in session["messages"]] == [1]
        assert (await get(client, "/api/sessions/9", status=404))["error"] == "no session 9"

    run(scenario, session_limit=1)


def test_the_panel_switches_a_rule_off_and_keeps_counting_its_firings() -> None:
    rule = Rule.from_spec("name=grey,stage=RCPT,action=reply,code=451,text=Later")

    async def scenario(ses: FakeSES, client: TestClient) -> None:
        with contextlib.suppress(aiosmtplib.SMTPRecipientsRefused):
            await send(ses, mail(1))
        panel = await get(client, "/api/steering")
        assert [(r["spec"], r["fired"], r["on"]) for r in panel["rules"]] == [
            ("grey: stage=RCPT,action=reply,code=451,text=Later", 1, True)
        ]
        body = {"plan": panel["plan"], "off": {"faults": [0], "limits": []}}
        response = await client.put("/api/steering", data=json.dumps(body), headers=JSON)
        assert response.status == 200
        assert ses.plan.faults == ()
        await send(ses, mail(2))
        body["off"] = {"faults": [], "limits": []}
        await client.put("/api/steering", data=json.dumps(body), headers=JSON)
        panel = await get(client, "/api/steering")
        assert [(r["fired"], r["on"]) for r in panel["rules"]] == [(1, True)]
        assert ses.plan.faults == (rule,)

        bad = {"plan": {"limits": {"session_limit": 0}}}
        response = await client.put("/api/steering", data=json.dumps(bad), headers=JSON)
        error = await response.json()
        assert response.status == 400
        assert error["error"] == (
            "PUT /api/steering: key 'limits.session_limit': 0 is too small "
            "(allowed: >= 1, or leave unset)"
        )
        bad = {"plan": {}, "off": {"faults": [3]}}
        response = await client.put("/api/steering", data=json.dumps(bad), headers=JSON)
        assert "there is no rule 3" in (await response.json())["error"]
        bad = {"plan": {}, "off": {"limits": ["speed"]}}
        response = await client.put("/api/steering", data=json.dumps(bad), headers=JSON)
        assert "'speed' is not a limit" in (await response.json())["error"]
        assert ses.plan.faults == (rule,)  # nothing changed by the bad ones

    run(scenario, faults=[rule])


def test_events_arrive_in_order_and_the_stream_ends_when_the_server_stops() -> None:
    async def scenario(ses: FakeSES, client: TestClient) -> None:
        response = await client.get("/api/events")
        assert response.content_type == "text/event-stream"
        assert await response.content.readline() == b"retry: 1000\n"
        await send(ses, mail(1))
        kinds = []
        while "closed" not in kinds:
            line = await asyncio.wait_for(response.content.readline(), 10)
            if line.startswith(b"data: "):
                kinds.append(json.loads(line[6:])["type"])
        assert kinds == ["hello", "session", "message", "closed"]
        response.close()

    run(scenario)


def test_a_burst_of_events_reaches_a_reader_as_one_resync_instead_of_a_growing_queue() -> None:
    async def scenario(ses: FakeSES, client: TestClient) -> None:
        hub = client.app[HUB_KEY]
        response = await client.get("/api/events")
        assert await response.content.readline() == b"retry: 1000\n"
        assert json.loads((await response.content.readline())[6:]) == {"type": "hello"}
        for _ in range(WINDOW_EVENTS * 3):  # in one turn of the loop: one window
            hub.publish({"type": "plan"})
        events = []
        while not events or events[-1] != {"type": "resync"}:
            line = await asyncio.wait_for(response.content.readline(), 10)
            if line.startswith(b"data: "):
                events.append(json.loads(line[6:]))
        assert events == [{"type": "resync"}] and hub.resyncs == 1
        response.close()

    run(scenario)
