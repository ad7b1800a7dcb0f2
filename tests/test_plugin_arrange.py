"""Arranging faults from test code, reading what fired, and strictness at the end of a test.

Most tests here use our own `fake_ses` fixture (the plugin is installed with the package);
strictness is about how a user's test run ends, so those run a user's file with pytester.
"""

from __future__ import annotations

import smtplib
import threading

import pytest

from harness import PlanError, Rule, VirtualClock
from harness.plugin.assertions import rule_spec
from tests.helpers import message, send


def test_times_refuses_the_first_k_matching_commands_then_lets_them_through(fake_ses) -> None:
    greylist = fake_ses.on("RCPT").times(2).reply(451, "4.7.1 Greylisted, try later")
    codes = []
    with fake_ses.endpoint.connect() as client:
        for n in (1, 2, 3):
            try:
                send(client, n)
                codes.append(250)
            except smtplib.SMTPRecipientsRefused as error:
                codes.append(error.recipients["user@example.com"][0])
                client.rset()
    assert codes == [451, 451, 250]
    assert greylist.call_count == 2
    assert [(c.stage, c.reply) for c in greylist.calls] == [
        ("RCPT", "451 4.7.1 Greylisted, try later")
    ] * 2
    assert [m.message_id for m in fake_ses.messages] == ["<msg-3@test.example>"]


def test_nth_drop_after_accept_records_the_message_but_cuts_the_250(fake_ses) -> None:
    cut = fake_ses.on("EOM").nth(2).drop_after_accept()
    with fake_ses.endpoint.connect() as client:
        send(client, 1)
        with pytest.raises(smtplib.SMTPServerDisconnected):
            send(client, 2)
    assert [(m.message_id, m.acknowledged) for m in fake_ses.messages] == [
        ("<msg-1@test.example>", True),
        ("<msg-2@test.example>", False),
    ]
    assert cut.called and cut.calls[0].action == "drop_after_accept"


def test_matcher_keywords_select_commands(fake_ses) -> None:
    bounce = fake_ses.on("RCPT", recipient="*@blocked.example").reply(550, "5.1.1 no such user")
    with fake_ses.endpoint.connect() as client:
        send(client, 1, ["ok@example.com"])
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            send(client, 2, ["someone@blocked.example"])
    assert bounce.call_count == 1
    assert len(fake_ses.messages) == 1


def test_drop_cuts_the_connection_without_a_reply(fake_ses) -> None:
    fake_ses.on("MAIL").drop()
    client = fake_ses.endpoint.connect()
    with pytest.raises(smtplib.SMTPServerDisconnected):
        send(client, 1)
    client.close()
    fake_ses.wait_for(lambda ledger: not ledger.sessions[0].open)
    assert fake_ses.sessions[0].closed_by == "server"


def test_reply_421_closes_the_session(fake_ses) -> None:
    fake_ses.on("MAIL").reply(421, "4.4.2 going away")
    client = fake_ses.endpoint.connect()
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        send(client, 1)
    assert refused.value.smtp_code == 421
    client.close()
    fake_ses.wait_for(lambda ledger: not ledger.sessions[0].open)
    assert fake_ses.sessions[0].close_reason == "rule:MAIL:reply"


def test_stall_never_answers_and_hangs_up_after_its_time(fake_ses) -> None:
    stall = fake_ses.on("DATA").stall(0.05)
    with fake_ses.endpoint.connect() as client, pytest.raises(smtplib.SMTPServerDisconnected):
        send(client, 1)
    assert stall.call_count == 1 and fake_ses.messages == []


def test_delay_on_a_virtual_clock_costs_no_wall_time(fake_ses_factory) -> None:
    clock = VirtualClock()
    ses = fake_ses_factory(profile="plain", clock=clock)
    slow = ses.on("EOM").delay(600.0)
    with ses.endpoint.connect() as client:
        send(client, 1)
    assert clock.elapsed() == 600.0
    assert slow.call_count == 1 and len(ses.messages) == 1


def test_limits_override_the_profile_for_this_test(fake_ses) -> None:
    fake_ses.limits(session_limit=2, rate_per_s=None)
    with fake_ses.endpoint.connect() as client:
        send(client, 1)
        send(client, 2)
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            send(client, 3)
    assert refused.value.smtp_code == 421
    assert [f.name for f in fake_ses.faults_fired] == ["session_limit"]
    assert fake_ses.plan.resolved_limits().rate_per_s is None


