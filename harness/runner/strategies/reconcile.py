"""Settling ambiguous sends from SES's events, and not mailing bounced addresses again, as an
application does.

A connection that died after the final "." leaves the client unsure: did SES keep the message?
SMTP cannot ask, but SES publishes a ``Send`` event for every message it accepted (and a
``Delivery`` or ``Bounce`` after it), naming the message's own headers. An application that
subscribed its configuration set's events (docs/events.md) reads them a little later: a message
with an event was kept, so claim it sent; one without was not, so sending it again cannot make
a duplicate. And an address that hard-bounced or complained is not mailed again (SES reviews
accounts whose bounce or complaint rates stay high). Scenarios that publish events say so
(``events = true``) and give the client ``endpoint.events_url``, a JSON feed of the events
published so far on the server's clock.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from harness.base.clock import Clock
from harness.base.endpoint import Endpoint

#: SES seconds a client waits after its last ambiguous send before reading the events: a Send
#: event is published at acceptance, a Delivery 2 s later; SNS delivers within seconds...
SETTLE_S = 10.0
#: ...unless the webhook was down: SNS then retries (3 times, 20 s apart by default, longer by
#: a subscription's policy), so a message without an event is read again every POLL_S until
#: SETTLE_MAX_S have passed; only then is it taken as not kept.
POLL_S = 60.0
SETTLE_MAX_S = 900.0
KEPT = frozenset({"Send", "Delivery", "Bounce", "Complaint", "DeliveryDelay"})


#: SES seconds between two readings of the events for bounced addresses.
CHECK_S = 60.0


def read_events(endpoint: Endpoint) -> list[dict[str, Any]]:
    """The events published so far (each ``{"kind", "event", ...}``); none without a feed."""
    if endpoint.events_url is None:
        return []
    try:
        with urllib.request.urlopen(endpoint.events_url, timeout=30) as response:
            return list(json.load(response)["events"])
    except (OSError, ValueError):  # unreachable or garbled: no news, read again later
        return []


def kept_message_ids(endpoint: Endpoint) -> set[str] | None:
    """The Message-IDs SES has published an event for (so it kept them), or None when the
    endpoint publishes no events."""
    if endpoint.events_url is None:
        return None
    kept: set[str] = set()
    for event in read_events(endpoint):
        if event["kind"] not in KEPT:
            continue
        for header in event["event"]["mail"]["headers"]:
            if header["name"].lower() == "message-id":
                kept.add(header["value"].strip())
    return kept


def settle(endpoint: Endpoint, clock: Clock, ids: set[str]) -> set[str]:
    """Which of `ids` SES kept, read from the events: after SETTLE_S, then every POLL_S until
    each has an event or SETTLE_MAX_S have passed. An event read twice counts once."""
    kept: set[str] = set()
    waited = 0.0
    while waited < SETTLE_MAX_S:
        step = SETTLE_S if waited == 0 else POLL_S
        clock.sleep(step)
        waited += step
        kept |= (kept_message_ids(endpoint) or set()) & ids
        if kept == ids:
            break
    return kept


class Suppressions:
    """The addresses SES reported as hard-bounced or complaining, read again every CHECK_S."""

    def __init__(self, endpoint: Endpoint, clock: Clock) -> None:
        self.endpoint = endpoint
        self.clock = clock
        self.addresses: set[str] = set()
        self._read_at: float | None = None

    def blocks(self, recipients: tuple[str, ...]) -> bool:
        """True when every one of `recipients` bounced or complained already."""
        if self.endpoint.events_url is None or not recipients:
            return False
        now = self.clock.now()
        if self._read_at is None or now - self._read_at >= CHECK_S:
            self._read_at = now
            self.addresses |= _bad_addresses(read_events(self.endpoint))
        return all(r.lower() in self.addresses for r in recipients)


def _bad_addresses(events: list[dict[str, Any]]) -> set[str]:
    bad = set()
    for event in events:
        body = event["event"]
        if event["kind"] == "Bounce" and body["bounce"]["bounceType"] == "Permanent":
            bad |= {r["emailAddress"].lower() for r in body["bounce"]["bouncedRecipients"]}
        elif event["kind"] == "Complaint":
            bad |= {r["emailAddress"].lower() for r in body["complaint"]["complainedRecipients"]}
    return bad
