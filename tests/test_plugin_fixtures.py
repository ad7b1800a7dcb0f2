"""The plugin as a user meets it: installed, configured, and run in a project of their own."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

MAILER = textwrap.dedent(
    """
    import smtplib

    def message(n):
        return (
            f"From: app@example.com\\r\\nTo: user@example.com\\r\\nSubject: {n}\\r\\n"
            f"Message-ID: <m{n}@test.example>\\r\\n\\r\\nbody {n}\\r\\n"
        )

    def send(endpoint, numbers):
        with endpoint.connect() as client:
            for n in numbers:
                client.sendmail("app@example.com", ["user@example.com"], message(n))
    """
)


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(mailer=MAILER)
    return pytester


def test_installing_the_package_shows_our_options_and_marker(pytester: pytest.Pytester) -> None:
    help_text = pytester.runpytest("--help").stdout.str()
    for option in ("--fake-ses-profile", "--fake-ses-seed", "--fake-ses-clock"):
        assert option in help_text
    for ini in ("fake_ses_profile", "fake_ses_seed", "fake_ses_clock"):
        assert ini in help_text
    markers = pytester.runpytest("--markers").stdout.str()
    assert "@pytest.mark.fake_ses(profile='ses', seed=0, faults=[...], strict=True" in markers


def test_importing_the_plugin_loads_no_server_code() -> None:
    probe = (
        "import sys, harness.plugin.pytest_plugin; "
        "print(sorted(m for m in ('aiosmtpd', 'harness.server.fake_ses', 'harness.core.engine', "
        "'cryptography') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_each_test_sees_a_clean_server(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        from mailer import send

        def test_first(fake_ses):
            send(fake_ses.endpoint, [1, 2])
            assert [m.message_id for m in fake_ses.messages] == ["<m1@test.example>",
                                                                 "<m2@test.example>"]

        def test_second_starts_from_nothing(fake_ses, fake_ses_server):
            assert fake_ses.messages == [] and fake_ses.sessions == []
            send(fake_ses.endpoint, [3])
            assert [s.number for s in fake_ses.sessions] == [1]
            assert fake_ses.server is fake_ses_server
        """
    )
    project.runpytest().assert_outcomes(passed=2)


