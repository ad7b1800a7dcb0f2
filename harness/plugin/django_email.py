"""Django glue: point a project's email settings at a fake SES server for one test.

pytest-django swaps in the locmem backend for every test, so without this each test would set
the SMTP backend, host, port, TLS and credentials itself. Works with pytest-django or with
settings configured by hand (`settings.configure(...)`); Django is imported only when used.

>>> def test_welcome_mail(fake_ses_django):                            # doctest: +SKIP
...     send_mass_mail([("Hi", "Welcome", "app@example.com", ["a@example.com"]), ...])
...     fake_ses_django.assert_delivered_once_to(["a@example.com", ...])
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from harness.base.endpoint import TlsMode
from harness.server.view import FakeSESView

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
#: Django's SMTP timeout for these tests: a stalled server fails the test instead of hanging it.
TIMEOUT_S = 10


def email_settings(view: FakeSESView) -> dict[str, Any]:
    """The Django settings that send through `view`'s server with Django's own SMTP backend."""
    endpoint = view.endpoint
    if endpoint.tls is not TlsMode.NONE:
        # Django's backend builds its own SSL context with no way to trust another CA.
        raise ValueError(
            "fake_ses_django: Django's SMTP backend cannot be told to trust the fake server's "
            "certificate; use a server without TLS for Django tests"
        )
    return {
        "EMAIL_BACKEND": SMTP_BACKEND,
        "EMAIL_HOST": endpoint.host,
        "EMAIL_PORT": endpoint.port,
        "EMAIL_USE_TLS": False,
        "EMAIL_USE_SSL": False,
        "EMAIL_HOST_USER": endpoint.username or "",
        "EMAIL_HOST_PASSWORD": endpoint.password or "",
        "EMAIL_TIMEOUT": TIMEOUT_S,
    }


@contextmanager
def django_email(view: FakeSESView) -> Iterator[FakeSESView]:
    """Within the block, Django sends mail through `view`'s server (`override_settings`)."""
    from django.test.utils import override_settings

    with override_settings(**email_settings(view)):
        yield view
