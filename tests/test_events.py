"""SES's events: the mailbox simulator over SMTP and both API versions, the events' shapes and
times on the server's clock, SNS's HTTP delivery (confirmation, signatures v1 and v2, unsigned,
retries), and configuration sets with their SNS destinations through boto3."""

from __future__ import annotations

import itertools
import json
import smtplib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness.base.clock import ScaledClock, VirtualClock
from harness.core.simulator import Scenario, scenario
from harness.server.events import DeliveryPolicy, verify
from harness.server.fake_ses import FakeSES

SIM = "simulator.amazonses.com"


class Receiver:
    """An application's webhook: records each POST, answers the scripted statuses, then 200."""

    def __init__(self, statuses: list[int] | None = None, fail_kind: str = "") -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.statuses = list(statuses or [])  # for `fail_kind`'s posts, or else every post
        self.fail_kind = fail_kind
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts.append((dict(self.headers), body))
                status = 200
                if receiver.statuses and receiver.fail_kind in body.decode():
                    status = receiver.statuses.pop(0)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sns"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self) -> list[dict]:
        return [json.loads(body) for _, body in self.posts]

    def notifications(self) -> list[dict]:
        return [b for b in self.bodies() if b["Type"] == "Notification"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def _smtp_send(ses: FakeSES, rcpt: str, extra: bytes = b"") -> str:
    """Send one message; return the id the 250 named."""
    with smtplib.SMTP(ses.host, ses.port) as smtp:
        smtp.ehlo()
        smtp.mail("app@example.com")
        smtp.rcpt(rcpt)
        code, text = smtp.data(extra + b"Subject: t\r\nTo: " + rcpt.encode() + b"\r\n\r\nhi\r\n")
    assert code == 250
    return text.decode().split()[-1]


def test_simulator_addresses_and_labels() -> None:
    assert scenario(f"bounce+order-9@{SIM}") is Scenario.BOUNCE
    assert scenario(f"OOTO@{SIM.upper()}") is Scenario.OOTO
    assert scenario(f"suppressionlist@{SIM}") is Scenario.SUPPRESSIONLIST
    assert scenario("bounce@example.com") is None
    assert scenario(f"nobody@{SIM}") is None


@pytest.mark.parametrize("version", ["1", "2"])
def test_smtp_to_the_simulator_posts_signed_events_naming_the_250s_id(receiver, version) -> None:
    with FakeSES(
        events_url=receiver.url,
        events_signature=version,
        clock=ScaledClock(100),
        idle_timeout_s=None,
    ) as ses:
        ids = {
            local: _smtp_send(ses, f"{local}@{SIM}") for local in ("bounce", "success", "complaint")
        }
        # confirmation + 3 Send + Bounce + 2 Delivery + Complaint
        ses.wait_for_deliveries(8)
        cert = ses.signing_certificate_pem
    bodies = receiver.bodies()
    assert bodies[0]["Type"] == "SubscriptionConfirmation"
    assert all(verify(b, cert) and b["SignatureVersion"] == version for b in bodies)
    events = [json.loads(b["Message"]) for b in receiver.notifications()]
    seen = {(e["eventType"], e["mail"]["messageId"]) for e in events}
    assert {
        ("Bounce", ids["bounce"]),
        ("Delivery", ids["success"]),
        ("Delivery", ids["complaint"]),
        ("Complaint", ids["complaint"]),
    } <= seen
    bounce = next(e["bounce"] for e in events if e["eventType"] == "Bounce")
    assert (bounce["bounceType"], bounce["bounceSubType"]) == ("Permanent", "General")
    assert bounce["bouncedRecipients"][0]["status"] == "5.1.1"
    complaint = next(e["complaint"] for e in events if e["eventType"] == "Complaint")
    assert complaint["complainedRecipients"] == [{"emailAddress": f"complaint@{SIM}"}]


def test_a_tampered_message_fails_verification(receiver) -> None:
    with FakeSES(events_url=receiver.url, clock=ScaledClock(100), idle_timeout_s=None) as ses:
        _smtp_send(ses, f"success@{SIM}")
        ses.wait_for_deliveries(3)
        cert = ses.signing_certificate_pem
    body = receiver.notifications()[-1]
    assert verify(body, cert)
    body["Message"] = body["Message"].replace("success", "bounce")
    assert not verify(body, cert)


def test_unsigned_when_asked_and_sns_headers(receiver) -> None:
    with FakeSES(
        events_url=receiver.url, events_signature=None, clock=ScaledClock(100), idle_timeout_s=None
    ) as ses:
        ses_id = _smtp_send(ses, f"success@{SIM}")
        ses.wait_for_deliveries(3)
    headers, raw = receiver.posts[-1]
    body = json.loads(raw)
    assert "Signature" not in body and "SigningCertURL" not in body
    assert headers["x-amz-sns-message-type"] == "Notification"
    assert headers["x-amz-sns-message-id"] == body["MessageId"]
    assert headers["x-amz-sns-topic-arn"] == body["TopicArn"]
    assert headers["Content-Type"].startswith("text/plain")
    assert json.loads(body["Message"])["mail"]["messageId"] == ses_id


def test_events_are_timed_on_the_servers_clock() -> None:
    clock = VirtualClock()
    with FakeSES(clock=clock) as ses:
        ses_id = _smtp_send(ses, f"complaint+a@{SIM}")
        accepted = ses.messages[0].at
        assert [e.kind for e in ses.events] == ["Send"]
        clock.advance(2.0)
        assert [e.kind for e in ses.events] == ["Send", "Delivery"]
        clock.advance(5.0)
        events = ses.events
    assert [e.kind for e in events] == ["Send", "Delivery", "Complaint"]
    assert {e.ses_id for e in events} == {ses_id}
    assert [e.at - accepted for e in events] == [0.0, 2.0, 7.0]
    assert events[1].body["delivery"]["timestamp"] == "2026-01-01T00:00:02.000Z"
    assert events[1].notification()["notificationType"] == "Delivery"
    assert events[0].notification() is None  # Send is published, never notified


def test_suppressionlist_bounces_as_suppressed_and_ooto_is_delivered() -> None:
    with FakeSES(clock=VirtualClock()) as ses:
        _smtp_send(ses, f"suppressionlist@{SIM}")
        _smtp_send(ses, f"ooto@{SIM}")
        ses.clock.advance(10.0)
        events = ses.events
    kinds = [(e.kind, e.recipients[0].split("@")[0]) for e in events]
    assert ("Bounce", "suppressionlist") in kinds and ("Delivery", "ooto") in kinds
    bounce = next(e.body["bounce"] for e in events if e.kind == "Bounce")
    assert bounce["bounceSubType"] == "Suppressed"


def test_a_failing_webhook_is_retried_as_sns_default_policy_says() -> None:
    receiver = Receiver(statuses=[500, 503], fail_kind='\\"eventType\\":\\"Send\\"')
    try:
        with FakeSES(events_url=receiver.url, clock=ScaledClock(400), idle_timeout_s=None) as ses:
            _smtp_send(ses, f"bounce@{SIM}")
            ses.wait_for_deliveries(3, timeout_s=30)  # confirmation, Send (3rd try), Bounce
            attempts = ses.event_deliveries
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
    send = [a for a in attempts if a.kind == "Send"]
    assert [(a.attempt, a.status) for a in send] == [(1, 500), (2, 503), (3, 200)]
    assert len({a.sns_message_id for a in send}) == 1  # a retry is the same SNS message
    assert all(b.at - a.at >= 20.0 for a, b in itertools.pairwise(send))
    bounce = next(a for a in attempts if a.kind == "Bounce")
    assert bounce.at < send[-1].at  # the retried Send arrives after the later Bounce


def test_retries_stop_after_the_policys_last() -> None:
    receiver = Receiver(statuses=[500] * 10)
    policy = DeliveryPolicy(retries=2, retry_delay_s=1.0)
    try:
        with FakeSES(
            events_url=receiver.url,
            events_policy=policy,
            clock=ScaledClock(100),
            idle_timeout_s=None,
        ) as ses:
            ses.events_hub.wait_for_attempts(lambda a: len(a) >= 3, 30)
            ses.events_hub.wait_for_attempts(lambda a: ses.events_hub.pending() == 0, 30)
            attempts = ses.event_deliveries
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
    assert [(a.type, a.attempt) for a in attempts] == [
        ("SubscriptionConfirmation", n) for n in (1, 2, 3)
    ]


def test_the_api_v2_and_v1_name_their_message_ids(receiver) -> None:
    pytest.importorskip("boto3")
    with FakeSES(events_url=receiver.url, clock=ScaledClock(100), idle_timeout_s=None) as ses:
        v2 = ses.boto3_client("sesv2").send_email(
            FromEmailAddress="app@example.com",
            Destination={"ToAddresses": [f"bounce+v2@{SIM}"]},
            Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}},
        )["MessageId"]
        v1 = ses.boto3_client("ses").send_email(
            Source="app@example.com",
            Destination={"ToAddresses": [f"success+v1@{SIM}"]},
            Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}},
        )["MessageId"]
        ses.wait_for_deliveries(5)
    events = [json.loads(b["Message"]) for b in receiver.notifications()]
    seen = {(e["eventType"], e["mail"]["messageId"]) for e in events}
    assert {("Bounce", v2), ("Delivery", v1)} <= seen


