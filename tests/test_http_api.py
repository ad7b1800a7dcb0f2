"""The HTTP API in process: a real fake SES and the app in one event loop, real SMTP clients."""

from __future__ import annotations

import asyncio

import aiosmtplib
import pytest
from aiohttp.test_utils import TestClient

from harness import FakeSES, Ledger, Rule
from tests.http_app import JSON, get, mail, run, send


def test_messages_are_listed_in_order_with_since_and_limit() -> None:
    async def scenario(ses: FakeSES, client: TestClient) -> None:
        await send(ses, mail(1), mail(2), mail(3))
        listed = await get(client, "/api/messages")
        assert [m["sequence"] for m in listed] == [1, 2, 3]
        assert [m["message_id"] for m in listed] == [f"<m{i}@example.com>" for i in (1, 2, 3)]
        assert listed[0]["subject"] == "Message 1"
        assert listed[0]["rcpt_tos"] == ["rcpt@example.com"]
        assert listed[0]["ses_id"] == ses.ledger.messages[0].ses_id
        assert listed[0]["acknowledged"] is True
        assert [m["sequence"] for m in await get(client, "/api/messages?limit=2")] == [2, 3]
        assert [m["sequence"] for m in await get(client, "/api/messages?since=2")] == [3]
        assert await get(client, "/api/messages?limit=0") == []

    run(scenario)


def test_one_message_has_its_headers_and_raw_is_the_eml_as_received() -> None:
    sent = mail(7, subject="Invoice 7")

    async def scenario(ses: FakeSES, client: TestClient) -> None:
        await send(ses, sent)
        one = await get(client, "/api/messages/1")
        assert ["Subject", "Invoice 7"] in one["headers"]
        raw = await client.get(one["raw_url"])
        assert raw.status == 200
        assert raw.content_type == "message/rfc822"
        assert await raw.read() == ses.ledger.messages[0].data
        assert b"Body of message 7." in await raw.read()

    run(scenario)


def test_a_missing_message_is_a_json_404_naming_it() -> None:
    async def scenario(ses: FakeSES, client: TestClient) -> None:
        body = await get(client, "/api/messages/9", status=404)
        assert body == {"status": 404, "error": "no message 9", "messages": 0}
        assert (await get(client, "/api/messages/abc/raw", status=404))["status"] == 404
        assert (await get(client, "/api/nothing-here", status=404))["status"] == 404

    run(scenario)


def test_a_bad_query_parameter_is_a_400_naming_it() -> None:
    async def scenario(ses: FakeSES, client: TestClient) -> None:
        body = await get(client, "/api/messages?limit=-1", status=400)
        assert "'limit'" in body["error"]

    run(scenario)


def test_a_wrong_method_is_a_json_405() -> None:
    async def scenario(ses: FakeSES, client: TestClient) -> None:
        response = await client.patch("/api/messages", json={})
        assert response.status == 405
        assert (await response.json())["status"] == 405

    run(scenario)


def test_a_body_beyond_the_memory_budget_is_410_with_a_hint() -> None:
    async def scenario(ses: FakeSES, client: TestClient) -> None:
        await send(ses, mail(1))
        body = await get(client, "/api/messages/1/raw", status=410)
        assert "--store" in body["hint"]

    run(scenario, ledger=Ledger(memory_budget_bytes=0))


def test_sessions_have_transcripts_without_credentials() -> None:
    async def scenario(ses: FakeSES, client: TestClient) -> None:
        async with aiosmtplib.SMTP(hostname=ses.host, port=ses.port) as smtp:
            await smtp.login("alice", "s3cret-pw")
            await smtp.sendmail("sender@example.com", ["rcpt@example.com"], mail(1))
        await ses_closed(ses)
        sessions = await get(client, "/api/sessions")
        assert len(sessions) == 1
        session = sessions[0]
        assert session["user"] == "alice"
        assert session["accepted"] == 1
        lines = [(line["direction"], line["text"]) for line in session["transcript"]]
        assert any(line[1].startswith("MAIL FROM:<sender@example.com>") for line in lines)
        assert any(text.startswith("AUTH PLAIN") for _, text in lines)
        assert "s3cret-pw" not in str(sessions)
        assert "transcript" not in (await get(client, "/api/sessions?transcript=0"))[0]
        assert (await get(client, "/api/sessions/1"))["number"] == 1
        assert (await get(client, "/api/sessions/2", status=404))["error"] == "no session 2"

    run(scenario, auth=("alice", "s3cret-pw"))


