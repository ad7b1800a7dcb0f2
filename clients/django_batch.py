"""Django's SMTP EmailBackend as a Django application uses it: build an EmailMessage per mail and
hand the batch to `send_messages` on one connection.

    python django_batch.py                  fail_silently=False: the first error raises
    python django_batch.py --fail-silently  fail_silently=True: errors are swallowed
    python django_batch.py --own-message-id Django stamps its own Message-ID, as it does unless
                                            told otherwise (the harness ties copies by envelope)

`send_messages` returns only how many went, not which, so the application believes what it can
see: with fail_silently=False, every message of a batch that raised failed; with True, every
message was sent. Each EmailMessage carries the harness's Message-ID (Django would otherwise
make its own) and the body and attachments of the harness's message.

The idiom is Django's documentation (https://docs.djangoproject.com/en/5.2/topics/email/,
"Sending multiple emails": one connection from `get_connection()`, then
`connection.send_messages(messages)`).
"""

from __future__ import annotations

import os
import sys

import django
from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from harness import client


def configure(server: client.Server) -> None:
    if server.ca_file:  # Django's backend trusts the default store; point it at the test CA
        os.environ["SSL_CERT_FILE"] = server.ca_file
    settings.configure(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST=server.host,
        EMAIL_PORT=server.port,
        EMAIL_HOST_USER=server.user or "",
        EMAIL_HOST_PASSWORD=server.password or "",
        EMAIL_USE_TLS=server.tls == "starttls",
        EMAIL_USE_SSL=server.tls == "implicit",
        EMAIL_TIMEOUT=30,
    )
    django.setup()


def email_message(message: client.Message, own_message_id: bool = False) -> EmailMessage:
    """The harness's message as an application builds it with Django, from its parts."""
    mail = EmailMessage(
        subject=message.subject,
        body=message.text,
        from_email=message.from_header,
        to=message.recipients,
        headers={} if own_message_id else {"Message-ID": message.id},
    )
    for attachment in message.attachments:
        mail.attach(attachment.filename, attachment.data, attachment.content_type)
    return mail


def main() -> None:
    fail_silently = "--fail-silently" in sys.argv[1:]
    own_message_id = "--own-message-id" in sys.argv[1:]
    configure(client.server())
    claims = client.Claims()
    batch = list(client.batch())
    connection = get_connection(fail_silently=fail_silently)
    try:
        connection.send_messages([email_message(m, own_message_id) for m in batch])
    except Exception as error:  # Django raises whatever smtplib raised
        print(f"send_messages raised {type(error).__name__}: {error}", file=sys.stderr)
        for message in batch:
            claims.failed(message, error)
    else:
        for message in batch:
            claims.sent(message)


if __name__ == "__main__":
    main()
