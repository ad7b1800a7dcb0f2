"""SES's events over the HTTP API (docs/events.md): what SES has published about the mail
(``GET /api/ses-events``), every post to an SNS subscriber (``GET /api/ses-events/deliveries``)
and the account's suppression list (``GET /api/suppression``).
"""

from __future__ import annotations

from aiohttp import web

from harness.base.sesevents import iso
from harness.console.api import SES_KEY, ConsoleError, reply, whole

KINDS = ("Send", "Reject", "Delivery", "DeliveryDelay", "Bounce", "Complaint")


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/ses-events", list_events),
        web.get("/api/ses-events/deliveries", list_deliveries),
        web.get("/api/suppression", list_suppressed),
    ]


async def list_events(request: web.Request) -> web.Response:
    """Events published so far, oldest first; ``?kind=Bounce`` keeps one kind,
    ``?message_id=...`` one message's, ``?pending=1`` those still to come too, ``?since=N``
    those after the N-th."""
    kind = request.query.get("kind")
    if kind is not None and kind not in KINDS:
        raise ConsoleError(400, f"query parameter 'kind' must be one of {', '.join(KINDS)}")
    pending = request.query.get("pending", "0")
    if pending not in ("0", "1"):
        raise ConsoleError(400, "query parameter 'pending' must be 0 or 1")
    since = whole(request, "since", default=0) or 0
    message_id = request.query.get("message_id")
    ses = request.app[SES_KEY]
    events = [
        e.to_dict()
        for e in ses.events_hub.events(pending=pending == "1")
        if e.sequence > since
        and (kind is None or e.kind == kind)
        and (message_id is None or e.ses_id == message_id)
    ]
    return reply({"events": events, "count": len(events), "sns_url": ses.sns_url})


async def list_deliveries(request: web.Request) -> web.Response:
    """Every post to an SNS subscriber (the events URL included): its attempt, status, time."""
    ses = request.app[SES_KEY]
    subscriptions = [
        {
            "url": s.url,
            "topic_arn": s.topic_arn,
            "subscription_arn": s.arn,
            "confirmed": s.confirmed,
            "signature_version": s.signature_version,
            "form": s.form,
        }
        for s in ses.events_hub.subscriptions
    ]
    attempts = [a.to_dict() for a in ses.event_deliveries]
    return reply({"subscriptions": subscriptions, "deliveries": attempts})


async def list_suppressed(request: web.Request) -> web.Response:
    """The account-level suppression list now (oldest update first) and the account's reasons
    for adding addresses itself."""
    ses = request.app[SES_KEY]
    entries = [
        {
            "address": e.address,
            "reason": e.reason,
            "at": e.at,
            "timestamp": iso(e.at),
            "message_id": e.message_id,
            "feedback_id": e.feedback_id,
        }
        for e in ses.suppressed
    ]
    reasons = list(ses.suppression_reasons)
    return reply({"suppressed": entries, "count": len(entries), "suppressed_reasons": reasons})
