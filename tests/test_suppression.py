"""The account-level suppression list: v2's Put/Get/List/DeleteSuppressedDestination and
PutAccountSuppressionAttributes through boto3, GetAccount's SuppressionAttributes; a send to a
listed address accepted as usual (SMTP and both API versions) and bounced as SES does
(OnAccountSuppressionList); hard bounces and complaints joining the list when SES publishes
them, as the account's reasons say; what a reset does; the list on serve's HTTP API."""

from __future__ import annotations

import datetime
import json
import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import Ledger, Rule
from harness.base.clock import VirtualClock
from harness.console.store import Store
from harness.core.suppression import SuppressionList
from harness.server.fake_ses import FakeSES

pytest.importorskip("boto3")
from botocore.exceptions import ClientError

SIM = "simulator.amazonses.com"
LISTED_TEXT = "Amazon SES did not send the message to this address because it is on the suppression"
SIMPLE = {"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}}


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def ses(clock: VirtualClock) -> Iterator[FakeSES]:
    with FakeSES(clock=clock, idle_timeout_s=None) as server:
        yield server


def _smtp(ses: FakeSES, *rcpts: str) -> str:
    with smtplib.SMTP(ses.host, ses.port) as smtp:
        smtp.ehlo()
        smtp.mail("app@example.com")
        for rcpt in rcpts:
            smtp.rcpt(rcpt)
        code, reply = smtp.data(b"Subject: t\r\nTo: x@example.com\r\n\r\nhi\r\n")
    assert code == 250
    return reply.decode().split()[-1]


def _v2(ses: FakeSES, *rcpts: str) -> str:
    client = ses.boto3_client("sesv2")
    sent = client.send_email(
        FromEmailAddress="app@example.com", Destination={"ToAddresses": list(rcpts)}, Content=SIMPLE
    )
    return sent["MessageId"]


def _v1(ses: FakeSES, *rcpts: str) -> str:
    sent = ses.boto3_client("ses").send_email(
        Source="app@example.com",
        Destination={"ToAddresses": list(rcpts)},
        Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}},
    )
    return sent["MessageId"]


SENDERS = {"smtp": _smtp, "api-v2": _v2, "api-v1": _v1}


def _events_of(ses: FakeSES, ses_id: str, *, pending: bool = False) -> list:
    return [e for e in ses.events_hub.events(pending=pending) if e.ses_id == ses_id]


def _error(call, **kwargs) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    response = raised.value.response
    status = response["ResponseMetadata"]["HTTPStatusCode"]
    return status, response["Error"]["Code"], response["Error"]["Message"]


# --- the v2 operations ----------------------------------------------------------------------


def test_put_get_list_delete_round_trip_on_the_servers_clock(ses: FakeSES, clock) -> None:
    client = ses.boto3_client("sesv2")
    client.put_suppressed_destination(EmailAddress="gone@example.com", Reason="BOUNCE")
    clock.advance(60.0)
    client.put_suppressed_destination(EmailAddress="angry@example.com", Reason="COMPLAINT")
    got = client.get_suppressed_destination(EmailAddress="gone@example.com")
    entry = got["SuppressedDestination"]
    assert (entry["EmailAddress"], entry["Reason"]) == ("gone@example.com", "BOUNCE")
    start = datetime.datetime.fromtimestamp(clock.now() - 60.0, datetime.UTC)
    assert entry["LastUpdateTime"] == start
    assert "Attributes" not in entry  # put by hand: no message put it there
    listed = client.list_suppressed_destinations()["SuppressedDestinationSummaries"]
    assert [(e["EmailAddress"], e["Reason"]) for e in listed] == [
        ("gone@example.com", "BOUNCE"),
        ("angry@example.com", "COMPLAINT"),
    ]
    client.delete_suppressed_destination(EmailAddress="gone@example.com")
    status, code, _ = _error(client.get_suppressed_destination, EmailAddress="gone@example.com")
    assert (status, code) == (404, "NotFoundException")
    status, code, _ = _error(client.delete_suppressed_destination, EmailAddress="gone@example.com")
    assert (status, code) == (404, "NotFoundException")
    assert [e.address for e in ses.suppressed] == ["angry@example.com"]


