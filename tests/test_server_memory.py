"""What a server and its ledger hold for a long run (issue 28: 100,000 messages of 10 KB under
200 MB): nothing loaded at start that only TLS or SNS signatures need, and each message's header
fields packed. Sizes, not times."""

from __future__ import annotations

import ssl
import subprocess
import sys
import tracemalloc
import urllib.request

from harness import FakeSES
from harness.base.headers import HeaderFields, parse_headers
from harness.base.ledger import Ledger
from harness.server.events.sns import CERTIFICATE_PATH
from harness.server.tls import shared_certificates

STARTED = """
import sys
from harness import FakeSES
with FakeSES() as ses:
    print(sorted({m.split(".")[0] for m in sys.modules} & {"cryptography", "trustme"}))
"""


def test_a_server_without_tls_starts_without_cryptography() -> None:
    # A fresh interpreter: this one has loaded it for other tests. It was 11.6 MiB at start.
    done = subprocess.run(
        [sys.executable, "-c", STARTED], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_the_sns_port_still_serves_its_certificate_over_https() -> None:
    with FakeSES() as ses:
        url = f"{ses.sns_url}/{CERTIFICATE_PATH}"
        context = ssl.create_default_context(cafile=shared_certificates().ca_file)
        for _ in range(2):  # the certificates are made at the first handshake, kept for the next
            with urllib.request.urlopen(url, context=context, timeout=30) as answer:
                assert answer.read() == ses.signing_certificate_pem


SIGNS_INSIDE = """
from harness.server.events.signing import signing_key
def test_sign():
    assert signing_key().sign(NOTIFICATION, "2")
NOTIFICATION = %r
"""
NOTIFICATION = {"Type": "Notification", "Message": "m", "MessageId": "1", "TopicArn": "a"}


def test_a_signature_still_works_after_an_in_process_run_that_signed(pytester) -> None:
    # cryptography is loaded only when needed, and pytester forgets what a run loaded; the suite's
    # conftest loads it first, without which this signature failed (one CI worker, 12 tests).
    pytester.makepyfile(SIGNS_INSIDE % NOTIFICATION)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    from harness.server.events.signing import SigningKey

    assert SigningKey().sign(NOTIFICATION, "2")


BLOCK = (
    b"From: Garcia-Erickson <notifications@example.com>\r\n"
    b"To: Christopher Oliver <christopher.oliver.%d@example.com>\r\n"
    b"Subject: Remain author production %d\r\n"
    b"Date: Thu, 01 Jan 2026 00:%02d:%02d +0000\r\n"
    b"Message-ID: <a774e055b9efaab3.%d@example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n\r\nHello.\r\n"
)
MESSAGES = 2_000


def test_the_ledger_holds_header_fields_packed() -> None:
    ledger = Ledger(memory_budget_bytes=0)  # no bodies: a case's ledger
    blocks = [BLOCK % (n, n, n // 60 % 60, n % 60, n) for n in range(MESSAGES)]
    ids = [f"0100019b1a2b3c4d-{n:08x}-0000-0000-0000-000000000000-000000" for n in range(MESSAGES)]
    accept = {"mail_from": "a@example.com", "rcpt_tos": ("b@example.com",), "acknowledged": True}
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n, block in enumerate(blocks):
            ledger.accept(None, ses_id=ids[n], data=block, at=n, wall_at=n, **accept)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # A record, its SHA-256, Message-ID and Subject, and its 8 fields (4 of them its own): with
    # the fields as tuples of pairs 1,174 bytes a message here; packed, 899.
    assert held < MESSAGES * 1000, f"{held / MESSAGES:.0f} bytes a message"
    record = ledger.messages[3]
    fields = parse_headers(blocks[3])
    assert isinstance(record.headers, HeaderFields) and record.headers == fields
    assert list(record.headers) == list(fields) and len(fields) == 8
    assert record.header("message-id") == "<a774e055b9efaab3.3@example.com>"
    assert record.message_id == "<a774e055b9efaab3.3@example.com>"
    assert record.subject == "Remain author production 3"


def test_packed_header_fields_read_back_as_they_were_given() -> None:
    odd = [
        (),
        (("Subject", "=?utf-8?q?caf=C3=A9?= : a colon, and é"),),
        (("X-Bytes", "\udcff\udcfe raw bytes kept as surrogates"), ("To", "")),
        (("From", "a@x"), ("From", "b@x"), ("X-Long", "v" * 5000)),
        (("Odd:Name", "kept as it is"),),  # cannot pack: stays the tuple
        (("X-Broken", "two\nlines"),),
    ]
    for pairs in odd:
        fields = HeaderFields(pairs)
        assert fields == pairs and tuple(fields) == pairs and len(fields) == len(pairs)
        assert hash(fields) == hash(pairs) and repr(fields) == repr(pairs)
        assert fields[:1] == pairs[:1]
    assert HeaderFields(odd[3]).get("FROM") == "a@x" and HeaderFields(()).get("to") is None
