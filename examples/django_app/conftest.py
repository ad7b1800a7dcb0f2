"""Django for this example. In your project, pytest-django reads `DJANGO_SETTINGS_MODULE` from
pytest.ini; here the example configures Django itself, so `pytest examples/` runs it anywhere.

Nothing else is needed: the `fake_ses_django` fixture points the email settings at the fake
server for each test that asks for it (pytest-django's locmem backend everywhere else).
"""

from django.conf import settings

if not settings.configured:
    settings.configure(
        SECRET_KEY="example-only",
        INSTALLED_APPS=[],
        DATABASES={},
        DEFAULT_FROM_EMAIL="shop@example.com",
        USE_TZ=True,
    )
