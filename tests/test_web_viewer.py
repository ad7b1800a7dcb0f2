"""The live page as a daily mail viewer and for long sessions, in headless Chromium (Playwright)
against a real `ses-harness serve`: an inline image rendered from its part, headers decoded
beside their raw form, links in a text body, preview widths, thumbnails, the list's columns;
the whole of a 350-message session, a jump to its fault, an end of data linked to its message;
the favicon, an API message's status, and a delete that stays on the page.

Fixtures and helpers are test_web_page's; waits are Playwright's, nothing sleeps.
"""

from __future__ import annotations

import base64
import smtplib
import urllib.request
from email.message import EmailMessage

import pytest

from tests import test_web_page as web
from tests.test_web_page import CHROMIUM, WAIT_MS, sync_api

# The page tests' fixtures: a browser per module, a fresh tab, a serve process.
browser, open_page, serve = web.browser, web.open_page, web.serve

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH"),
    pytest.mark.slow,
]
# A 4x3 PNG: its natural width is what the browser decoded.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAQAAAADCAIAAAA7ljmRAAAAEklEQVR4nGP4z8AARBgEQwYOAQCJ/QMJdXmZjgAAAABJRU5ErkJggg=="
)
#: An image's natural width once it has loaded (or failed: -1), waited for by its own events.
NATURAL_WIDTH = """img => img.complete && img.getAttribute("src")
    ? (img.naturalWidth || -1)
    : new Promise(done => {
        img.addEventListener("load", () => done(img.naturalWidth));
        img.addEventListener("error", () => done(-1));
    })"""
SUBJECT = "Invoice March #77 \u2013 with attachment"  # an en dash: the header is RFC 2047


def newsletter() -> bytes:
    mail = EmailMessage()
    mail["From"] = "Shop <news@shop.example>"
    mail["To"] = "ann@example.com"
    mail["Subject"] = SUBJECT
    mail.set_content("Read it online: https://shop.example/news?id=7. Or mail us.\n")
    mail.add_alternative(
        "<html><body><p>Logo:</p><img id='logo' src='cid:logo@shop'></body></html>",
        subtype="html",
    )
    mail.get_payload()[1].add_related(PNG, "image", "png", cid="<logo@shop>")
    mail.add_attachment(PNG, maintype="image", subtype="png", filename="chart.png")
    return mail.as_bytes().replace(b"\n", b"\r\n")


def send(server, *messages: bytes) -> None:
    with smtplib.SMTP(*server.smtp) as client:
        for data in messages:
            client.sendmail("news@shop.example", ["ann@example.com"], data)


def test_an_inline_image_renders_from_its_part_under_the_parts_policy(serve, open_page) -> None:
    server = serve()
    send(server, newsletter())
    page = open_page(server, "#/messages/1")
    page.click("#message-tabs button[data-tab=html]")
    logo = page.frame_locator("#message-html").locator("#logo")
    sync_api.expect(logo).to_be_visible()
    assert logo.evaluate(NATURAL_WIDTH) == 4
    assert not page.blocked and not page.reached  # nothing loaded from anywhere else
    # The body is served under the same policy as every part: no script, data: images only.
    with urllib.request.urlopen(server.ready["api_url"] + "/api/messages/1/html") as answer:
        policy = answer.headers["Content-Security-Policy"]
    assert policy.startswith("sandbox; default-src 'none'; img-src data: cid:")

    page.click("#preview-widths button[data-width=phone]")
    assert page.eval_on_selector("#message-html", "f => f.getBoundingClientRect().width") == 375


def test_headers_show_decoded_beside_raw_and_text_links_open_apart(serve, open_page) -> None:
    server = serve()
    send(server, newsletter())
    page = open_page(server, "#/messages/1")
    link = page.locator("#message-text a")
    sync_api.expect(link).to_have_text("https://shop.example/news?id=7")
    assert link.get_attribute("href") == "https://shop.example/news?id=7"
    assert (link.get_attribute("target"), link.get_attribute("rel")) == (
        "_blank",
        "noreferrer noopener",
    )
    page.click("#message-tabs button[data-tab=headers]")
    subject = page.locator("#message-headers tr", has=page.locator("th", has_text="Subject"))
    assert subject.locator(".decoded").inner_text() == SUBJECT
    assert "=?utf-8?" in subject.locator(".raw").inner_text()
    page.click("#message-tabs button[data-tab=parts]")
    thumb = page.locator("#message-parts img.thumb").first
    sync_api.expect(thumb).to_be_visible()
    assert thumb.evaluate(NATURAL_WIDTH) == 4


