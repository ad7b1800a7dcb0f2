"""Faults on SES's asynchronous side, on the way to the application's webhook: the plan's NOTIFY
rules (late, dropped and retried, twice, per event kind) on SNS's posts and on the events feed,
and what SNS does when the webhook itself answers 500, refuses connections or is slower than
SNS's timeout (docs/events.md, "Faults on the way to your webhook")."""

from __future__ import annotations

import itertools
import json
import smtplib
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.base.clock import ScaledClock, VirtualClock
from harness.core.errors import PlanError
from harness.core.notify import NotifyBook, Post, arrival
from harness.core.plan import Plan, Rule
from harness.core.snspolicy import DeliveryPolicy, delivered
from harness.server.fake_ses import FakeSES

SIM = "simulator.amazonses.com"

#: An answer to one post: (status, or None to hang up without one; wall seconds to wait first).
Answer = tuple[int | None, float]


class Webhook:
    """An application's webhook on 127.0.0.1: `answer(body, n)` decides each post's reply (n:
    how many posts came before it); every post is kept, in order of arrival."""

    def __init__(self, answer: Callable[[dict, int], Answer] | None = None, *, up: bool = True):
        self.posts: list[dict] = []
        self.lock = threading.Lock()
        self.answer = answer or (lambda body, n: (200, 0.0))
        self.released = threading.Event()  # set: a held post goes on at once
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with hook.lock:
                    n = len(hook.posts)
                    hook.posts.append(body)
                status, hold_s = hook.answer(body, n)
                if hold_s:
                    hook.released.wait(hold_s)
                if status is None:
                    self.close_connection = True
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        # Bound at once (its port is ours), listening only once `up`: until then a connection
        # is refused, as a webhook that is down.
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self.server.daemon_threads = True
        self.server.server_bind()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sns"
        self._thread: threading.Thread | None = None
        if up:
            self.come_up()

    def come_up(self) -> None:
        self.server.server_activate()
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.released.set()
        if self._thread is not None:
            self.server.shutdown()
        self.server.server_close()

    def notifications(self) -> list[tuple[str, str]]:
        """(SNS MessageId, the SES event's kind) of each Notification, in order of arrival."""
        with self.lock:
            posts = list(self.posts)
        return [
            (p["MessageId"], json.loads(p["Message"])["eventType"])
            for p in posts
            if p["Type"] == "Notification"
        ]


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


def _send(ses: FakeSES, rcpt: str) -> str:
    with smtplib.SMTP(ses.host, ses.port) as smtp:
        refused = smtp.sendmail("app@example.com", [rcpt], f"To: {rcpt}\r\n\r\nhi\r\n")
    assert refused == {}
    return ses.messages[-1].ses_id


def _server(url: str, *faults: str, **options) -> FakeSES:  # type: ignore[no-untyped-def]
    rules = [Rule.from_spec(spec) for spec in faults]
    options.setdefault("clock", ScaledClock(200))
    return FakeSES(events_url=url, faults=rules, idle_timeout_s=None, **options)


def _of(attempts, kind):  # type: ignore[no-untyped-def]
    return [a for a in attempts if a.kind == kind]


def _settled(ses: FakeSES, timeout_s: float = 60.0):  # type: ignore[no-untyped-def]
    """Every attempt, once nothing is left to post (first tries, retries, delayed ones)."""
    hub = ses.events_hub
    return hub.wait_for_attempts(lambda a: a and hub.pending() == 0, timeout_s)


# --- the rules: checked like every other rule, and pure -----------------------------------


def _scalar(text: str) -> object:
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text


