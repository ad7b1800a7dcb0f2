"""django-ses (Django's email backend on boto3, the SES API) as a Django application uses it:
an EmailMessage per mail, the batch handed to `send_messages` on one connection.

    python django_ses_batch.py        django-ses's default: the v1 API (send_raw_email)
    python django_ses_batch.py --v2   USE_SES_V2 = True: the v2 API (send_email, raw content)

Only the endpoint is pointed at the fake (AWS_SES_REGION_ENDPOINT_URL, from SES_API_URL);
everything else is django-ses's default, its auto-throttle (half the rate GetSendQuota reports)
and boto3's default retries included. django-ses marks each message it sent with
``extra_headers["message_id"]``, so when `send_messages` raises, the application can tell the
ones that went from the ones that did not, and claims exactly that.
"""

from __future__ import annotations

import os
import sys

import django
from django.conf import settings
from django.core.mail import get_connection
from django_batch import email_message  # the same EmailMessage, beside this script

from harness import client


def configure(v2: bool) -> None:
    env = os.environ
    settings.configure(
        EMAIL_BACKEND="django_ses.SESBackend",
        AWS_ACCESS_KEY_ID=env["AWS_ACCESS_KEY_ID"],
        AWS_SECRET_ACCESS_KEY=env["AWS_SECRET_ACCESS_KEY"],
        AWS_SES_REGION_NAME=env.get("AWS_REGION", "us-east-1"),
        AWS_SES_REGION_ENDPOINT_URL=env["SES_API_URL"],
        USE_SES_V2=v2,
    )
    django.setup()


def main() -> None:
    configure(v2="--v2" in sys.argv[1:])
    claims = client.Claims()
    batch = list(client.batch())
    mails = [email_message(m) for m in batch]
    connection = get_connection()
    try:
        connection.send_messages(mails)
    except Exception as error:  # django-ses lets boto3's ClientError through
        print(f"send_messages raised {type(error).__name__}: {error}", file=sys.stderr)
        failure: Exception | None = error
    else:
        failure = None
    for message, mail in zip(batch, mails, strict=True):
        if "message_id" in mail.extra_headers:
            claims.sent(message)
        elif failure is not None:
            claims.failed(message, failure)
        else:
            claims.not_attempted(message)


if __name__ == "__main__":
    main()