def test_the_list_shows_date_size_attachments_snippet_and_how_it_came(serve, open_page) -> None:
    server = serve()
    send(server, newsletter())
    boto3 = pytest.importorskip("boto3")
    boto3.client(
        "sesv2",
        endpoint_url=server.ready["api_url"],
        region_name="us-east-1",
        aws_access_key_id="AKIAEXAMPLE",
        aws_secret_access_key="secret",
    ).send_email(
        FromEmailAddress="app@example.com",
        Destination={"ToAddresses": ["bob@example.com"]},
        Content={"Simple": {"Subject": {"Data": "By API"}, "Body": {"Text": {"Data": "hi"}}}},
    )
    page = open_page(server)
    rows = page.locator("#messages tbody tr")
    sync_api.expect(rows).to_have_count(2)
    api_row, smtp_row = rows.nth(0), rows.nth(1)
    assert "Read it online" in smtp_row.locator(".snippet").inner_text()
    assert smtp_row.locator(".clip").inner_text() == "1 file"  # the logo is inline, not counted
    assert smtp_row.locator(".came").inner_text() == "SMTP #1"
    assert "KiB" in smtp_row.locator(".size").inner_text()
    assert smtp_row.locator(".date").inner_text()
    assert smtp_row.locator(".to").inner_text() == "→ ann@example.com"
    assert api_row.locator(".came").inner_text() == "API v2"
    api_row.click()
    sync_api.expect(page.locator("#message-meta")).to_contain_text(
        "delivered (200 sent with its MessageId)"
    )


def test_the_favicon_is_served(serve) -> None:
    server = serve()
    with urllib.request.urlopen(server.ready["api_url"] + "/favicon.ico") as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"] == "image/svg+xml"


def test_deleting_a_message_opened_from_another_page_stays_on_the_page(serve, open_page) -> None:
    server = serve()
    send(server, *[newsletter() for _ in range(55)])  # two pages of 50
    page = open_page(server, "#/messages/2")  # on the second page; the list shows the first
    sync_api.expect(page.locator("#message-subject")).to_have_text(SUBJECT)
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#message-delete")
    sync_api.expect(page.locator("#message")).to_be_hidden()
    assert page.url.endswith("#/messages")
    sync_api.expect(page.locator("#messages tr.selected")).to_have_count(0)


def long_session(server, count: int) -> None:
    """One session of `count` messages, the last refused by a greylisting rule first."""
    with smtplib.SMTP(*server.smtp) as client:
        for n in range(count):
            data = f"Subject: m{n}\r\nMessage-ID: <m{n}@x>\r\n\r\nbody {n}\r\n".encode()
            try:
                client.sendmail("a@example.com", [f"u{n}@example.com"], data)
            except smtplib.SMTPRecipientsRefused:
                client.sendmail("a@example.com", [f"u{n}@example.com"], data)


def test_a_350_message_session_is_reachable_whole_with_a_jump_to_its_fault(
    serve, open_page
) -> None:
    grey = "name=grey,stage=RCPT,nth=200,action=reply,code=451,text=4.7.1 Try later"
    server = serve("--fault", grey)
    long_session(server, 350)
    page = open_page(server, "#/sessions/1")
    more = page.locator("#conversation tr.more")
    sync_api.expect(more).to_have_count(1)
    assert page.locator("#conversation tr.fault").count() == 0  # the fault is in the middle
    # The jump loads the middle up to the fault and shows it.
    page.click("#session-meta button.linkish")
    fault = page.locator("#conversation tr.fault.target")
    sync_api.expect(fault).to_contain_text("rule grey", timeout=WAIT_MS)  # a bound, not a speed
    sync_api.expect(fault).to_be_in_viewport()
    # The rest of the middle on demand, a page at a time or all: every line, none left out.
    rows = page.locator("#conversation tr[data-position]")
    shown = rows.count()
    more.locator("button.load-more").click()
    sync_api.expect(rows).to_have_count(shown + 500)
    more.locator("button.load-all").click()
    sync_api.expect(more).to_have_count(0, timeout=WAIT_MS)
    total = rows.count()
    _, session = server.api("GET", "/api/sessions/1")
    assert total == session["conversation_total"] > 2000
    assert session["transcript_dropped"] == 0
    positions = page.eval_on_selector_all(
        "#conversation tr[data-position]", "rows => rows.map(r => Number(r.dataset.position))"
    )
    assert positions == list(range(total))
    # An end of data links to the message it carried.
    carried = page.locator("#conversation a.carried").nth(349)
    assert carried.inner_text() == "→ message #350"
    carried.click()
    sync_api.expect(page.locator("#message-subject")).to_have_text("m349")


def test_the_plan_panel_lists_stored_templates(serve, open_page, tmp_path) -> None:
    stored = tmp_path / "welcome.json"
    stored.write_text(
        '{"TemplateName": "welcome", "TemplateContent": {"Subject": "Hi {{name}}", "Text": "t"}}'
    )
    server = serve("--templates", str(stored))
    page = open_page(server, "#/plan")
    row = page.locator("#plan-templates tr[data-name=welcome]")
    sync_api.expect(row).to_contain_text("Hi {{name}}")
    assert row.locator("td").nth(2).inner_text() == "Text"
    assert page.locator("#plan-templates-empty").is_hidden()