BAD_RULES = [
    ("stage=NOTIFY,action=reply,code=500", "action", "allowed: delay, drop, duplicate"),
    ("stage=NOTIFY,action=drop_after_accept", "action", "allowed: delay, drop, duplicate"),
    ("stage=EOM,action=duplicate", "action", "allowed: stage = NOTIFY"),
    ("stage=RCPT,kind=Send,action=drop", "kind", "allowed: stage = NOTIFY"),
    ("stage=NOTIFY,kind=Open,action=drop", "kind", "allowed: Send, Reject, Delivery"),
    ("stage=NOTIFY,session=2,action=drop", "session", "allowed: kind, sender"),
    ("stage=NOTIFY,tenant=t,action=drop", "tenant", "allowed: stage = EOM or API"),
    ("stage=NOTIFY,action=delay,delay_s=-1", "delay_s", "allowed: >= 0"),
    ("stage=NOTIFY,action=duplicate,probability=2", "probability", "0.0-1.0"),
]


@pytest.mark.parametrize(("spec", "key", "allowed"), BAD_RULES)
def test_a_notify_rule_is_checked_with_the_key_and_what_is_allowed(spec, key, allowed) -> None:
    with pytest.raises(PlanError) as raised:
        Rule.from_spec(spec)
    assert raised.value.key == key and allowed in str(raised.value)
    table = {k: _scalar(v) for k, v in (pair.split("=", 1) for pair in spec.split(","))}
    with pytest.raises(PlanError) as raised:
        Plan.from_dict(
            {"faults": [Rule.from_spec("stage=EOM,action=drop").to_dict(), table]}, "p.toml"
        )
    message = str(raised.value)
    assert message.startswith(f"p.toml: key 'faults[1].{key}'") and "\n" not in message


def test_a_bad_notify_rule_on_the_command_line_is_one_line_and_exit_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness", "serve", "--fault", "stage=NOTIFY,action=reply,code=500"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "key 'action': 'reply' does not apply to an SNS post" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_scenario_file_says_its_notify_rules(tmp_path) -> None:
    from harness.runner.scenario import builtin_scenario, load_scenario

    scenario = load_scenario(builtin_scenario("webhook-down"))
    notify = [r.to_dict() for r in scenario.plan.faults if r.match.stage.value == "NOTIFY"]
    assert notify == [
        {"name": "webhook-down", "stage": "NOTIFY", "action": "delay", "delay_s": 300.0},
        {"name": "at-least-once", "stage": "NOTIFY", "probability": 0.3, "action": "duplicate"},
    ]
    path = tmp_path / "bad.toml"
    path.write_text(
        builtin_scenario("webhook-down").read_text().replace("delay_s = 300.0", "delay_s = -3")
    )
    with pytest.raises(PlanError, match=r"bad.toml: key 'plan.faults\[2\].delay_s'"):
        load_scenario(path)