def test_configuration_set_destinations_route_matching_events_to_their_topic(receiver) -> None:
    pytest.importorskip("boto3")
    from botocore.exceptions import ClientError

    with FakeSES(clock=ScaledClock(100), idle_timeout_s=None) as ses:
        client = ses.boto3_client("sesv2")
        client.create_configuration_set(ConfigurationSetName="app")
        topic = "arn:aws:sns:us-east-1:123456789012:bounces"
        client.create_configuration_set_event_destination(
            ConfigurationSetName="app",
            EventDestinationName="to-sns",
            EventDestination={
                "Enabled": True,
                "MatchingEventTypes": ["BOUNCE"],
                "SnsDestination": {"TopicArn": topic},
            },
        )
        ses.subscribe(receiver.url, topic)
        with pytest.raises(ClientError) as exists:
            client.create_configuration_set(ConfigurationSetName="app")
        assert exists.value.response["Error"]["Code"] == "AlreadyExistsException"
        with pytest.raises(ClientError) as missing:
            client.get_configuration_set(ConfigurationSetName="nope")
        assert missing.value.response["Error"]["Code"] == "NotFoundException"
        listed = client.get_configuration_set_event_destinations(ConfigurationSetName="app")
        assert listed["EventDestinations"][0]["SnsDestination"]["TopicArn"] == topic
        assert client.list_configuration_sets()["ConfigurationSets"] == ["app"]

        api_id = client.send_email(
            FromEmailAddress="app@example.com",
            Destination={"ToAddresses": [f"bounce@{SIM}"]},
            Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}},
            ConfigurationSetName="app",
        )["MessageId"]
        smtp_id = _smtp_send(ses, f"bounce+smtp@{SIM}", b"X-SES-CONFIGURATION-SET: app\r\n")
        _smtp_send(ses, f"bounce+none@{SIM}")  # no configuration set: not on this topic
        ses.wait_for_deliveries(3)  # the confirmation and two Bounces
        client.update_configuration_set_event_destination(
            ConfigurationSetName="app",
            EventDestinationName="to-sns",
            EventDestination={"Enabled": False},
        )
        _smtp_send(ses, f"bounce+off@{SIM}", b"X-SES-CONFIGURATION-SET: app\r\n")
        ses.clock.sleep(5.0)
        client.delete_configuration_set_event_destination(
            ConfigurationSetName="app", EventDestinationName="to-sns"
        )
        client.delete_configuration_set(ConfigurationSetName="app")
        assert client.list_configuration_sets()["ConfigurationSets"] == []
    events = [json.loads(b["Message"]) for b in receiver.notifications()]
    assert sorted((e["eventType"], e["mail"]["messageId"]) for e in events) == sorted(
        [("Bounce", api_id), ("Bounce", smtp_id)]
    )
    assert all(e["mail"]["tags"]["ses:configuration-set"] == ["app"] for e in events)