def test_bad_arrangements_raise_plan_errors_naming_the_key(fake_ses) -> None:
    with pytest.raises(PlanError, match=r"key 'stage': 'BOUNCE' is not allowed \(allowed: CONN"):
        fake_ses.on("BOUNCE").reply(550)
    with pytest.raises(PlanError, match="drop_after_accept only happens at end of data"):
        fake_ses.on("RCPT").drop_after_accept()
    with pytest.raises(PlanError, match=r"key 'nth_time': unknown key \(allowed: .*after"):
        fake_ses.on("RCPT", nth_time=2).drop()
    with pytest.raises(PlanError, match="key 'code': 99 is not an SMTP reply code"):
        fake_ses.on("RCPT").reply(99)
    assert fake_ses.rules == []


def test_rules_arranged_later_keep_their_own_call_records(fake_ses) -> None:
    first = fake_ses.on("MAIL").nth(1).reply(451, "first")
    second = fake_ses.on("MAIL").nth(1).reply(452, "second")  # both match; plan order decides
    with fake_ses.endpoint.connect() as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            send(client, 1)
        assert refused.value.smtp_code == 451
    assert (first.call_count, second.call_count) == (1, 0)
    second_index = [r.index for r in fake_ses.rules]
    assert second_index == [0, 1]
    fake_ses.strict = False  # `second` is meant to lose to `first` here


def test_wait_for_messages_waits_for_a_client_in_another_thread(fake_ses) -> None:
    def client_job() -> None:
        with fake_ses.endpoint.connect() as client:
            for n in range(5):
                send(client, n)

    worker = threading.Thread(target=client_job)
    worker.start()
    arrived = fake_ses.wait_for_messages(5, timeout_s=30)
    worker.join()
    assert [m.message_id for m in arrived] == [f"<msg-{n}@test.example>" for n in range(5)]


def test_wait_for_messages_fails_with_what_arrived(fake_ses) -> None:
    with fake_ses.endpoint.connect() as client:
        send(client, 1)
    expected = r"waited 0\.01s for 2 messages; the server recorded 1"
    with pytest.raises(AssertionError, match=expected):
        fake_ses.wait_for_messages(2, timeout_s=0.01)


def test_assert_delivered_once_names_lost_and_duplicated_ids_faults_and_a_reproducer(
    fake_ses,
) -> None:
    fake_ses.on("EOM", nth=2).drop_after_accept()
    sent = []
    for n in (1, 2, 3):  # a careless client: resends after a cut, gives up on message 3
        for _attempt in (1, 2):
            try:
                with fake_ses.endpoint.connect() as client:
                    if n == 3:
                        break
                    send(client, n)
                    sent.append(n)
                    break
            except smtplib.SMTPServerDisconnected:
                continue
    with pytest.raises(AssertionError) as failure:
        fake_ses.assert_delivered_once([f"<msg-{n}@test.example>" for n in (1, 2, 3)])
    text = str(failure.value)
    assert "2 of 3 messages were not delivered exactly once" in text
    assert "not delivered (1, no copy on the server):\n    <msg-3@test.example>" in text
    assert "<msg-2@test.example> x2 (sessions 2, 3)" in text
    assert "session 2 command 5 EOM: rule 'EOM:drop_after_accept'" in text
    assert text.endswith(
        "reproduce: @pytest.mark.fake_ses(profile='ses', seed=0, "
        "faults=['stage=EOM,nth=2,action=drop_after_accept'])"
    )


def test_assert_delivered_once_passes_with_or_without_angle_brackets(fake_ses) -> None:
    with fake_ses.endpoint.connect() as client:
        send(client, 1)
        send(client, 2)
    fake_ses.assert_delivered_once(["<msg-1@test.example>", "msg-2@test.example"])


@pytest.mark.parametrize(
    "spec",
    [
        "stage=RCPT,first=2,action=reply,code=451,text=4.7.1 Greylisted, please try later",
        "name=flaky,stage=EOM,probability=0.25,action=drop_after_accept",
        "stage=MAIL,session=2,action=reply,code=421,text=bye,close=false",
        "stage=DATA,action=stall,stall_s=1.5",
    ],
)
def test_rule_specs_in_reports_read_back_as_the_same_rule(spec: str) -> None:
    rule = Rule.from_spec(spec)
    assert Rule.from_spec(rule_spec(rule)) == rule


def test_message_helper_is_what_the_server_records(fake_ses) -> None:
    # Guards the helpers above: the Message-ID the tests expect is the one on the wire.
    with fake_ses.endpoint.connect() as client:
        client.sendmail("app@example.com", ["user@example.com"], message(9))
    assert fake_ses.messages[0].message_id == "<msg-9@test.example>"


