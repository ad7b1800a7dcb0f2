"""`GET /metrics` of `ses-harness serve`: Prometheus' text format, read with Prometheus' own
parser, whose counters are the ledger's after a run of SMTP and SES API traffic."""

from __future__ import annotations

import asyncio
import smtplib
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.console.app import create_app
from harness.console.http import ApiServer
from harness.server.fake_ses import FakeSES
from tests.helpers import message

boto3 = pytest.importorskip("boto3")
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

GREYLIST = "name=greylist,stage=RCPT,nth=1,action=reply,code=451,text=4.7.1 Greylisted"


def scrape(url: str, headers: dict[str, str] | None = None) -> dict[str, dict]:
    """{metric name: {frozenset of label items: value}} from one scrape of /metrics."""
    request = urllib.request.Request(url + "/metrics", headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = response.read().decode()
    out: dict[str, dict] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
    return out


def total(samples: dict, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(value for key, value in samples.items() if wanted <= key)


def sdk(url: str, service: str, secret: str = "secret"):
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="AKIAEXAMPLE",
        aws_secret_access_key=secret,
        config=Config(retries={"total_max_attempts": 1}),
    )


def test_metrics_counters_match_the_ledger_after_a_run(start):
    server = start("--limit", "session_limit=2", "--limit", "rate_per_s=none", "--fault", GREYLIST)
    url = server.ready["api_url"]
    sent = 0
    while sent < 5:  # a reconnecting client: the cap closes each session after two messages
        with smtplib.SMTP(*server.smtp) as smtp:
            while sent < 5:
                try:
                    smtp.sendmail("app@example.com", [f"user{sent}@example.com"], message(sent))
                except smtplib.SMTPRecipientsRefused:
                    continue  # greylisted: the next try is accepted
                except smtplib.SMTPSenderRefused:
                    break  # 421 at MAIL FROM: the cap
                sent += 1
    sdk(url, "sesv2").send_email(Content={"Raw": {"Data": message(10)}})
    sdk(url, "ses").send_raw_email(RawMessage={"Data": message(11)})
    with pytest.raises(ClientError):
        sdk(url, "sesv2").get_email_template(TemplateName="none")
    server.api("GET", "/api/stats")

    metrics = scrape(url)
    _, stats = server.api("GET", "/api/stats")
    _, faults = server.api("GET", "/api/faults")
    _, sessions = server.api("GET", "/api/sessions?transcript=0")
    assert (
        total(metrics["ses_harness_sessions_total"]) == len(sessions) == stats["sessions"]["total"]
    )
    assert total(metrics["ses_harness_sessions_open"]) == stats["sessions"]["open"]
    messages = metrics["ses_harness_messages_total"]
    assert total(messages) == stats["messages"]["total"] == 7
    assert (total(messages, via="smtp"), total(messages, via="api-v2")) == (5, 1)
    assert total(messages, via="api-v1") == 1
    fired = metrics["ses_harness_faults_total"]
    assert total(fired) == len(faults) == stats["faults"]["total"]
    for name, count in stats["faults"]["by_name"].items():
        source, _, rule = name.partition(":")
        assert total(fired, source=source, name=rule) == count
    assert total(fired, source="limit", name="session_limit", stage="MAIL") == 2
    assert total(fired, source="rule", name="greylist", stage="RCPT") == 1
    api = metrics["ses_harness_ses_api_requests_total"]
    assert total(api, operation="SendEmail", status="200") == 1
    assert total(api, operation="SendRawEmail", status="200") == 1
    assert total(api, operation="GetEmailTemplate", status="404") == 1
    http = metrics["ses_harness_http_requests_total"]
    assert total(http, method="GET", route="/api/stats", status="200") == 1  # before the scrape
    assert total(metrics["ses_harness_event_streams_open"]) == 0


def test_metrics_needs_the_token_the_api_needs(start):
    server = start("--api-token", "s3cret")
    url = server.ready["api_url"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        scrape(url)
    assert refused.value.code == 401
    metrics = scrape(url, {"Authorization": "Bearer s3cret"})
    assert total(metrics["ses_harness_sessions_total"]) == 0


def test_each_server_counts_in_a_registry_of_its_own():
    """Two servers in one process (as in a test suite): each scrape shows its own counts, and
    the second app's registry does not collide with the first's."""

    async def run() -> tuple[dict, dict]:
        one, two = FakeSES(profile="plain", api=False), FakeSES(profile="plain", api=False)
        app_one, app_two = create_app(one), create_app(two)
        async with one, two, ApiServer(app_one) as api_one, ApiServer(app_two) as api_two:

            def traffic() -> tuple[dict, dict]:
                with smtplib.SMTP(one.host, one.port) as smtp:
                    for n in range(3):
                        smtp.sendmail("a@example.com", ["b@example.com"], message(n))
                return scrape(api_one.url), scrape(api_two.url)

            return await asyncio.to_thread(traffic)

    first, second = asyncio.run(run())
    assert total(first["ses_harness_messages_total"]) == 3
    assert total(second.get("ses_harness_messages_total", {})) == 0
    assert total(second["ses_harness_sessions_total"]) == 0


def test_after_a_reset_the_counters_start_again_and_count_what_comes(start):
    server = start("--profile", "plain")
    url = server.ready["api_url"]
    with smtplib.SMTP(*server.smtp) as smtp:
        for n in range(2):
            smtp.sendmail("app@example.com", ["user@example.com"], message(n))
    assert total(scrape(url)["ses_harness_messages_total"], via="smtp") == 2
    server.api("POST", "/api/reset", {})
    for n in range(3):  # more than before the reset, and by another door
        sdk(url, "sesv2").send_email(Content={"Raw": {"Data": message(10 + n)}})
    messages = scrape(url)["ses_harness_messages_total"]
    assert (total(messages, via="smtp"), total(messages, via="api-v2")) == (0, 3)
