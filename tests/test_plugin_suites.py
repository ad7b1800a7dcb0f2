"""The plugin in real test suites: reused connections, async tests, per-test clocks, the report.

Each test builds a small user project with pytester and runs it as a user would; clients are
real (smtplib, aiosmtplib) on real sockets.
"""

from __future__ import annotations

import textwrap

import pytest

# A connection the application caches at module level, as a pooled mailer does: opened by the
# first test that sends, reused by every later test in the same process.
POOLED = textwrap.dedent(
    """
    import smtplib

    _cached = {}

    def connection(endpoint):
        client = _cached.get("client")
        if client is None:
            client = _cached["client"] = smtplib.SMTP(endpoint.host, endpoint.port)
        return client

    def message(n):
        return (
            f"From: app@example.com\\r\\nTo: user@example.com\\r\\nSubject: {n}\\r\\n"
            f"Message-ID: <m{n}@test.example>\\r\\n\\r\\nbody {n}\\r\\n"
        )

    def send(endpoint, n):
        connection(endpoint).sendmail("app@example.com", ["user@example.com"], message(n))
    """
)

CARRY_OVER = textwrap.dedent(
    """
    import smtplib
    import pytest
    from pooled import send

    def test_a_leaves_its_connection_open(fake_ses):
        for n in range(5):
            send(fake_ses.endpoint, n)
        assert len(fake_ses.messages) == 5

    @pytest.mark.fake_ses(session_limit=7)
    def test_b_meets_its_own_cap_on_the_reused_connection(fake_ses):
        for n in range(10, 17):
            send(fake_ses.endpoint, n)  # 7 fit: the 5 of test a are not counted here
        with pytest.raises(smtplib.SMTPException) as refused:
            send(fake_ses.endpoint, 17)
        assert "421" in str(refused.value) or getattr(refused.value, "smtp_code", 0) == 421
        fake_ses.assert_delivered_once([f"<m{n}@test.example>" for n in range(10, 17)])
        (session,) = fake_ses.sessions
        assert session.carried_over and session.accepted == 7
        assert [f.name for f in fake_ses.faults_fired] == ["session_limit"]
    """
)


@pytest.fixture
def pooled(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(pooled=POOLED)
    # The pool closes when the run ends, as an application's would at exit.
    pytester.makeconftest(
        """
        import pooled

        def pytest_sessionfinish():
            client = pooled._cached.pop("client", None)
            if client is not None:
                client.close()
        """
    )
    # Every warning is an error: a pooled connection must not earn one at teardown.
    pytester.makeini(
        """
        [pytest]
        asyncio_default_fixture_loop_scope = function
        filterwarnings = error
        """
    )
    return pytester


@pytest.mark.parametrize(
    "workers",
    [["-n", "0"], pytest.param(["-n", "2", "--dist", "loadfile"], marks=pytest.mark.slow)],
)
def test_a_reused_connection_meets_the_next_tests_cap_at_its_own_8th_message(
    pooled: pytest.Pytester, workers: list[str]
) -> None:
    pooled.makepyfile(test_carry=CARRY_OVER)
    result = pooled.runpytest_subprocess(*workers, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    # The open connection is a pool, not a mistake: teardown neither waits for it nor warns.
    assert "still" not in result.stdout.str()


def test_a_failure_report_says_the_session_began_in_an_earlier_test(
    pooled: pytest.Pytester,
) -> None:
    pooled.makepyfile(
        test_carry="""
        from pooled import send

        def test_a(fake_ses):
            send(fake_ses.endpoint, 1)

        def test_b(fake_ses):
            send(fake_ses.endpoint, 2)
            fake_ses.assert_delivered_once(["<m2@test.example>", "<m3@test.example>"])
        """
    )
    result = pooled.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*1 of 2 messages were not delivered exactly once (server recorded 1 messages)",
            "*session 1 began in an earlier test and carried over (a reused connection): "
            "counted from this test's start",
            "*- fake_ses -*",
            "server 127.0.0.1:*: 1 sessions, 1 messages, 4 commands, 0 faults fired",
            "session 1 began in an earlier test and carried over*",
        ]
    )


def test_a_connection_left_open_and_unused_is_not_the_next_tests_traffic(
    pooled: pytest.Pytester,
) -> None:
    pooled.makepyfile(
        test_carry="""
        import smtplib
        from pooled import send

        def test_a(fake_ses):
            send(fake_ses.endpoint, 1)

        def test_b_opens_its_own(fake_ses, fake_ses_server):
            assert fake_ses.sessions == [] and fake_ses.messages == []
            with smtplib.SMTP(fake_ses.host, fake_ses.port) as client:
                client.noop()
            assert [s.carried_over for s in fake_ses.sessions] == [False]
            assert [s.carried_over for s in fake_ses_server.ledger.sessions] == [True, False]
        """
    )
    pooled.runpytest().assert_outcomes(passed=2)