def test_list_filters_by_reason_and_dates_and_pages_with_next_token(ses: FakeSES, clock) -> None:
    client = ses.boto3_client("sesv2")
    for n in range(5):
        reason = "COMPLAINT" if n == 2 else "BOUNCE"
        client.put_suppressed_destination(EmailAddress=f"u{n}@example.com", Reason=reason)
        clock.advance(10.0)
    names = lambda answer: [e["EmailAddress"] for e in answer["SuppressedDestinationSummaries"]]  # noqa: E731
    assert names(client.list_suppressed_destinations(Reasons=["COMPLAINT"])) == ["u2@example.com"]
    third = datetime.datetime.fromtimestamp(clock.now() - 30.0, datetime.UTC)
    assert names(client.list_suppressed_destinations(StartDate=third)) == [
        "u2@example.com",
        "u3@example.com",
        "u4@example.com",
    ]
    assert names(client.list_suppressed_destinations(EndDate=third)) == [
        "u0@example.com",
        "u1@example.com",
        "u2@example.com",
    ]
    pages, token = [], {}
    while True:
        answer = client.list_suppressed_destinations(PageSize=2, **token)
        pages.append(names(answer))
        if "NextToken" not in answer:
            break
        token = {"NextToken": answer["NextToken"]}
    assert pages == [
        ["u0@example.com", "u1@example.com"],
        ["u2@example.com", "u3@example.com"],
        ["u4@example.com"],
    ]


@pytest.mark.parametrize(
    ("operation", "kwargs", "status", "code", "words"),
    [
        ("put_suppressed_destination", {"EmailAddress": "a@x.com", "Reason": "SPAM"}, 400,
         "BadRequestException", "BOUNCE or COMPLAINT"),
        ("put_suppressed_destination", {"EmailAddress": "no-at-sign", "Reason": "BOUNCE"}, 400,
         "BadRequestException", "@domain"),
        ("list_suppressed_destinations", {"NextToken": "not-a-token"}, 400,
         "InvalidNextTokenException", "NextToken"),
        ("list_suppressed_destinations", {"PageSize": 0}, 400, "BadRequestException", "PageSize"),
        ("list_suppressed_destinations", {"Reasons": ["BOUNCED"]}, 400, "BadRequestException",
         "BOUNCED"),
        ("get_suppressed_destination", {"EmailAddress": "nobody@x.com"}, 404,
         "NotFoundException", "nobody@x.com"),
        ("put_account_suppression_attributes", {"SuppressedReasons": ["OPEN"]}, 400,
         "BadRequestException", "OPEN"),
        ("put_suppressed_destination",
         {"EmailAddress": "a@x.com", "Reason": "BOUNCE", "TenantName": "t1"}, 404,
         "NotFoundException", "t1"),
    ],
)  # fmt: skip
def test_bad_input_is_answered_in_v2s_error_format(
    ses: FakeSES, operation: str, kwargs: dict, status: int, code: str, words: str
) -> None:
    client = ses.boto3_client("sesv2")
    got = _error(getattr(client, operation), **kwargs)
    assert got[:2] == (status, code)
    assert words in got[2]


@pytest.mark.parametrize("body", [b"{nope", b"[1, 2]", b'{"EmailAddress": 5, "Reason": "BOUNCE"}'])
def test_a_body_that_is_not_the_operations_json_is_a_400_not_a_500(ses: FakeSES, body) -> None:
    client = ses.boto3_client("sesv2")

    def replace_body(request, **_: object) -> None:  # signed afterwards, as sent
        request.data = body

    client.meta.events.register("before-sign.sesv2.PutSuppressedDestination", replace_body)
    status, code, message = _error(
        client.put_suppressed_destination, EmailAddress="a@x.com", Reason="BOUNCE"
    )
    assert (status, code) == (400, "BadRequestException")
    assert message and "Internal" not in message
    assert ses.suppressed == []


def test_get_account_says_both_reasons_by_default_and_put_changes_them(ses: FakeSES) -> None:
    client = ses.boto3_client("sesv2")
    assert client.get_account()["SuppressionAttributes"] == {
        "SuppressedReasons": ["BOUNCE", "COMPLAINT"]
    }
    client.put_account_suppression_attributes(SuppressedReasons=["COMPLAINT"])
    assert client.get_account()["SuppressionAttributes"]["SuppressedReasons"] == ["COMPLAINT"]
    client.put_account_suppression_attributes(SuppressedReasons=[])
    assert client.get_account()["SuppressionAttributes"]["SuppressedReasons"] == []


