"""django-ses's SNS webhook view, unmodified, in a Django site of its own process, receives the
fake's events for mail sent over SMTP to the mailbox simulator, checks each signature with the
certificate it fetches from SigningCertURL, and sends its bounce, complaint and delivery
signals naming the messageIds the 250s gave."""

from __future__ import annotations

import json
import smtplib
import subprocess
import sys
from pathlib import Path

import pytest

from harness.base.clock import ScaledClock
from harness.server.fake_ses import FakeSES
from harness.server.tls import shared_certificates

pytest.importorskip("django_ses")
pytest.importorskip("requests")

CLIENTS = Path(__file__).resolve().parent.parent / "clients"
SIMULATOR = "simulator.amazonses.com"


@pytest.fixture
def webhook(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Start the fake, then django-ses's site trusting the fake's certificate host."""
    log = tmp_path / "signals.jsonl"
    with FakeSES(clock=ScaledClock(50.0), api=False, idle_timeout_s=None) as ses:
        env = {
            "PATH": "/usr/bin:/bin",
            "SNS_CERT_DOMAIN": ses.sns_url.removeprefix("https://"),
            "REQUESTS_CA_BUNDLE": shared_certificates().ca_file,
            "WEBHOOK_LOG": str(log),
            "PYTHONPATH": str(CLIENTS),
        }
        site = subprocess.Popen(
            [sys.executable, str(CLIENTS / "django_ses_webhook.py")],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        try:
            assert site.stdout is not None
            port = int(site.stdout.readline())
            yield ses, f"http://127.0.0.1:{port}/ses/event-webhook/", log
        finally:
            site.kill()
            site.wait()


def _send(ses: FakeSES, local: str) -> str:
    with smtplib.SMTP(ses.host, ses.port) as smtp:
        smtp.sendmail("app@example.com", [f"{local}@{SIMULATOR}"], b"Subject: t\r\n\r\nhi\r\n")
    return ses.messages[-1].ses_id


def test_django_ses_verifies_and_signals_each_simulator_event(webhook) -> None:  # type: ignore[no-untyped-def]
    ses, url, log = webhook
    ses.subscribe(url, form="notification")  # an identity's feedback notifications, SigV1
    bounced, delivered, complained = (_send(ses, n) for n in ("bounce", "success", "complaint"))
    # the confirmation, then Bounce, Delivery, Delivery and Complaint: each answered 200, which
    # django-ses gives only to a message whose signature it verified (else 400)
    attempts = ses.wait_for_deliveries(5, timeout_s=30)
    assert next((a.type, a.status) for a in attempts) == ("SubscriptionConfirmation", 200)
    assert all(a.status == 200 for a in attempts), attempts
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    got = sorted((line["signal"], line["messageId"]) for line in lines)
    assert got == sorted(
        [
            ("bounce_received", bounced),
            ("delivery_received", delivered),
            ("delivery_received", complained),
            ("complaint_received", complained),
        ]
    )


def test_django_ses_checks_sha1_only_so_it_refuses_signature_version_2(webhook) -> None:  # type: ignore[no-untyped-def]
    ses, url, _ = webhook
    ses.subscribe(url, signature_version="2")  # SHA256: django-ses checks SHA1 only
    _send(ses, "success")
    attempts = ses.events_hub.wait_for_attempts(lambda a: len(a) >= 2, 30)
    assert {a.status for a in attempts} == {400}
