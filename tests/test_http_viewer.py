"""What the page's viewer and long sessions read from the HTTP API: an HTML body with its
inline images as data: URLs, decoded headers, the list's summaries, and a long conversation cut
and paged, its faults placed and its ends of data tied to their messages."""

from __future__ import annotations

import base64
import re
from email.message import EmailMessage

import aiosmtplib
from aiohttp.test_utils import TestClient

from harness import FakeSES, Ledger, Rule
from harness.console import sessions
from tests.http_app import get, mail, run, send

PNG = b"\x89PNG\r\n\x1a\n fake image bytes"


def inline_image_mail() -> bytes:
    message = EmailMessage()
    message["From"] = "sender@example.com"
    message["To"] = "rcpt@example.com"
    message["Subject"] = "=?utf-8?b?SW52b2ljZSDigJMgTWFyY2g=?="  # Invoice, an en dash, March
    message.set_content("See https://example.com/a.\n")
    message.add_alternative("<p><img src='cid:logo%40x'><img src='cid:gone@x'></p>", subtype="html")
    message.get_payload()[1].add_related(PNG, "image", "png", cid="<logo@x>")
    message.add_attachment(b"a,b\n", maintype="text", subtype="csv", filename="a.csv")
    return message.as_bytes().replace(b"\n", b"\r\n")


def test_the_html_body_has_its_cid_images_as_data_urls_under_the_parts_policy() -> None:
    async def scenario(ses: FakeSES, client: TestClient) -> None:
        await send(ses, inline_image_mail(), mail(2))
        response = await client.get("/api/messages/1/html")
        assert response.status == 200
        assert response.headers["Content-Security-Policy"].startswith("sandbox; default-src 'none'")
        html = await response.text()
        found = re.search(r"src='data:image/png;base64,([^']+)'", html)
        assert found and base64.b64decode(found.group(1)) == PNG
        assert "src='cid:gone@x'" in html  # no such part: left as it was
        answer = await get(client, "/api/messages/2/html", 404)
        assert answer["error"] == "message 2 has no HTML body"

    run(scenario)


def test_a_message_has_its_headers_decoded_beside_the_raw_ones() -> None:
    async def scenario(ses: FakeSES, client: TestClient) -> None:
        await send(ses, inline_image_mail())
        message = await get(client, "/api/messages/1")
        raw = dict(message["headers"])["Subject"]
        decoded = dict(message["headers_decoded"])["Subject"]
        assert ("=?utf-8?" in raw.lower(), decoded) == (True, "Invoice \u2013 March")

    run(scenario)


def test_the_list_summary_gives_a_snippet_and_counts_attachments_not_inline_images() -> None:
    async def scenario(ses: FakeSES, client: TestClient) -> None:
        await send(ses, inline_image_mail(), mail(2))
        plain = await get(client, "/api/messages")
        assert "snippet" not in plain[0]
        listed = await get(client, "/api/messages?summary=1")
        assert [(m["snippet"], m["attachments"]) for m in listed] == [
            ("See https://example.com/a.", 1),
            ("Body of message 2.", 0),
        ]
        assert [m["command"] for m in listed] == [5, 9]  # each end of data's command number

    run(scenario)


def test_a_long_conversation_is_cut_in_the_middle_and_paged_whole() -> None:
    grey = Rule.from_spec("name=grey,stage=RCPT,nth=150,action=reply,code=451,text=Later")

    async def scenario(ses: FakeSES, client: TestClient) -> None:
        async with aiosmtplib.SMTP(hostname=ses.host, port=ses.port) as smtp:
            for n in range(1, 301):
                try:
                    await smtp.sendmail("sender@example.com", ["rcpt@example.com"], mail(n))
                except aiosmtplib.SMTPRecipientsRefused:
                    await smtp.sendmail("sender@example.com", ["rcpt@example.com"], mail(n))
        whole = await get(client, "/api/sessions/1?conversation=all")
        items = whole["conversation"]
        assert len(items) == whole["conversation_total"] > sessions.CUT_ITEMS
        cut = await get(client, "/api/sessions/1")
        shown = cut["conversation"]
        more = shown[sessions.SHOWN]
        assert more == {
            "kind": "more",
            "offset": sessions.SHOWN,
            "count": len(items) - 2 * sessions.SHOWN,
        }
        assert shown[: sessions.SHOWN] + shown[sessions.SHOWN + 1 :] == (
            items[: sessions.SHOWN] + items[-sessions.SHOWN :]
        )
        (fault,) = cut["faults"]
        assert items[fault["position"]]["kind"] == "fault" and fault["name"] == "grey"
        paged = []
        offset = 0
        while offset < len(items):
            page = await get(client, f"/api/sessions/1/conversation?offset={offset}&limit=700")
            assert page["total"] == len(items)
            paged += page["items"]
            offset += 700
        assert paged == items
        carried = [i["carried"] for i in items if i.get("carried")]
        assert carried == list(range(1, 301))
        await get(client, "/api/sessions/1/conversation?offset=-1", 400)
        await get(client, "/api/sessions/9/conversation", 404)

    # The ledger's default keeps 2,000 lines a session; serve keeps sessions.TRANSCRIPT_LINES.
    run(scenario, faults=[grey], ledger=Ledger(transcript_limit_lines=sessions.TRANSCRIPT_LINES))