# --- sends to listed addresses --------------------------------------------------------------


@pytest.mark.parametrize("via", list(SENDERS))
def test_a_send_to_a_listed_address_is_accepted_then_bounces_from_the_list(
    ses: FakeSES, clock, via: str
) -> None:
    ses.boto3_client("sesv2").put_suppressed_destination(
        EmailAddress="Gone@Example.com", Reason="BOUNCE"
    )
    ses_id = SENDERS[via](ses, "gone@example.com", "fine@example.com")
    assert ses.messages[-1].ses_id == ses_id and ses.messages[-1].via == via
    events = _events_of(ses, ses_id)
    assert [e.kind for e in events] == ["Send", "Bounce"]  # at once, before any delivery
    bounce = events[1].body["bounce"]
    assert (bounce["bounceType"], bounce["bounceSubType"]) == (
        "Permanent",
        "OnAccountSuppressionList",
    )
    assert [r["emailAddress"] for r in bounce["bouncedRecipients"]] == ["gone@example.com"]
    assert bounce["bouncedRecipients"][0]["diagnosticCode"].startswith(LISTED_TEXT)
    clock.advance(2.0)
    delivery = _events_of(ses, ses_id)[-1]
    assert delivery.kind == "Delivery" and delivery.recipients == ("fine@example.com",)


def test_an_address_listed_for_a_complaint_gets_a_complaint_of_subtype_on_the_list(
    ses: FakeSES, clock
) -> None:
    ses.suppress("angry@example.com", "COMPLAINT")
    ses_id = _smtp(ses, "angry@example.com")
    clock.advance(60.0)
    events = _events_of(ses, ses_id)
    assert [e.kind for e in events] == ["Send", "Complaint"]  # never sent: no Delivery
    complaint = events[1].body["complaint"]
    assert complaint["complaintSubType"] == "OnAccountSuppressionList"
    assert "complaintFeedbackType" not in complaint  # no feedback report came
    assert events[1].at == ses.messages[0].at


# --- joining the list -----------------------------------------------------------------------


def test_a_seeded_hard_bounce_lists_the_address_when_it_is_published(clock) -> None:
    rule = Rule.from_spec("stage=EOM,recipient=bad@*,action=bounce,after_s=5")
    with FakeSES(clock=clock, faults=[rule], idle_timeout_s=None) as ses:
        first = _smtp(ses, "bad@example.com")
        clock.advance(4.0)  # the Bounce is a second away: the address is not listed yet
        assert ses.suppressed == []
        before = _v2(ses, "bad@example.com")
        clock.advance(1.0)
        [entry] = ses.suppressed
        assert (entry.address, entry.reason, entry.message_id) == (
            "bad@example.com",
            "BOUNCE",
            first,
        )
        bounce = next(e for e in _events_of(ses, first) if e.kind == "Bounce")
        assert entry.feedback_id == bounce.body["bounce"]["feedbackId"]
        assert entry.at == bounce.at
        after = _v1(ses, "bad@example.com")
        kinds = lambda ses_id: [  # noqa: E731
            (e.kind, e.body.get("bounce", {}).get("bounceSubType"))
            for e in _events_of(ses, ses_id, pending=True)
        ]
        # the send before the publication went out (the rule is SMTP's, stage EOM)
        assert kinds(before) == [("Send", None), ("Delivery", None)]
        assert kinds(after) == [("Send", None), ("Bounce", "OnAccountSuppressionList")]
        got = ses.boto3_client("sesv2").get_suppressed_destination(EmailAddress="bad@example.com")
        assert got["SuppressedDestination"]["Attributes"]["MessageId"] == first


def test_the_accounts_reasons_decide_what_joins(clock) -> None:
    rules = [
        Rule.from_spec("stage=EOM,recipient=b*,action=bounce"),
        Rule.from_spec("stage=EOM,recipient=c*,action=complain"),
        Rule.from_spec("stage=EOM,recipient=t*,action=bounce,bounce_type=Transient,bounce_subtype=MailboxFull"),
    ]  # fmt: skip
    with FakeSES(clock=clock, faults=rules, idle_timeout_s=None) as ses:
        ses.boto3_client("sesv2").put_account_suppression_attributes(
            SuppressedReasons=["COMPLAINT"]
        )
        _smtp(ses, "b@example.com", "c@example.com", "t@example.com")
        clock.advance(60.0)
        # a complaint joins; a hard bounce does not, the account leaving BOUNCE out; a soft
        # bounce never does
        assert [(e.address, e.reason) for e in ses.suppressed] == [("c@example.com", "COMPLAINT")]