def test_the_http_api_lists_events_and_deliveries() -> None:
    from harness.base.clock import VirtualClock as Virtual
    from tests.http_app import get, mail, run, send

    clock = Virtual()

    async def scenario(ses: FakeSES, client) -> None:  # type: ignore[no-untyped-def]
        await send(ses, mail(1), to=f"bounce@{SIM}")
        await send(ses, mail(2), to=f"success@{SIM}")
        listed = await get(client, "/api/ses-events")
        assert [e["kind"] for e in listed["events"]] == ["Send", "Send"]
        clock.advance(2.0)
        bounces = await get(client, "/api/ses-events?kind=Bounce")
        assert [e["message_id"] for e in bounces["events"]] == [ses.messages[0].ses_id]
        assert bounces["events"][0]["event"]["bounce"]["bounceType"] == "Permanent"
        one = await get(client, f"/api/ses-events?message_id={ses.messages[1].ses_id}")
        assert [e["kind"] for e in one["events"]] == ["Send", "Delivery"]
        assert (await get(client, "/api/ses-events?since=3"))["count"] == 1
        assert (await get(client, "/api/ses-events?kind=Nope", status=400))["status"] == 400
        deliveries = await get(client, "/api/ses-events/deliveries")
        assert deliveries == {"subscriptions": [], "deliveries": []}

    run(scenario, clock=clock)


def test_serve_refuses_an_events_url_that_is_not_http() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "harness", "serve", "--events-url", "ftp://x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--events-url: an http:// or https:// URL, got 'ftp://x'" in done.stderr


def test_the_events_feed_is_late_and_repeats_as_asked() -> None:
    import urllib.request

    from harness.base.sesevents import FeedFaults

    clock = VirtualClock()
    faults = FeedFaults(delay_s=60.0, duplicates=1.0)
    with FakeSES(clock=clock, events_feed=faults) as ses:
        _smtp_send(ses, f"success@{SIM}")
        assert ses.endpoint.events_url == ses.events_feed_url

        def feed() -> list[str]:
            with urllib.request.urlopen(ses.events_feed_url) as response:
                return [e["kind"] for e in json.load(response)["events"]]

        clock.advance(59.0)
        assert feed() == []  # published, not yet delivered
        clock.advance(3.0)
        assert feed() == ["Send", "Send", "Delivery", "Delivery"]
    with FakeSES(clock=clock) as ses:
        assert ses.endpoint.events_url is None  # no feed unless asked