async def ses_closed(ses: FakeSES) -> None:
    """Until every session the ledger knows has closed (the ledger wakes the waiting thread)."""
    await asyncio.to_thread(
        ses.ledger.wait_for, lambda ledger: not any(s.open for s in ledger.sessions)
    )


def test_faults_and_stats_count_what_fired() -> None:
    greylist = Rule.from_spec("name=greylist,stage=RCPT,first=1,action=reply,code=451,text=Later")

    async def scenario(ses: FakeSES, client: TestClient) -> None:
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
            await send(ses, mail(1))
        await send(ses, mail(1))
        faults = await get(client, "/api/faults")
        assert [(f["index"], f["stage"], f["name"], f["reply"]) for f in faults] == [
            (1, "RCPT", "greylist", "451 Later")
        ]
        assert await get(client, "/api/faults?since=1") == []
        stats = await get(client, "/api/stats")
        assert stats["faults"] == {"total": 1, "by_name": {"rule:greylist": 1}}
        assert stats["messages"]["total"] == 1
        assert stats["sessions"]["total"] == 2
        assert stats["smtp"]["port"] == ses.port
        assert stats["fault_rules"] == [
            "greylist: stage=RCPT,first=1,action=reply,code=451,text=Later"
        ]

    run(scenario, faults=[greylist])


def test_put_plan_changes_the_next_commands_on_the_wire() -> None:
    async def scenario(ses: FakeSES, client: TestClient) -> None:
        await send(ses, mail(1))
        plan = {
            "profile": "plain",
            "seed": 3,
            "limits": {"max_recipients": 5},
            "faults": [
                {"name": "busy", "stage": "MAIL", "action": "reply", "code": 454, "text": "Busy"}
            ],
        }
        response = await client.put("/api/plan", json=plan)
        assert response.status == 200, await response.text()
        assert await get(client, "/api/plan") == plan
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await send(ses, mail(2))
        assert (refused.value.code, refused.value.message) == (454, "Busy")
        assert (await get(client, "/api/stats"))["limits"]["max_recipients"] == 5

    run(scenario)


def test_a_bad_plan_is_400_naming_the_key_and_the_allowed_values() -> None:
    async def scenario(ses: FakeSES, client: TestClient) -> None:
        bad = {"faults": [{"stage": "MAIL", "action": "explode"}]}
        response = await client.put("/api/plan", json=bad)
        assert response.status == 400
        body = await response.json()
        assert body["status"] == 400
        assert body["key"] == "faults[0].action"
        assert "reply" in body["allowed"] and "drop" in body["allowed"]
        assert body["error"].startswith("PUT /api/plan: key 'faults[0].action'")
        response = await client.put("/api/plan", json={"limits": {"session_limit": 0}})
        assert (await response.json())["key"] == "limits.session_limit"
        assert (await get(client, "/api/plan"))["profile"] == "plain"  # unchanged

    run(scenario)


def test_a_plan_body_that_is_not_json_is_400() -> None:
    async def scenario(ses: FakeSES, client: TestClient) -> None:
        response = await client.put("/api/plan", data=b"profile = 'ses'", headers=JSON)
        assert response.status == 400
        assert "not JSON" in (await response.json())["error"]

    run(scenario)


def test_reset_forgets_the_ledger_and_restarts_rule_counters() -> None:
    first_mail = Rule.from_spec("stage=MAIL,nth=1,action=reply,code=451,text=Try later")

    async def scenario(ses: FakeSES, client: TestClient) -> None:
        with pytest.raises(aiosmtplib.SMTPSenderRefused):
            await send(ses, mail(1))
        await send(ses, mail(1))
        await ses_closed(ses)
        response = await client.post("/api/reset", headers=JSON)
        assert response.status == 200
        assert await get(client, "/api/messages") == []
        assert await get(client, "/api/faults") == []
        assert await get(client, "/api/sessions") == []
        with pytest.raises(aiosmtplib.SMTPSenderRefused):  # nth=1 counts from the reset
            await send(ses, mail(2))
        await send(ses, mail(2))
        assert [m["sequence"] for m in await get(client, "/api/messages")] == [1]

    run(scenario, faults=[first_mail])


def test_the_live_page_and_its_script_are_served() -> None:
    async def scenario(ses: FakeSES, client: TestClient) -> None:
        page = await client.get("/")
        assert page.status == 200
        assert '<script src="/web/app.js">' in await page.text()
        script = await client.get("/web/app.js")
        assert script.status == 200
        assert "/api/messages" in await script.text()

    run(scenario)
