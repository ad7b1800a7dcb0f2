"""The live page at `/` of the API port, in headless Chromium: mail sent while the page is open
shows up without a reload."""

from __future__ import annotations

import shutil
import smtplib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serve_process import ServeProcess

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium)"
)
# Bounds for a broken page; the page polls every second, so a working one is far inside them.
WAIT_MS = 30_000
SUBJECT = "Quarterly report <b>42</b>"  # markup in a subject must show as text


@pytest.fixture
def page() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"],
        )
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.set_default_timeout(WAIT_MS)
        yield page
        browser.close()


@pytest.fixture
def server() -> Iterator[ServeProcess]:
    process = ServeProcess(
        "--profile",
        "plain",
        "--fault",
        "name=greylist,stage=RCPT,first=1,action=reply,code=451,text=4.7.1 Greylisted",
    )
    yield process
    process.close()


def text_is(page: Any, element_id: str, expected: str) -> None:
    page.wait_for_function(
        "([id, expected]) => document.getElementById(id).textContent === expected",
        arg=[element_id, expected],
    )


def test_the_page_shows_new_mail_and_faults_without_a_reload(
    page: Any, server: ServeProcess, tmp_path: Path
) -> None:
    navigations: list[str] = []
    page.goto(server.ready["api_url"] + "/")
    text_is(page, "count-messages", "0")
    assert page.locator("#messages-empty").is_visible()
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    page.evaluate("window.sameDocument = true")

    message = (
        f"From: app@example.com\r\nTo: user@example.com\r\nSubject: {SUBJECT}\r\n"
        "Message-ID: <page-1@example.com>\r\n\r\nHello page.\r\n"
    ).encode()
    with smtplib.SMTP(server.ready["smtp_host"], server.ready["smtp_port"]) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail("app@example.com", ["user@example.com"], message)
        client.sendmail("app@example.com", ["user@example.com"], message)

    text_is(page, "count-messages", "1")
    row = page.locator("#messages tbody tr").first
    assert row.locator("td.subject").inner_text() == SUBJECT
    assert "user@example.com" in row.inner_text()
    text_is(page, "count-faults", "1")
    assert "rule:greylist" in page.locator("#faults tbody").inner_text()
    assert "451 4.7.1 Greylisted" in page.locator("#faults tbody").inner_text()
    assert not page.locator("#messages-empty").is_visible()
    assert page.evaluate("window.sameDocument") is True
    assert navigations == []
    assert page.locator("#status").inner_text().startswith("live")
    screenshot = tmp_path / "live-page.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 0


def test_the_page_says_so_when_the_server_is_gone(page: Any, server: ServeProcess) -> None:
    page.goto(server.ready["api_url"] + "/")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('live')")
    server.stop()
    page.wait_for_function(
        "document.getElementById('status').textContent.startsWith('server unreachable')"
    )
