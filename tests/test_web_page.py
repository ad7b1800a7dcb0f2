"""The live page at `/` of the API port, in headless Chromium (Playwright), against a real
`ses-harness serve` process: reading a message, a session with its faults, push updates,
search, delete, the plan panel, the keyboard, a phone's width and the dark theme.

Waits are Playwright's (a selector or a condition, with a bound); nothing sleeps.
"""

from __future__ import annotations

import re
import shutil
import smtplib
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest

from tests.serve_process import ServeProcess

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium)"
    ),
    pytest.mark.slow,  # a browser and a serve process per test: 3 to 16 s each
]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
# Bound for a broken page; a working one is far inside it.
WAIT_MS = 30_000
# A bound on the wait, not a speed test (a loaded CI machine must not fail it): that the page
# is pushed to, not polling, is asserted on its requests; the latency itself is measured by
# bench/live_page.py (about 1 ms from the 250 to the answer of a waiting request).
PUSH_MS = 10_000
REMOTE = "http://203.0.113.7"  # TEST-NET-3: nothing there, and nothing may ask for it
SUBJECT = "Quarterly report <b>42</b>"  # markup in a subject must show as text


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser: Any) -> Iterator[Any]:
    """`open_page(server, hash, width=1400, scheme="light")`: a fresh tab on the live page,
    waited until its event stream is connected; it records every URL the tab requests."""
    contexts = []

    def opener(server: ServeProcess, where: str = "#/messages", **options: Any) -> Any:
        context = browser.new_context(
            viewport={"width": options.get("width", 1400), "height": 900},
            color_scheme=options.get("scheme", "light"),
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.requested, page.reached, page.blocked = [], [], []
        page.on("request", lambda request: page.requested.append(request.url))
        page.on(
            "requestfailed", lambda request: page.blocked.append((request.url, request.failure))
        )
        # A request that gets here would have left the machine: record it and stop it.
        context.route(
            f"{REMOTE}/**", lambda route: (page.reached.append(route.request.url), route.abort())
        )
        page.goto(server.ready["api_url"] + "/" + where)
        page.wait_for_selector("#status.ok")
        return page

    yield opener
    for context in contexts:
        context.close()


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[ServeProcess] = []

    def start(*args: str) -> ServeProcess:
        started.append(ServeProcess("--profile", "plain", *args))
        return started[-1]

    yield start
    for process in started:
        process.close()


def mail(number: int, subject: str = "", html: str | None = None, attach: bool = False) -> bytes:
    message = EmailMessage()
    message["From"] = "app@example.com"
    message["To"] = f"user{number}@example.com"
    message["Subject"] = subject or f"Message {number}"
    message["Message-ID"] = f"<page-{number}@example.com>"
    message.set_content(f"Plain body of message {number}.\n")
    if html is not None:
        message.add_alternative(html, subtype="html")
    if attach:
        message.add_attachment(
            b"col1,col2\n1,2\n", maintype="text", subtype="csv", filename="numbers.csv"
        )
    return message.as_bytes().replace(b"\n", b"\r\n")


def send(server: ServeProcess, *messages: bytes) -> None:
    with smtplib.SMTP(*server.smtp) as client:
        for number, data in enumerate(messages):
            client.sendmail("app@example.com", [f"user{number}@example.com"], data)


def test_a_message_opens_with_its_text_html_headers_and_attachments(serve, open_page) -> None:
    server = serve()
    html = "<html><body><h1 id='greeting'>Hello in HTML</h1><p>second line</p></body></html>"
    send(server, mail(1, SUBJECT, html=html, attach=True))
    page = open_page(server)
    page.click("#messages tbody tr >> nth=0")
    page.wait_for_selector("#message-text:text('Plain body of message 1.')")
    assert page.inner_text("#message-subject") == SUBJECT
    assert re.search(r"#/messages/1$", page.url)

    page.click("#message-tabs button[data-tab=html]")
    heading = page.frame_locator("#message-html").locator("#greeting")
    sync_api.expect(heading).to_have_text("Hello in HTML")
    page.click("#message-tabs button[data-tab=source]")
    assert "<h1 id='greeting'>" in page.inner_text("#message-html-source")
    page.click("#message-tabs button[data-tab=headers]")
    assert "Message-ID" in page.inner_text("#message-headers")
    page.click("#message-tabs button[data-tab=parts]")
    attachment = page.locator("#message-parts tr.attachment")
    sync_api.expect(attachment).to_contain_text("numbers.csv")
    assert "text/csv" in attachment.inner_text()
    with page.expect_download() as download:
        attachment.locator("a").click()
    assert download.value.suggested_filename == "numbers.csv"
    page.click("#message-tabs button[data-tab=raw]")
    page.wait_for_selector("#message-raw:text('Subject: Quarterly report')")


def test_html_with_a_script_and_remote_images_runs_nothing_and_fetches_nothing(
    serve, open_page
) -> None:
    server = serve()
    html = f"""<html><head><link rel="stylesheet" href="{REMOTE}/style.css">
<style>@import url("{REMOTE}/imported.css"); p {{ background: url({REMOTE}/bg.png) }}</style>
</head><body><h1 id="untouched">as sent</h1>
<img src="{REMOTE}/pixel.gif" alt="remote"><img src="{REMOTE}/second.png">
<script>document.getElementById("untouched").textContent = "script ran";
try {{ parent.document.title = "script reached the page"; }} catch (e) {{}}
new Image().src = "{REMOTE}/from-script.gif";</script>
<p onclick="this.textContent='handler ran'">text</p>
<iframe src="{REMOTE}/frame.html"></iframe></body></html>"""
    send(server, mail(1, "tracking", html=html))
    page = open_page(server, "#/messages/1")
    page.click("#message-tabs button[data-tab=html]")
    frame = page.frame_locator("#message-html")
    sync_api.expect(frame.locator("#untouched")).to_have_text("as sent")
    frame.locator("p").click()
    sync_api.expect(frame.locator("p")).to_have_text("text")
    assert page.title() == "ses-harness: live"
    # The browser saw the remote URLs and refused each one itself (CSP); none went out.
    assert page.reached == []
    remote = [url for url in page.requested if url.startswith(REMOTE)]
    assert remote, "the test's HTML asks for remote resources"
    assert {failure for url, failure in page.blocked if url.startswith(REMOTE)} == {"csp"}
    assert {url for url, _ in page.blocked if url.startswith(REMOTE)} == set(remote)
    assert f"{REMOTE}/from-script.gif" not in remote  # the script never ran to ask
    own = server.ready["api_url"]
    others = [u for u in page.requested if not u.startswith((own, REMOTE, "data:", "about:"))]
    assert others == []
    assert page.get_attribute("#message-html", "sandbox") == ""


def test_a_session_shows_the_421_with_the_limit_that_caused_it(serve, open_page) -> None:
    server = serve("--limit", "session_limit=2")
    with smtplib.SMTP(*server.smtp) as client:
        for number in (1, 2):
            client.sendmail("app@example.com", ["user@example.com"], mail(number))
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("app@example.com", ["user@example.com"], mail(3))
    assert refused.value.smtp_code == 421
    page = open_page(server, "#/sessions")
    page.click("#sessions tbody tr[data-number='1']")
    fault = page.locator("#conversation tr.fault")
    sync_api.expect(fault).to_have_count(1)
    assert "limit session_limit" in fault.inner_text()
    assert "421" in fault.inner_text()
    assert "session_limit = 2" in fault.locator(".why").inner_text()
    # The fault sits between the MAIL FROM it refused and the 421 it caused.
    rows = page.locator("#conversation tr").all_inner_texts()
    at = next(i for i, text in enumerate(rows) if "limit session_limit" in text)
    assert "MAIL FROM" in rows[at - 1]
    assert rows[at + 1].split("\t")[-1].startswith("421")
    assert "closed by server (limit:session_limit)" in page.inner_text("#session-meta")
    assert page.locator("#session-messages li").count() == 2


def test_a_session_shows_a_refused_login_and_the_rule_behind_a_451(serve, open_page) -> None:
    server = serve(
        "--auth",
        "app:right",
        "--fault",
        "name=greylist,stage=RCPT,first=1,action=reply,code=451,text=4.7.1 Greylisted",
    )
    with smtplib.SMTP(*server.smtp) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("app", "wrong")
        client.login("app", "right")
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail("app@example.com", ["user@example.com"], mail(1))
    page = open_page(server, "#/sessions/1")
    sync_api.expect(page.locator("#conversation tr.fault")).to_contain_text("rule greylist")
    why = page.inner_text("#conversation tr.fault .why")
    assert "stage=RCPT,first=1,action=reply,code=451" in why
    meta = page.inner_text("#session-meta")
    assert "AUTH refused" in meta and "535" in meta
    assert "Logged in as\napp" in meta
    assert "closed by client (client quit)" in meta
    assert page.locator("#conversation tr.r5").count() >= 1  # the 535, marked as a refusal


def test_a_new_message_appears_without_a_reload(serve, open_page) -> None:
    server = serve()
    page = open_page(server)
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    page.evaluate("window.sameDocument = true")
    assert page.locator("#messages-empty").is_visible()

    send(server, mail(1, SUBJECT))
    page.wait_for_selector("#messages tbody tr td.subject .title", timeout=PUSH_MS)
    assert page.inner_text("#messages tbody tr td.subject .title") == SUBJECT
    sync_api.expect(page.locator("#count-messages")).to_have_text("1")
    send(server, mail(2, "the second"))
    sync_api.expect(page.locator("#messages tbody tr")).to_have_count(2, timeout=PUSH_MS)
    assert page.evaluate("window.sameDocument") is True
    assert navigations == []
    # Push, not polling: the page holds one event stream and asked for the list on events.
    assert sum("/api/events" in url for url in page.requested) == 1


def test_the_page_says_it_lost_the_server_and_reconnects(serve, open_page) -> None:
    server = serve()
    page = open_page(server)
    port = server.ready["api_url"].rsplit(":", 1)[1]
    server.stop()
    sync_api.expect(page.locator("#status")).to_have_text(re.compile("lost the server"))
    again = serve("--api-port", port)
    send(again, mail(1, "after the restart"))
    sync_api.expect(page.locator("#status")).to_have_text(re.compile("^live"))
    subject = page.locator("#messages tbody td.subject .title")
    sync_api.expect(subject).to_have_text("after the restart")


def test_search_filters_on_the_server_and_pages(serve, open_page) -> None:
    server = serve()
    subjects = [f"Invoice {n}" for n in range(1, 56)] + ["Welcome", "Password reset"]
    send(server, *(mail(n, subject) for n, subject in enumerate(subjects)))
    page = open_page(server)
    sync_api.expect(page.locator("#messages-total")).to_have_text("1\u201350 of 57")
    page.fill("#search", "subject:invoice")
    page.press("#search", "Enter")
    sync_api.expect(page.locator("#messages-total")).to_have_text("1\u201350 of 55")
    page.click("#page-older")
    sync_api.expect(page.locator("#messages-total")).to_have_text("51\u201355 of 55")
    sync_api.expect(page.locator("#messages tbody tr")).to_have_count(5)
    page.fill("#search", '"password reset"')
    page.press("#search", "Enter")
    sync_api.expect(page.locator("#messages tbody tr")).to_have_count(1)
    assert page.inner_text("#messages tbody td.subject .title") == "Password reset"
    page.fill("#search", "text:nothing-like-this")
    page.press("#search", "Enter")
    sync_api.expect(page.locator("#messages-empty")).to_have_text("Nothing matches.")


def test_delete_one_message_and_then_all(serve, open_page) -> None:
    server = serve()
    send(server, mail(1, "keep"), mail(2, "remove me"), mail(3, "keep too"))
    page = open_page(server, "#/messages/2")
    page.wait_for_selector("#message-subject:text('remove me')")
    page.click("#message-delete")
    sync_api.expect(page.locator("#messages tbody tr")).to_have_count(2)
    assert "remove me" not in page.inner_text("#messages")
    assert server.api("GET", "/api/messages/2")[0] == 404
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete-all")
    sync_api.expect(page.locator("#messages-empty")).to_be_visible()
    assert server.api("GET", "/api/messages")[1] == []


def test_a_rule_switched_off_in_the_panel_lets_the_next_message_through(serve, open_page) -> None:
    server = serve("--fault", "name=reject,stage=RCPT,action=reply,code=550,text=5.1.1 Rejected")
    with smtplib.SMTP(*server.smtp) as client, pytest.raises(smtplib.SMTPRecipientsRefused):
        client.sendmail("app@example.com", ["user@example.com"], mail(1))
    page = open_page(server, "#/plan")
    rule = page.locator("#plan-rules tbody tr", has_text="reject")
    sync_api.expect(rule.locator(".fired")).to_have_text("1")
    rule.locator("input.rule-on").uncheck()
    sync_api.expect(page.locator("#plan-state")).to_have_text(re.compile("^applied"))
    assert server.api("GET", "/api/plan")[1].get("faults") is None
    send(server, mail(2, "through now"))
    page.click(".tabs a[data-view=messages]")
    sync_api.expect(page.locator("#messages tbody td.subject .title")).to_have_text("through now")
    # Back on, and the count of its firings is still there.
    page.click(".tabs a[data-view=plan]")
    rule.locator("input.rule-on").check()
    sync_api.expect(page.locator("#plan-state")).to_have_text(re.compile("^applied"))
    assert server.api("GET", "/api/plan")[1]["faults"][0]["name"] == "reject"
    sync_api.expect(rule.locator(".fired")).to_have_text("1")


def test_the_panel_changes_a_limit_adds_a_rule_and_shows_the_apis_errors(serve, open_page) -> None:
    server = serve()
    page = open_page(server, "#/plan")
    page.fill("#plan-limits input.limit-value[data-key=session_limit]", "-3")
    page.click("#plan-apply")
    error = page.locator("#plan-error")
    sync_api.expect(error).to_be_visible()
    assert "key 'limits.session_limit': -3 is too small" in error.inner_text()
    page.fill("#plan-limits input.limit-value[data-key=session_limit]", "4")
    page.click("#plan-apply")
    sync_api.expect(page.locator("#plan-state")).to_have_text(re.compile("^applied"))
    assert server.api("GET", "/api/plan")[1]["limits"] == {"session_limit": 4}
    limit = page.locator("#plan-limits tr[data-key=session_limit]")
    limit.locator("input.limit-on").uncheck()  # off: the server runs without the cap
    sync_api.expect(limit).to_have_class("off")
    assert server.api("GET", "/api/plan")[1]["limits"] == {"session_limit": None}
    limit.locator("input.limit-on").check()  # on again: with the number it had
    sync_api.expect(limit).not_to_have_class("off")
    assert server.api("GET", "/api/plan")[1]["limits"] == {"session_limit": 4}

    form = page.locator("#rule-form")
    form.locator("input[name=name]").fill("slow-data")
    form.locator("select[name=stage]").select_option("DATA")
    form.locator("input[name=every]").fill("2")
    form.locator("select[name=action]").select_option("delay")
    form.locator("input[name=delay_s]").fill("0.01")
    form.locator("button[type=submit]").click()
    sync_api.expect(page.locator("#plan-rules tbody tr")).to_have_count(1)
    assert "slow-data: stage=DATA,every=2,action=delay,delay_s=0.01" in page.inner_text(
        "#plan-rules"
    )
    page.click("#plan-rules button.edit")  # change its numbers in the same form
    sync_api.expect(form.locator("input[name=every]")).to_have_value("2")
    form.locator("input[name=every]").fill("3")
    form.locator("button[type=submit]").click()
    sync_api.expect(page.locator("#plan-rules .spec")).to_contain_text("every=3")
    assert server.api("GET", "/api/plan")[1]["faults"][0]["every"] == 3
    assert page.locator("#plan-rules tbody tr").count() == 1
    form.locator("select[name=stage]").select_option("CONNECT")
    form.locator("input[name=sender]").fill("*@example.com")
    form.locator("select[name=action]").select_option("drop")
    form.locator("button[type=submit]").click()
    sync_api.expect(error).to_contain_text("no envelope is known at CONNECT")
    assert len(server.api("GET", "/api/plan")[1]["faults"]) == 1


def test_the_keyboard_moves_between_messages(serve, open_page) -> None:
    server = serve()
    send(server, mail(1, "first"), mail(2, "second"), mail(3, "third"))
    page = open_page(server)
    sync_api.expect(page.locator("#messages tbody tr")).to_have_count(3)
    page.keyboard.press("j")
    sync_api.expect(page.locator("#message-subject")).to_have_text("third")
    page.keyboard.press("j")
    sync_api.expect(page.locator("#message-subject")).to_have_text("second")
    page.keyboard.press("ArrowDown")
    sync_api.expect(page.locator("#message-subject")).to_have_text("first")
    page.keyboard.press("k")
    sync_api.expect(page.locator("#message-subject")).to_have_text("second")
    assert page.locator("#messages tr.selected td.subject .title").inner_text() == "second"
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "search"


def test_a_phone_width_shows_one_pane_at_a_time(serve, open_page) -> None:
    server = serve()
    send(server, mail(1, "on the phone"))
    page = open_page(server, width=390)
    page.click("#messages tbody tr >> nth=0")
    sync_api.expect(page.locator("#message-subject")).to_have_text("on the phone")
    assert not page.locator("#view-messages .list-pane").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.click("#message .back")
    sync_api.expect(page.locator("#view-messages .list-pane")).to_be_visible()
    assert not page.locator("#message").is_visible()


def test_the_theme_follows_the_system(serve, open_page) -> None:
    server = serve()
    background = "getComputedStyle(document.body).backgroundColor"
    light = open_page(server).evaluate(background)
    dark = open_page(server, scheme="dark").evaluate(background)
    assert light == "rgb(243, 245, 248)"
    assert dark == "rgb(18, 22, 29)"


def test_with_a_token_the_html_body_still_shows_sandboxed_and_fetches_nothing(
    serve, open_page
) -> None:
    token = "page-token-1"
    server = serve("--api-token", token)
    html = (
        f"<h1 id='t'>framed</h1><img src='{REMOTE}/p.gif'><script>document.body.remove()</script>"
    )
    send(server, mail(1, "with token", html=html))
    page = open_page(server, f"?token={token}#/messages/1")
    page.click("#message-tabs button[data-tab=html]")
    sync_api.expect(page.frame_locator("#message-html").locator("#t")).to_have_text("framed")
    assert page.reached == []
    assert "token" not in page.url
