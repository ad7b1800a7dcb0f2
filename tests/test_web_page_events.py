"""The live page's SES events view in a real browser: the events of mail to the mailbox
simulator, and the posts to the events URL with their answers."""

from __future__ import annotations

import smtplib

import pytest

from tests.test_events import Receiver

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

from tests.test_web_page import browser, open_page, pytestmark, serve  # noqa: F401


def test_the_events_view_lists_events_and_posts(serve, open_page) -> None:  # noqa: F811
    receiver = Receiver()
    try:
        server = serve("--events-url", receiver.url)
        with smtplib.SMTP(*server.smtp) as client:
            client.sendmail(
                "app@example.com", ["bounce@simulator.amazonses.com"], b"Subject: x\r\n\r\nhi\r\n"
            )
        page = open_page(server, "#/events")
        page.wait_for_selector("#ses-events tbody tr td:text-is('Bounce')")
        assert "Permanent/General" in page.inner_text("#ses-events")
        assert page.inner_text("#count-ses-events") == "2"
        page.wait_for_selector("#ses-deliveries tbody tr td:text-is('Bounce')")
        rows = page.inner_text("#ses-deliveries")
        assert "SubscriptionConfirmation" in rows and "200" in rows
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
