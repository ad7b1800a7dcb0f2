"""The live page of `ses-harness proxy`: a session shows both sides, in headless Chromium."""

from __future__ import annotations

import shutil
import smtplib

import pytest

from harness import FakeSES
from tests.serve_process import ServeProcess
from tests.test_web_page import browser, mail, open_page  # noqa: F401 - fixtures

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = [
    pytest.mark.skipif(
        (shutil.which("chromium") or shutil.which("chromium-browser")) is None,
        reason="no chromium on PATH (Debian: apt-get install chromium)",
    ),
    pytest.mark.slow,
]


def test_a_proxied_session_shows_the_client_the_plan_and_the_upstream(open_page) -> None:  # noqa: F811
    with FakeSES(profile="plain") as upstream:
        proxy = ServeProcess(
            "--upstream",
            f"127.0.0.1:{upstream.port}",
            "--limit",
            "session_limit=1",
            subcommand="proxy",
        )
        try:
            with smtplib.SMTP(*proxy.smtp) as client:
                client.sendmail("app@example.com", ["user@example.com"], mail(1))
                with pytest.raises(smtplib.SMTPSenderRefused):
                    client.sendmail("app@example.com", ["user@example.com"], mail(2))
            page = open_page(proxy, "#/sessions")
            page.click("#sessions tbody tr[data-number='1']")
            sync_api.expect(page.locator("#conversation tr.fault")).to_have_count(1)
            rows = page.locator("#conversation tr").all_inner_texts()
        finally:
            proxy.close()
    labels = [row.split("\t")[1] for row in rows if row.count("\t") >= 2]
    assert {"C:", "S:", "→U:", "U:"} <= set(labels)
    relayed = next(row for row in rows if "\t→U:\t" in row and "MAIL FROM" in row)
    assert relayed.endswith("MAIL FROM:<app@example.com>")
    assert page.locator("#conversation tr.upstream").count() == labels.count("→U:") + labels.count(
        "U:"
    )
    # The 421 of the cap is the proxy's: no upstream line follows the last client MAIL FROM.
    last_mail = max(i for i, row in enumerate(rows) if "\tC:\t" in row and "MAIL FROM" in row)
    assert rows[last_mail + 2].split("\t")[-1].startswith("421")
    assert "\t→U:\tMAIL" not in "".join(rows[last_mail:])