def test_a_carried_over_session_restarts_its_idle_timer(pooled: pytest.Pytester) -> None:
    # On a virtual clock the idle limit is the engine's: what counts is the time since this
    # test's start, not since the earlier test's last command.
    pooled.makepyfile(
        test_carry="""
        import pytest
        from pooled import send

        def test_a(fake_ses):
            send(fake_ses.endpoint, 1)
            fake_ses.clock.sleep(50)

        @pytest.mark.fake_ses(idle_timeout_s=60)
        def test_b(fake_ses):
            fake_ses.clock.sleep(50)  # 100 s after test a's message, 50 s after this start
            send(fake_ses.endpoint, 2)
            assert fake_ses.faults_fired == []
        """
    )
    pooled.runpytest("--fake-ses-clock", "virtual").assert_outcomes(passed=2)


def test_the_report_section_counts_from_the_ledger_and_names_what_fired(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import smtplib
        import pytest

        @pytest.mark.fake_ses(session_limit=350, rate_per_s=None)
        def test_more_than_the_transcript_keeps(fake_ses):
            client = smtplib.SMTP(fake_ses.host, fake_ses.port)
            for n in range(351):
                try:
                    client.sendmail("a@example.com", ["b@example.com"],
                                    f"Message-ID: <{n}@x>\\r\\n\\r\\nhi\\r\\n")
                except smtplib.SMTPException:
                    break
            client.close()
            assert False, "show me the section"
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- fake_ses -*",
            "server 127.0.0.1:*: 1 sessions, 350 messages, 1402 commands, 1 faults fired",
            "commands received: EHLO 1, MAIL 351, RCPT 350, DATA 350, EOM 350",
            "limit 'session_limit' fired 1x, first in session 1 command 1402 MAIL -> 421 *",
        ]
    )


def test_the_marker_chooses_the_clock(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.fake_ses(clock="virtual", session_limit=2)
        def test_virtual(fake_ses, fake_ses_server):
            assert fake_ses.clock.virtual and not fake_ses_server.clock.virtual
            assert fake_ses.server is not fake_ses_server
            before = fake_ses.clock.now()
            fake_ses.clock.sleep(1200)
            assert fake_ses.clock.now() - before == 1200
            assert fake_ses.plan.limits["session_limit"] == 2

        def test_the_shared_server_keeps_its_clock(fake_ses):
            assert not fake_ses.clock.virtual

        @pytest.mark.fake_ses(clock="sundial")
        def test_bad_clock(fake_ses):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        ["*@pytest.mark.fake_ses: key 'clock': 'sundial' is not a clock (allowed: *virtual*"]
    )


def test_the_marker_gives_a_server_with_credentials(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import smtplib
        import pytest

        @pytest.mark.fake_ses(auth=("user", "secret"))
        def test_auth(fake_ses):
            assert fake_ses.endpoint.username == "user"
            with fake_ses.endpoint.connect() as client:
                client.sendmail("a@x.example", ["b@x.example"], "Message-ID: <1@x>\\r\\n\\r\\n")
            fake_ses.assert_delivered_once(["<1@x>"])
            assert fake_ses.sessions[0].user == "user"
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_the_fixture_sends_through_the_ses_api_too(pytester: pytest.Pytester) -> None:
    pytest.importorskip("boto3")
    pytester.makepyfile(
        """
        def test_api(fake_ses):
            assert fake_ses.api_url.startswith("http://127.0.0.1:")
            fake_ses.boto3_client().send_email(
                FromEmailAddress="app@example.com",
                Destination={"ToAddresses": ["u@example.com"]},
                Content={"Simple": {"Subject": {"Data": "hi"}, "Body": {"Text": {"Data": "x"}}}},
            )
            fake_ses.assert_delivered_once_to(["u@example.com"])
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_the_marker_gives_a_server_with_tls(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.fake_ses(tls="starttls")
        def test_tls(fake_ses, fake_ses_server):
            assert fake_ses.endpoint.tls.value == "starttls" and fake_ses_server.tls.value == "none"
            with fake_ses.endpoint.connect() as client:  # through STARTTLS, trusting the test CA
                client.sendmail("a@x.example", ["b@x.example"], "Message-ID: <t@x>\\r\\n\\r\\n")
            fake_ses.assert_delivered_once(["<t@x>"])
            assert fake_ses.sessions[0].tls
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)