# --- strictness, as a user's run ends -------------------------------------------------------

USER_TEST = """
import pytest

def send(endpoint):
    with endpoint.connect() as client:
        client.sendmail("a@example.com", ["b@example.com"],
                        "Message-ID: <1@x>\\r\\nSubject: hi\\r\\n\\r\\nhi\\r\\n")
"""


def test_a_fault_that_never_fired_fails_a_passing_test_at_teardown(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        USER_TEST
        + """
def test_forgets_to_trigger_it(fake_ses):
    fake_ses.on("RCPT", recipient="*@elsewhere.example").reply(451, "4.7.1 Later")
    send(fake_ses.endpoint)
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_forgets_to_trigger_it*",
            "fake_ses (strict): arranged faults must fire",
            "  never fired: stage=RCPT,recipient=*@elsewhere.example,action=reply,code=451,*",
            "*1 sessions, 1 messages, 6 commands, 0 faults fired",
            "commands received: EHLO 1, MAIL 1, RCPT 1, DATA 1, EOM 1, QUIT 1",
            "*(opt out with @pytest.mark.fake_ses(strict=False))",
        ]
    )


def test_strictness_is_reported_after_the_tests_own_failure_not_instead(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        USER_TEST
        + """
@pytest.mark.fake_ses(faults=["stage=MAIL,session=7,action=drop"])
def test_fails_on_its_own(fake_ses):
    send(fake_ses.endpoint)
    assert len(fake_ses.messages) == 2, "the test's own complaint"
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)  # one failure, no second error at teardown
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: the test's own complaint*",
            "*- fake_ses -*",
            "fake_ses (strict): arranged faults must fire",
            "  never fired: stage=MAIL,session=7,action=drop",
            "FAILED *::test_fails_on_its_own*",
        ]
    )


def test_failing_tests_get_the_servers_summary_and_reproducer(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        USER_TEST
        + """
@pytest.mark.fake_ses(seed=4, session_limit=9)
def test_fails(fake_ses):
    send(fake_ses.endpoint)
    assert False
"""
    )
    result = pytester.runpytest("-s")  # the section shows even when output is not captured
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- fake_ses -*",
            "server 127.0.0.1:*: 1 sessions, 1 messages, 6 commands, 0 faults fired",
            "reproduce: @pytest.mark.fake_ses(profile='ses', seed=4, session_limit=9)",
        ]
    )


def test_strict_false_lets_faults_stay_unfired(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        USER_TEST
        + """
@pytest.mark.fake_ses(strict=False, faults=["stage=QUIT,nth=3,action=drop"])
def test_relaxed(fake_ses):
    fake_ses.on("RCPT", probability=0.0).reply(451, "never")
    send(fake_ses.endpoint)
"""
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_an_arrangement_without_an_action_is_reported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        USER_TEST
        + """
def test_half_arranged(fake_ses):
    fake_ses.on("RCPT").times(2)
    send(fake_ses.endpoint)
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["  no action given: on('RCPT', first=2) (add .reply(), .drop(), ...)"]
    )


def test_skipped_tests_are_not_held_to_strictness(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        USER_TEST
        + """
def test_skips(fake_ses):
    fake_ses.on("RCPT").reply(451, "never reached")
    pytest.skip("not today")

@pytest.mark.xfail(reason="known", strict=True)
def test_xfails(fake_ses):
    fake_ses.on("RCPT").reply(451, "never reached")
    assert False
"""
    )
    pytester.runpytest().assert_outcomes(skipped=1, xfailed=1)


@pytest.mark.slow
def test_strictness_under_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        USER_TEST
        + """
def test_fired(fake_ses):
    grey = fake_ses.on("RCPT").times(1).reply(451, "later")
    with pytest.raises(Exception):
        send(fake_ses.endpoint)
    send(fake_ses.endpoint)
    assert grey.call_count == 1

def test_unfired(fake_ses):
    fake_ses.on("RCPT", session=5).reply(451, "later")
    send(fake_ses.endpoint)

def test_own_failure(fake_ses):
    fake_ses.on("RCPT", session=5).reply(451, "later")
    assert False, "own failure"
"""
    )
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1, errors=1)
    # The strict note travels from the worker inside the failure report, after the error.
    failure = result.stdout.str().split("_ test_own_failure _")[1]
    assert failure.index("own failure") < failure.index("never fired: stage=RCPT,session=5")
