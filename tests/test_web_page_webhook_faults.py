"""The live page's posts to SNS subscribers name the NOTIFY rule that fired on a post."""

from __future__ import annotations

import smtplib

import pytest

from tests.test_events import Receiver

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

from tests.test_web_page import browser, open_page, pytestmark, serve  # noqa: F401


def test_a_faulted_post_names_its_rule_on_the_page(serve, open_page) -> None:  # noqa: F811
    receiver = Receiver()
    try:
        fault = "name=lost-send,stage=NOTIFY,kind=Send,attempts=1,action=drop"
        server = serve("--events-url", receiver.url, "--fault", fault)
        with smtplib.SMTP(*server.smtp) as client:
            client.sendmail(
                "app@example.com", ["bounce@simulator.amazonses.com"], b"Subject: x\r\n\r\nhi\r\n"
            )
        page = open_page(server, "#/events")
        page.wait_for_selector("#ses-deliveries tbody tr td:text-is('lost-send')")
        row = page.inner_text("#ses-deliveries tbody tr:has(td:text-is('lost-send'))")
        assert "Send" in row and "dropped by rule lost-send" in row
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