def test_the_simulators_addresses_never_join(ses: FakeSES, clock) -> None:
    _smtp(ses, f"bounce@{SIM}", f"complaint@{SIM}", f"suppressionlist@{SIM}")
    clock.advance(60.0)
    assert ses.suppressed == []


def test_after_a_delete_mail_goes_through_until_the_next_hard_bounce(clock) -> None:
    rule = Rule.from_spec("stage=EOM,recipient=bad@*,nth=1,action=bounce")
    with FakeSES(clock=clock, faults=[rule], idle_timeout_s=None) as ses:
        _smtp(ses, "bad@example.com")
        clock.advance(3.0)
        ses.boto3_client("sesv2").delete_suppressed_destination(EmailAddress="bad@example.com")
        again = _smtp(ses, "bad@example.com")
        clock.advance(3.0)
        assert [e.kind for e in _events_of(ses, again)] == ["Send", "Delivery"]
        assert ses.suppressed == []


def test_a_reset_empties_the_list_and_keeps_the_accounts_reasons(ses: FakeSES) -> None:
    client = ses.boto3_client("sesv2")
    client.put_suppressed_destination(EmailAddress="gone@example.com", Reason="BOUNCE")
    client.put_account_suppression_attributes(SuppressedReasons=["BOUNCE"])
    ses.reset()
    assert client.list_suppressed_destinations()["SuppressedDestinationSummaries"] == []
    assert client.get_account()["SuppressionAttributes"]["SuppressedReasons"] == ["BOUNCE"]


def test_the_list_follows_from_a_stores_messages_after_a_restart(tmp_path: Path) -> None:
    rule = Rule.from_spec("stage=EOM,recipient=bad@*,action=bounce")
    clock = VirtualClock()
    store = Store(tmp_path)
    with FakeSES(clock=clock, faults=[rule], ledger=Ledger(sink=store), idle_timeout_s=None) as ses:
        first = _smtp(ses, "bad@example.com")
    store.close()
    store = Store(tmp_path)  # as a restarted `serve --store` does
    restored = store.load_messages()
    assert restored[0].fates == ses.messages[0].fates and restored[0].fates
    ledger = Ledger(sink=store)
    ledger.restore(restored)
    clock = VirtualClock()
    with FakeSES(clock=clock, ledger=ledger, idle_timeout_s=None) as again:
        clock.advance(3.0)
        assert [(e.address, e.message_id) for e in again.suppressed] == [("bad@example.com", first)]
    store.close()


def test_the_list_itself_is_a_pure_function_of_what_it_was_told() -> None:
    book = SuppressionList()
    book.join("a@x.com", "BOUNCE", at=10.0, message_id="m1")
    book.set_reasons(("COMPLAINT",), now=5.0)  # told later, in force before the bounce
    assert book.get("a@x.com", now=20.0) is None
    book.join("a@x.com", "COMPLAINT", at=30.0, message_id="m2")
    assert book.get("a@x.com", now=30.0).message_id == "m2"
    assert book.delete("a@x.com", now=31.0) and book.get("a@x.com", now=40.0) is None
    assert not book.delete("a@x.com", now=41.0)


# --- serve's HTTP API -----------------------------------------------------------------------


def test_the_http_api_lists_the_suppression_list() -> None:
    from tests.http_app import get, mail, run, send

    clock = VirtualClock()

    async def scenario(server: FakeSES, client) -> None:  # type: ignore[no-untyped-def]
        server.suppress("gone@example.com")
        await send(server, mail(1), to="gone@example.com")
        listed = await get(client, "/api/suppression")
        assert listed["count"] == 1 and listed["suppressed_reasons"] == ["BOUNCE", "COMPLAINT"]
        assert listed["suppressed"][0]["address"] == "gone@example.com"
        assert listed["suppressed"][0]["reason"] == "BOUNCE"
        bounces = await get(client, "/api/ses-events?kind=Bounce")
        assert bounces["events"][0]["event"]["bounce"]["bounceSubType"] == (
            "OnAccountSuppressionList"
        )
        json.dumps(listed)

    run(scenario, clock=clock)
