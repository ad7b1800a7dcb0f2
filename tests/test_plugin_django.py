"""Django under pytest-django: the helper fixture, a cached connection, and verdicts by recipient.

Each project runs in its own process: Django is configured once per process.
"""

from __future__ import annotations

import pytest

SETTINGS = """
SECRET_KEY = "test"
INSTALLED_APPS = []
DATABASES = {}
USE_TZ = True
"""

# The application's own mail module: a connection cached across calls, as a pooled app keeps.
APP = """
from django.core import mail

_cached = {}

def connection():
    if "connection" not in _cached:
        _cached["connection"] = mail.get_connection()
        _cached["connection"].open()
    return _cached["connection"]

def notify(n):
    mail.EmailMessage(f"Notice {n}", "body", "app@example.com", [f"user{n}@example.com"],
                      connection=connection()).send()

def close():
    if "connection" in _cached:
        _cached.pop("connection").close()
"""

CONFTEST = """
import app

def pytest_sessionfinish():
    app.close()
"""


@pytest.fixture
def django_project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(dsettings=SETTINGS, app=APP)
    pytester.makeconftest(CONFTEST)
    pytester.makeini(
        """
        [pytest]
        DJANGO_SETTINGS_MODULE = dsettings
        asyncio_default_fixture_loop_scope = function
        filterwarnings = error
        """
    )
    return pytester


def test_djangos_cached_connection_meets_the_next_tests_own_cap(
    django_project: pytest.Pytester,
) -> None:
    django_project.makepyfile(
        test_mail="""
        import smtplib
        import pytest
        from app import notify

        def test_a_leaves_the_cached_connection_open(fake_ses_django):
            for n in range(5):
                notify(n)
            fake_ses_django.assert_delivered_once_to([f"user{n}@example.com" for n in range(5)])

        @pytest.mark.fake_ses(session_limit=7)
        def test_b_sends_7_on_it_and_meets_the_421_at_the_8th(fake_ses_django):
            for n in range(10, 17):
                notify(n)
            with pytest.raises(smtplib.SMTPException):
                notify(17)
            fake_ses_django.assert_delivered_once_to([f"user{n}@example.com"
                                                      for n in range(10, 17)])
            (session,) = fake_ses_django.sessions
            assert session.carried_over
        """
    )
    result = django_project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_send_mass_mail_is_checked_by_recipient(django_project: pytest.Pytester) -> None:
    django_project.makepyfile(
        test_mass="""
        from django.conf import settings
        from django.core import mail

        def test_the_helper_points_django_at_the_fake(fake_ses_django):
            assert settings.EMAIL_BACKEND == "django.core.mail.backends.smtp.EmailBackend"
            assert (settings.EMAIL_HOST, settings.EMAIL_PORT) == (fake_ses_django.host,
                                                                  fake_ses_django.port)
            sent = mail.send_mass_mail([
                ("Hi", "one", "app@example.com", ["a@example.com"]),
                ("Hi", "two", "app@example.com", ["b@example.com", "C@example.com"]),
            ])
            assert sent == 2
            fake_ses_django.assert_delivered_once_to(
                ["a@example.com", "b@example.com", "c@example.com"])

        def test_locmem_is_back_after_the_helper(settings):
            assert settings.EMAIL_BACKEND == "django.core.mail.backends.locmem.EmailBackend"

        def test_a_missing_recipient_reads_well(fake_ses_django):
            mail.send_mass_mail([("Hi", "one", "app@example.com", ["a@example.com"])])
            fake_ses_django.assert_delivered_once_to(["a@example.com", "b@example.com"])
        """
    )
    result = django_project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*1 of 2 recipients were not delivered exactly once (server recorded 1 messages)",
            "*not delivered (1, no copy on the server):",
            "*b@example.com",
        ]
    )