def test_marker_plan_holds_for_its_test_and_the_shared_plan_returns_after(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(
        """
        import smtplib
        import pytest
        from mailer import send

        @pytest.mark.fake_ses(session_limit=1)
        def test_capped(fake_ses):
            with pytest.raises(smtplib.SMTPSenderRefused) as refused:
                send(fake_ses.endpoint, [1, 2])
            assert refused.value.smtp_code == 421
            assert [f.name for f in fake_ses.faults_fired] == ["session_limit"]

        def test_uncapped_after(fake_ses):
            send(fake_ses.endpoint, [1, 2])
            assert len(fake_ses.messages) == 2
            assert fake_ses.plan.limits == {}
        """
    )
    project.runpytest().assert_outcomes(passed=2)


def test_marker_faults_take_rules_specs_and_tables(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import smtplib
        import pytest
        from harness import Rule
        from mailer import send

        @pytest.mark.fake_ses(faults=[
            "stage=RCPT,nth=1,action=reply,code=451,text=4.7.1 Later, please",
            {"stage": "RCPT", "nth": 2, "action": "reply", "code": 452, "text": "full"},
            Rule.from_spec("stage=RCPT,nth=3,action=reply,code=550,text=no"),
        ])
        def test_three_refusals(fake_ses):
            codes = []
            for n in (1, 2, 3, 4):
                try:
                    send(fake_ses.endpoint, [n])
                except smtplib.SMTPRecipientsRefused as error:
                    codes.append(error.recipients["user@example.com"][0])
            assert codes == [451, 452, 550]
            assert [r.call_count for r in fake_ses.rules] == [1, 1, 1]
        """
    )
    project.runpytest().assert_outcomes(passed=1)


def test_class_marker_is_overridden_by_the_closer_one(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import pytest

        @pytest.mark.fake_ses(profile="plain", session_limit=5)
        class TestPlain:
            def test_inherits(self, fake_ses):
                assert fake_ses.plan.profile == "plain"
                assert fake_ses.plan.limits == {"session_limit": 5}

            @pytest.mark.fake_ses(session_limit=2)
            def test_overrides(self, fake_ses):
                assert fake_ses.plan.profile == "plain"
                assert fake_ses.plan.limits == {"session_limit": 2}
        """
    )
    project.runpytest().assert_outcomes(passed=2)


def test_invalid_marker_is_a_setup_error_naming_the_key(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import pytest

        @pytest.mark.fake_ses(session_limt=3)
        def test_typo(fake_ses):
            pass

        @pytest.mark.fake_ses(faults=["stage=RCPT,action=explode"])
        def test_bad_action(fake_ses):
            pass
        """
    )
    result = project.runpytest()
    result.assert_outcomes(errors=2)
    out = result.stdout.str()
    assert "@pytest.mark.fake_ses: key 'limits.session_limt': unknown key" in out
    assert "(allowed: " in out and "burst, daily_quota" in out
    assert "key 'faults[0].action': 'explode' is not an action (allowed: reply, drop" in out
    assert "Traceback" not in out and "harness/" not in out


def test_ini_and_command_line_set_the_defaults(project: pytest.Pytester) -> None:
    project.makeini(
        """
        [pytest]
        fake_ses_profile = plain
        fake_ses_seed = 11
        """
    )
    project.makepyfile(
        """
        def test_defaults(fake_ses, pytestconfig):
            assert fake_ses.plan.profile == "plain"
            assert fake_ses.plan.seed == int(pytestconfig.getoption("fake_ses_seed") or 11)
            virtual = pytestconfig.getoption("fake_ses_clock") == "virtual"
            assert fake_ses.clock.virtual is virtual
        """
    )
    project.runpytest().assert_outcomes(passed=1)
    project.runpytest("--fake-ses-seed", "5", "--fake-ses-clock", "virtual").assert_outcomes(
        passed=1
    )


def test_virtual_clock_makes_server_delays_free(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        from mailer import send

        def test_slow_server(fake_ses):
            fake_ses.on("MAIL").delay(1200.0)          # a 20-minute stall, per message
            start = fake_ses.clock.now()
            send(fake_ses.endpoint, [1, 2])
            assert fake_ses.clock.now() - start >= 2400.0
            assert len(fake_ses.messages) == 2
        """
    )
    project.runpytest("--fake-ses-clock", "virtual").assert_outcomes(passed=1)


def test_invalid_options_are_usage_errors(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nfake_ses_clock = sundial\n")
    result = project.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*fake_ses_clock: 'sundial' is not a clock (allowed: real*"])


def test_invalid_profile_option_names_the_allowed_profiles(project: pytest.Pytester) -> None:
    project.makepyfile("def test_any(fake_ses):\n    pass\n")
    result = project.runpytest("--fake-ses-profile", "mailgun")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*fake_ses options: key 'profile': 'mailgun' is not a profile (allowed: ses*"]
    )


def test_factory_servers_have_their_own_plan_and_stop_at_teardown(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(
        """
        import smtplib
        import socket
        import pytest
        from mailer import send

        ports = []

        def test_two_servers(fake_ses, fake_ses_factory):
            sandbox = fake_ses_factory(profile="ses-sandbox", verified=["@example.com"])
            plain = fake_ses_factory(profile="plain")
            ports.extend([sandbox.port, plain.port])
            assert len({fake_ses.port, sandbox.port, plain.port}) == 3
            send(plain.endpoint, [1])
            assert len(plain.messages) == 1 and fake_ses.messages == []
            assert sandbox.plan.profile == "ses-sandbox"

        def test_they_are_stopped():
            for port in ports:
                with pytest.raises(ConnectionRefusedError):
                    socket.create_connection(("127.0.0.1", port), timeout=5).close()

        def test_factory_rejects_bad_plans(fake_ses_factory):
            from harness import PlanError
            with pytest.raises(PlanError, match="fake_ses_factory: key 'profile'"):
                fake_ses_factory(profile="nope")
        """
    )
    project.runpytest().assert_outcomes(passed=3)


@pytest.mark.slow
def test_parallel_workers_each_own_a_server(project: pytest.Pytester) -> None:
    tests = "\n".join(
        textwrap.dedent(
            f"""
            def test_worker_{n}(fake_ses, worker_id):
                send(fake_ses.endpoint, [{n}, {n + 100}])
                assert [m.message_id for m in fake_ses.messages] == [
                    "<m{n}@test.example>", "<m{n + 100}@test.example>"]
                assert [s.number for s in fake_ses.sessions] == [1]
                assert worker_id.startswith("gw")
            """
        )
        for n in range(6)
    )
    project.makepyfile("from mailer import send\n" + tests)
    result = project.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)


def test_a_conftest_can_override_the_shared_server(project: pytest.Pytester) -> None:
    project.makeconftest(
        """
        import pytest
        from harness import FakeSES, Rule

        @pytest.fixture(scope="session")
        def fake_ses_server():
            base_rule = Rule.from_spec("stage=NOOP,action=reply,code=250,text=base rule")
            server = FakeSES("plain", tls="starttls", auth=("app", "secret"), faults=[base_rule])
            with server:
                yield server
        """
    )
    project.makepyfile(
        """
        from mailer import send

        def test_tls_and_auth(fake_ses):
            assert fake_ses.endpoint.tls == "starttls"
            send(fake_ses.endpoint, [1])     # connect() does STARTTLS and AUTH
            assert fake_ses.sessions[0].tls and fake_ses.sessions[0].user == "app"
            assert fake_ses.rules == []      # the server's own rules are not the test's

        def test_plan_is_restored(fake_ses):
            fake_ses.on("MAIL").reply(451, "later")
            fake_ses.strict = False

        def test_after(fake_ses):
            assert len(fake_ses.plan.faults) == 1
        """
    )
    project.runpytest().assert_outcomes(passed=3)
