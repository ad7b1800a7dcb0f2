"""Settling ambiguous sends from SES's events, as an application does.

A connection that died after the final "." leaves the client unsure: did SES keep the message?
SMTP cannot ask, but SES publishes a ``Send`` event for every message it accepted (and a
``Delivery`` or ``Bounce`` after it), naming the message's own headers. An application that
subscribed its configuration set's events (docs/events.md) reads them a little later: a message
with an event was kept, so claim it sent; one without was not, so sending it again cannot make
a duplicate. Scenarios that publish events say so (``events = true``) and give the client
``endpoint.events_url``, a JSON feed of the events published so far on the server's clock.
"""

from __future__ import annotations

import json
import urllib.request

from harness.base.endpoint import Endpoint

#: SES seconds a client waits after its last ambiguous send before reading the events: a Send
#: event is published at acceptance, a Delivery 2 s later; SNS delivers within seconds.
SETTLE_S = 10.0
KEPT = frozenset({"Send", "Delivery", "Bounce", "Complaint", "DeliveryDelay"})


def kept_message_ids(endpoint: Endpoint) -> set[str] | None:
    """The Message-IDs SES has published an event for (so it kept them), or None when the
    endpoint publishes no events."""
    if endpoint.events_url is None:
        return None
    with urllib.request.urlopen(endpoint.events_url, timeout=30) as response:
        feed = json.load(response)
    kept: set[str] = set()
    for event in feed["events"]:
        if event["kind"] not in KEPT:
            continue
        for header in event["event"]["mail"]["headers"]:
            if header["name"].lower() == "message-id":
                kept.add(header["value"].strip())
    return kept