RULES = st.lists(
    st.fixed_dictionaries(
        {"stage": st.just("NOTIFY"), "action": st.sampled_from(["delay", "drop", "duplicate"])},
        optional={
            "every": st.integers(1, 4),
            "after": st.integers(0, 3),
            "attempts": st.integers(1, 3),
            "probability": st.floats(0.0, 1.0),
            "kind": st.sampled_from(["Send", "Delivery", "Bounce"]),
        },
    ).map(lambda d: {**d, "delay_s": 7.0} if d["action"] == "delay" else d),
    max_size=4,
)
POSTS = st.lists(
    st.tuples(
        st.sampled_from(["Send", "Delivery", "Bounce"]), st.integers(0, 5), st.integers(1, 4)
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(rules=RULES, posts=POSTS, seed=st.integers(0, 2**32))
def test_same_seed_same_faults(rules, posts, seed) -> None:
    plan = Plan.from_dict({"seed": seed, "faults": rules})

    def run() -> list:
        book = NotifyBook(plan.faults, plan.seed)
        asked = [book.decide(Post(kind, f"m{n}", attempt)) for kind, n, attempt in posts]
        book = NotifyBook(plan.faults, plan.seed)
        ways = [arrival(book, (20.0, 20.0, 20.0), 1.0, Post(kind, f"m{n}")) for kind, n, _ in posts]
        return asked + ways

    assert run() == run()


@settings(max_examples=100, deadline=None)
@given(probability=st.floats(0.0, 1.0), ids=st.lists(st.integers(0, 50), unique=True, max_size=20))
def test_chance_depends_on_the_post_not_on_the_order_asked(probability, ids) -> None:
    plan = Plan.from_dict(
        {"seed": 9, "faults": [{"stage": "NOTIFY", "action": "drop", "probability": probability}]}
    )

    def drops(order: list[int]) -> dict[int, bool]:
        book = NotifyBook(plan.faults, plan.seed)
        return {n: book.decide(Post("Send", f"m{n}")).drop for n in order}

    assert drops(ids) == drops(list(reversed(ids)))


def test_a_dropped_attempt_is_retried_per_the_policy_and_given_up_after_its_last() -> None:
    drop_two = NotifyBook([Rule.from_spec("stage=NOTIFY,attempts=2,action=drop")], 0)
    way = arrival(drop_two, DeliveryPolicy().delays_s(), 100.0, Post("Send", "m"))
    assert (way.at, way.attempts, way.fired) == (140.0, 3, ("NOTIFY:drop", "NOTIFY:drop"))
    always = NotifyBook([Rule.from_spec("stage=NOTIFY,action=drop,name=down")], 0)
    way = arrival(always, DeliveryPolicy().delays_s(), 100.0, Post("Send", "m"))
    assert (way.at, way.copies, way.attempts) == (None, 0, 4)


def test_a_time_window_and_the_envelope_match_posts_too() -> None:
    # dropped while the event is younger than 30 s: tries at 0 and 20 s fail, the one at 40 s not
    window = NotifyBook([Rule.from_spec("stage=NOTIFY,greylist_s=30,action=drop")], 0)
    assert arrival(window, (20.0, 20.0, 20.0), 0.0, Post("Send", "m")).at == 40.0
    held = NotifyBook(
        [Rule.from_spec("stage=NOTIFY,recipient=*@b.example,action=delay,delay_s=9")], 0
    )
    assert held.decide(Post("Send", "m", recipients=("x@b.example",))).delay_s == 9.0
    assert held.decide(Post("Send", "n", recipients=("x@a.example",))).delay_s == 0.0


def test_a_rule_without_a_kind_leaves_the_subscription_confirmation_alone() -> None:
    book = NotifyBook([Rule.from_spec("stage=NOTIFY,action=drop")], 0)
    assert not book.decide(Post("SubscriptionConfirmation", "c")).drop
    assert book.decide(Post("Delivery", "d")).drop
    only = NotifyBook([Rule.from_spec("stage=NOTIFY,kind=SubscriptionConfirmation,action=drop")], 0)
    assert only.decide(Post("SubscriptionConfirmation", "c")).drop
    assert not only.decide(Post("Delivery", "d")).drop


# --- SNS's delivery policy ----------------------------------------------------------------


def test_the_policy_has_sns_phases_and_limits() -> None:
    assert DeliveryPolicy().delays_s() == (20.0, 20.0, 20.0)  # documented default
    policy = DeliveryPolicy.from_sns(
        {
            "healthyRetryPolicy": {
                "numRetries": 7,
                "numNoDelayRetries": 1,
                "numMinDelayRetries": 2,
                "numMaxDelayRetries": 1,
                "minDelayTarget": 2,
                "maxDelayTarget": 16,
                "backoffFunction": "LINEAR",
            }
        }
    )
    assert policy.delays_s() == (0.0, 2.0, 2.0, 2.0, 9.0, 16.0, 16.0)
    with pytest.raises(PlanError, match="3600"):
        DeliveryPolicy(retries=100, retry_delay_s=40.0)  # SNS's hard limit: 3,600 s of retries
    with pytest.raises(PlanError, match="numRetries >= "):
        DeliveryPolicy(retries=1, no_delay_retries=2)
    with pytest.raises(PlanError, match="numTries"):
        DeliveryPolicy.from_sns({"numTries": 3})
    # 200-4xx is delivered as SNS counts it; 5xx and no answer are not (documented)
    assert [delivered(s) for s in (200, 302, 404, 499, 500, 503, None)] == [
        True,
        True,
        True,
        True,
        False,
        False,
        False,
    ]


def test_serve_takes_snss_own_policy_json_and_refuses_a_bad_one_in_one_line() -> None:
    import argparse

    from harness.cli.events_args import add_events_arguments, events_options

    parser = argparse.ArgumentParser()
    add_events_arguments(parser)
    policy = '{"healthyRetryPolicy": {"numRetries": 5, "minDelayTarget": 1, "maxDelayTarget": 16,'
    policy += ' "backoffFunction": "geometric"}}'
    options = events_options(parser.parse_args(["--events-policy", policy]))
    assert options["events_policy"].delays_s() == (1.0, 2.0, 4.0, 8.0, 16.0)
    done = subprocess.run(
        [sys.executable, "-m", "harness", "serve", "--events-policy", '{"numRetries": 101}'],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        "ses-harness serve: error: argument --events-policy: key 'numRetries': 101 is out of "
        "range (allowed: 0..100)"
    )


# --- NOTIFY rules on the posts to a real webhook -------------------------------------------


def test_dropped_attempts_are_retried_with_the_same_message_id_and_name_their_rule(webhook) -> None:
    # ScaledClock(20): the 38 SES seconds between the two posts are 1.9 s of the wall
    rule = "name=down,stage=NOTIFY,kind=Send,attempts=2,action=drop"
    with _server(webhook.url, rule, clock=ScaledClock(20)) as ses:
        _send(ses, f"success@{SIM}")
        attempts = _settled(ses)
    send = _of(attempts, "Send")
    assert [(a.attempt, a.status, a.fault) for a in send] == [
        (1, None, "down"),
        (2, None, "down"),
        (3, 200, None),
    ]
    assert "dropped by rule down" in send[0].error
    assert len({a.sns_message_id for a in send}) == 1
    assert all(b.at - a.at >= 20.0 for a, b in itertools.pairwise(send))  # SNS's 20 s
    # the application got it once, after the Delivery that came later
    assert [kind for _, kind in webhook.notifications()] == ["Delivery", "Send"]


def test_a_duplicate_posts_the_same_notification_twice(webhook) -> None:
    with _server(webhook.url, "name=twice,stage=NOTIFY,kind=Delivery,action=duplicate") as ses:
        _send(ses, f"success@{SIM}")
        attempts = _settled(ses)
    delivery = _of(attempts, "Delivery")
    assert [(a.attempt, a.copy, a.fault, a.status) for a in delivery] == [
        (1, 1, "twice", 200),
        (1, 2, "twice", 200),
    ]
    got = [mid for mid, kind in webhook.notifications() if kind == "Delivery"]
    assert len(got) == 2 and got[0] == got[1] == delivery[0].sns_message_id


def test_a_late_send_event_arrives_after_the_delivery_it_comes_before(webhook) -> None:
    rule = "stage=NOTIFY,kind=Send,action=delay,delay_s=60"
    with _server(webhook.url, rule, clock=ScaledClock(20)) as ses:
        _send(ses, f"success@{SIM}")
        attempts = _settled(ses)
    assert [kind for _, kind in webhook.notifications()] == ["Delivery", "Send"]
    send, delivery = _of(attempts, "Send")[0], _of(attempts, "Delivery")[0]
    assert send.at - delivery.at >= 55.0  # published 2 s apart, the Send held 60 s
    # SES's own timestamps still say which came first
    bodies = {
        json.loads(p["Message"])["eventType"]: json.loads(p["Message"]) for p in webhook.posts[1:]
    }
    assert bodies["Send"]["mail"]["timestamp"] <= bodies["Delivery"]["delivery"]["timestamp"]


def test_sns_gives_up_after_the_policys_last_retry_and_says_so(webhook) -> None:
    with _server(webhook.url, "name=down,stage=NOTIFY,kind=Delivery,action=drop") as ses:
        _send(ses, f"success@{SIM}")
        attempts = _settled(ses)
    delivery = _of(attempts, "Delivery")
    assert [(a.attempt, a.gave_up) for a in delivery] == [
        (1, False),
        (2, False),
        (3, False),
        (4, True),
    ]
    assert [kind for _, kind in webhook.notifications()] == ["Send"]  # the Delivery is lost


def test_the_http_api_shows_which_rule_fired_on_a_post(webhook) -> None:
    import asyncio

    from tests.http_app import get, mail, run, send

    async def scenario(ses: FakeSES, client) -> None:  # type: ignore[no-untyped-def]
        await send(ses, mail(1), to=f"success@{SIM}")
        for _ in range(2000):  # the posts run on this loop: let them, for up to 20 s
            if ses.events_hub.pending() == 0 and len(ses.event_deliveries) >= 4:
                break
            await asyncio.sleep(0.01)
        listed = (await get(client, "/api/ses-events/deliveries"))["deliveries"]
        sends = [(d["attempt"], d["fault"], d["status"]) for d in listed if d["kind"] == "Send"]
        assert sends == [(1, "lost-post", None), (2, None, 200)]

    run(
        scenario,
        clock=ScaledClock(200),
        events_url=webhook.url,
        faults=[Rule.from_spec("name=lost-post,stage=NOTIFY,kind=Send,attempts=1,action=drop")],
    )


def test_a_test_arranges_notify_faults_and_reads_their_firings(webhook) -> None:
    with FakeSES(clock=ScaledClock(200), idle_timeout_s=None) as ses:
        view = ses.view()
        twice = view.on("NOTIFY", kind="Delivery").duplicate()
        never = view.on("NOTIFY", kind="Bounce").delay(5.0)
        ses.subscribe(webhook.url)
        _send(ses, f"success@{SIM}")
        _settled(ses)
    assert twice.call_count == 1
    assert (twice.calls[0].stage, twice.calls[0].recipient) == ("NOTIFY", f"success@{SIM}")
    assert never.call_count == 0  # strictness reports it, as any rule that never fired
    assert [kind for _, kind in webhook.notifications()].count("Delivery") == 2


# --- what SNS does when the webhook itself fails --------------------------------------------


def test_a_webhook_answering_500_for_a_while_gets_every_event_in_the_end() -> None:
    failed = itertools.count()

    def answer(body: dict, n: int) -> Answer:  # the first four Notifications get a 500
        notification = body["Type"] == "Notification"
        return (500 if notification and next(failed) < 4 else 200), 0.0

    hook = Webhook(answer)
    try:
        with _server(hook.url) as ses:
            ids = [_send(ses, f"success+{n}@{SIM}") for n in range(2)]
            attempts = _settled(ses)
    finally:
        hook.close()
    for message in {a.sns_message_id for a in attempts}:
        tries = [a for a in attempts if a.sns_message_id == message]
        assert tries[-1].delivered and not any(a.gave_up for a in tries)
        assert all(a.status == 500 for a in tries[:-1])
        assert [a.attempt for a in tries] == list(range(1, len(tries) + 1))
    assert sum(a.status == 500 for a in attempts) == 4
    got = {
        (json.loads(p["Message"])["mail"]["messageId"], json.loads(p["Message"])["eventType"])
        for p in hook.posts
        if p["Type"] == "Notification"
    }
    assert got == {(i, k) for i in ids for k in ("Send", "Delivery")}


def test_a_webhook_that_refuses_connections_is_retried_until_it_is_up() -> None:
    hook = Webhook(up=False)
    policy = DeliveryPolicy(retries=50, retry_delay_s=20.0)  # room to come up: 1,000 s of SNS's
    try:
        with _server(hook.url, events_policy=policy, clock=ScaledClock(100)) as ses:
            _send(ses, f"success@{SIM}")
            refused = ses.events_hub.wait_for_attempts(lambda a: len(_of(a, "Send")) >= 2, 30)
            hook.come_up()
            attempts = _settled(ses)
    finally:
        hook.close()
    assert all(a.status is None and "Connect" in a.error for a in _of(refused, "Send"))
    send = _of(attempts, "Send")
    assert send[-1].status == 200 and send[-1].attempt >= 3
    assert len({a.sns_message_id for a in send}) == 1
    assert all(b.at - a.at >= 20.0 for a, b in itertools.pairwise(send))
    assert [kind for _, kind in hook.notifications()].count("Send") == 1


def test_a_webhook_slower_than_the_timeout_fails_the_attempt_and_a_4xx_does_not() -> None:
    def answer(body: dict, n: int) -> Answer:
        if body["Type"] == "Notification" and "Delivery" in body["Message"]:
            return 200, 60.0  # far longer than the timeout below (released at the end)
        return (403, 0.0) if body["Type"] == "Notification" else (200, 0.0)

    hook = Webhook(answer)
    policy = DeliveryPolicy(retries=1, retry_delay_s=20.0, timeout_s=2.0)
    try:
        with _server(hook.url, events_policy=policy) as ses:
            _send(ses, f"success@{SIM}")
            attempts = _settled(ses)
    finally:
        hook.close()
    delivery = _of(attempts, "Delivery")
    assert [(a.attempt, a.status, a.gave_up) for a in delivery] == [
        (1, None, False),
        (2, None, True),
    ]
    assert all("Timeout" in a.error for a in delivery)
    # a 403 is not retried: SNS counts 200-4xx as delivered (documented)
    assert [(a.attempt, a.status, a.delivered) for a in _of(attempts, "Send")] == [(1, 403, True)]


def test_a_hanging_post_holds_no_later_one_back() -> None:
    later_arrived = threading.Event()
    held: list[bool] = []  # for the first Send: whether the later one came while it hung

    def answer(body: dict, n: int) -> Answer:
        message = json.loads(body["Message"]) if body["Type"] == "Notification" else {}
        rcpt = (message.get("mail") or {}).get("destination", [""])[0]
        if message.get("eventType") == "Send" and rcpt.startswith("success+slow"):
            held.append(later_arrived.wait(20.0))  # hangs until the later Send arrives
        if message.get("eventType") == "Send" and rcpt.startswith("success+later"):
            later_arrived.set()
        return 200, 0.0

    hook = Webhook(answer)
    try:
        with _server(hook.url, clock=ScaledClock(50)) as ses:
            _send(ses, f"success+slow@{SIM}")
            _send(ses, f"success+later@{SIM}")
            attempts = _settled(ses)
    finally:
        hook.close()
    assert held == [True]  # one post at a time would have held the later one back 20 s
    assert all(a.delivered and a.attempt == 1 for a in attempts)


# --- the events feed takes the same rules ----------------------------------------------------


def test_the_events_feed_takes_the_plans_notify_rules() -> None:
    clock = VirtualClock()
    rules = [
        Rule.from_spec("stage=NOTIFY,kind=Send,action=delay,delay_s=60"),
        Rule.from_spec("stage=NOTIFY,kind=Delivery,attempts=2,action=drop"),
    ]
    with FakeSES(clock=clock, events_feed=True, faults=rules, idle_timeout_s=None) as ses:
        _send(ses, f"success@{SIM}")

        def feed() -> list[tuple[int, str]]:
            with urllib.request.urlopen(ses.events_feed_url) as response:
                return [(e["sequence"], e["kind"]) for e in json.load(response)["events"]]

        clock.advance(30.0)
        assert feed() == []  # the Send held 60 s, the Delivery's first two tries dropped
        clock.advance(15.0)  # 45 s: the Delivery, published at 2 s, got through on its third
        assert feed() == [(2, "Delivery")]
        clock.advance(20.0)
        assert feed() == [(2, "Delivery"), (1, "Send")]  # out of the order SES published them
