"""django-ses's SNS event webhook (``django_ses.views.SESEventWebhookView``), unmodified, as an
application mounts it: a Django site with the view at ``/ses/event-webhook/``, served by
wsgiref on 127.0.0.1 (port 0). Each signal django-ses sends (bounce_received,
complaint_received, delivery_received, send_received) appends one JSON line to $WEBHOOK_LOG:
``{"signal": ..., "messageId": ..., "recipients": [...]}``. The first line on stdout is the
port.

django-ses checks each message's signature (SHA1, SignatureVersion 1) with the certificate it
fetches from SigningCertURL over HTTPS with requests. Environment: SNS_CERT_DOMAIN, the host:port
to trust (AWS_SNS_EVENT_CERT_TRUSTED_DOMAINS); REQUESTS_CA_BUNDLE, the fake's test CA file.
"""

from __future__ import annotations

import json
import os
import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

import django
from django.conf import settings
from django.urls import path


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def configure() -> None:
    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=__name__,
        SECRET_KEY="webhook-test",
        MIDDLEWARE=[],
        AWS_SNS_EVENT_CERT_TRUSTED_DOMAINS=[os.environ["SNS_CERT_DOMAIN"]],
    )
    django.setup()


def record(signal_name: str):  # type: ignore[no-untyped-def]
    event_name = signal_name.removesuffix("_received")

    def receiver(sender, mail_obj, **detail):  # type: ignore[no-untyped-def]
        event = detail.get(f"{event_name}_obj") or {}
        recipients = [
            r.get("emailAddress", r) if isinstance(r, dict) else r
            for field in ("bouncedRecipients", "complainedRecipients", "recipients")
            for r in event.get(field, [])
        ]
        line = {"signal": signal_name, "messageId": mail_obj["messageId"], "recipients": recipients}
        with open(os.environ["WEBHOOK_LOG"], "a", encoding="utf-8") as log:
            log.write(json.dumps(line) + "\n")

    return receiver


def main() -> None:
    configure()
    from django.core.wsgi import get_wsgi_application
    from django_ses import signals
    from django_ses.views import SESEventWebhookView

    global urlpatterns
    urlpatterns = [path("ses/event-webhook/", SESEventWebhookView.as_view())]
    receivers = []
    for name in ("bounce_received", "complaint_received", "delivery_received", "send_received"):
        receiver = record(name)
        receivers.append(receiver)  # signals hold weak references
        getattr(signals, name).connect(receiver)
    server = make_server("127.0.0.1", 0, get_wsgi_application(), handler_class=_Quiet)
    print(server.server_port, flush=True)
    sys.stdout.close()
    server.serve_forever()


urlpatterns: list[object] = []

if __name__ == "__main__":
    main()
