"""Real SES API clients through `cmd:`: the AWS SDK for JavaScript v3 (`@aws-sdk/client-sesv2`)
and django-ses, unmodified, against limits and faults; claims and ledger compared."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from harness.base.clock import RealClock
from harness.core.plan import Rule
from harness.runner.command import CommandStrategy
from harness.runner.strategy import ClaimStatus, OutgoingMessage
from harness.server.fake_ses import FakeSES
from tests.helpers import message

CLIENTS = Path(__file__).resolve().parent.parent / "clients"
NODE_SDK = CLIENTS / "aws-sdk" / "node_modules" / "@aws-sdk" / "client-sesv2"

needs_node_sdk = pytest.mark.skipif(
    shutil.which("node") is None or not NODE_SDK.is_dir(),
    reason="needs node and (cd clients/aws-sdk && npm ci)",
)


def batch(count: int) -> list[OutgoingMessage]:
    return [
        OutgoingMessage(
            f"<msg-{n}@test.example>", "app@example.com", ("user@example.com",), message(n)
        )
        for n in range(count)
    ]


def run(command: str, count: int, **server) -> tuple[list, FakeSES]:
    clock = RealClock()
    strategy = CommandStrategy.from_spec(f"cmd[timeout_s=120]:{command}")
    with FakeSES(clock=clock, **server) as ses:
        claims = list(strategy(batch(count), ses.endpoint, clock))
    return claims, ses


@needs_node_sdk
def test_node_sdk_sends_through_the_fake_and_its_retry_duplicates_a_cut_after_accept():
    cut = Rule.from_dict({"stage": "API", "nth": 2, "action": "drop_after_accept"})
    claims, ses = run(
        f"node {CLIENTS / 'aws-sdk' / 'send.js'}",
        4,
        faults=[cut],
        aws_credentials=("AKIANODE", "node-secret"),
        rate_per_s=None,
    )
    assert Counter(c.status for c in claims) == Counter({ClaimStatus.SENT: 4})
    copies = Counter(m.message_id for m in ses.messages)
    assert copies["<msg-1@test.example>"] == 2
    assert {m.via for m in ses.messages} == {"api-v2"}


@needs_node_sdk
def test_node_sdk_raises_too_many_requests_exception_past_the_daily_quota():
    claims, ses = run(f"node {CLIENTS / 'aws-sdk' / 'send.js'}", 3, daily_quota=2, rate_per_s=None)
    assert [c.status for c in claims] == [ClaimStatus.SENT, ClaimStatus.SENT, ClaimStatus.FAILED]
    assert claims[2].reply_code == 429
    assert claims[2].reply_text == "TooManyRequestsException: Daily message quota exceeded."
    assert len(ses.messages) == 2


def _django_ses() -> bool:
    try:
        import django_ses  # noqa: F401
    except ImportError:
        return False
    return True


needs_django_ses = pytest.mark.skipif(not _django_ses(), reason="needs the aws extra")


@needs_django_ses
@pytest.mark.parametrize(("flag", "via"), [("", "api-v1"), (" --v2", "api-v2")])
def test_django_ses_sends_and_the_first_refusal_ends_its_batch(flag, via):
    import sys

    claims, ses = run(
        f"{sys.executable} {CLIENTS / 'django_ses_batch.py'}{flag}",
        4,
        daily_quota=2,
        rate_per_s=1000.0,  # not None: django-ses's auto-throttle fails on an unlimited rate (-1)
    )
    assert [c.status for c in claims] == [
        ClaimStatus.SENT,
        ClaimStatus.SENT,
        ClaimStatus.FAILED,
        ClaimStatus.FAILED,
    ]
    assert "Daily message quota exceeded." in (claims[2].reply_text or "")
    assert [m.via for m in ses.messages] == [via, via]
