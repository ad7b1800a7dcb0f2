"""One session as the page shows it: the conversation command by command, each fault where it
was decided with the rule or limit behind it, each end of data with the message it carried,
and the messages the session delivered.

`GET /api/sessions/{number}` (the session's fields, its transcript, and `conversation`: for a
long session its start and its end, with a `more` item standing for the middle) and
`GET /api/sessions/{number}/conversation?offset=N&limit=M` (any part of it, paged).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from harness.base.ledger import EOM, FaultRecord, SessionRecord
from harness.base.records import ClientLine, TranscriptLine, line_json
from harness.console.api import STORE_KEY, ConsoleError, path_number, reply, whole
from harness.console.inbox import INBOX_KEY
from harness.console.steering import STEERING_KEY
from harness.console.views import message_json, session_json

#: How many transcript lines serve keeps of each session (the ledger's default is 2,000): a
#: session of 350 messages is about 2,500 lines, and the page can show every one of them.
TRANSCRIPT_LINES = 10_000
#: A conversation longer than this is sent as its first and last SHOWN items and a `more`.
CUT_ITEMS = 1_000
SHOWN = 400
#: The most items one `/conversation` page holds.
PAGE_MOST = 1_000


def routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/api/sessions/{number}", get_session),
        web.get("/api/sessions/{number}/conversation", get_conversation),
    ]


def _session(request: web.Request) -> SessionRecord:
    number = path_number(request, "number")
    session = request.app[INBOX_KEY].ses.ledger.session(number)
    if session is None:
        raise ConsoleError(404, f"no session {number}")
    return session


def _restored(request: web.Request) -> int:
    store = request.app[STORE_KEY]
    return store.restored if store is not None else 0


def conversation(request: web.Request, session: SessionRecord) -> list[dict[str, Any]]:
    """The whole conversation, each fault with why it fired and each end of data with the
    sequence of the message it carried (`carried`)."""
    inbox = request.app[INBOX_KEY]
    steering = request.app[STEERING_KEY]
    faults = inbox.ses.ledger.faults
    plans = steering.plans()
    where = {id(fault): index for index, fault in enumerate(faults)}
    restored = _restored(request)
    carried = {
        m.command: m.sequence
        for m in inbox.visible()
        if m.session == session.number and m.sequence > restored and m.command is not None
    }
    out: list[dict[str, Any]] = []
    for item in session.conversation():
        if isinstance(item, TranscriptLine):
            line = {"kind": "line", **line_json(item)}
            if isinstance(item, ClientLine) and item.verb == EOM and item.number in carried:
                line["carried"] = carried[item.number]  # the message it carried
            out.append(line)
        elif isinstance(item, FaultRecord):
            index = where.get(id(item))
            plan = plans[index] if index is not None and index < len(plans) else steering.in_force
            out.append(
                {
                    "kind": "fault",
                    "index": None if index is None else index + 1,
                    "session": item.session,
                    "command": item.command,
                    "stage": item.stage,
                    "source": item.source,
                    "name": item.name,
                    "action": item.action,
                    "reply": item.reply,
                    "at": item.at,
                    "rule_index": item.rule_index,
                    "why": steering.why(item, plan),
                }
            )
        else:
            out.append({"kind": "gap", "lines": item})
    return out


async def get_session(request: web.Request) -> web.Response:
    """The session; `?conversation=all` sends a long conversation whole, not cut."""
    inbox = request.app[INBOX_KEY]
    session = _session(request)
    items = conversation(request, session)
    # Where each fault is in the whole conversation: the page jumps there, loading the middle.
    faults = [
        {"position": n, "index": item["index"], "name": item["name"], "stage": item["stage"]}
        for n, item in enumerate(items)
        if item["kind"] == "fault"
    ]
    shown = items
    if len(items) > CUT_ITEMS and request.query.get("conversation") != "all":
        middle = {"kind": "more", "offset": SHOWN, "count": len(items) - 2 * SHOWN}
        shown = [*items[:SHOWN], middle, *items[-SHOWN:]]
    restored = _restored(request)
    delivered = [
        message_json(m, restored=False)
        for m in inbox.visible()
        if m.session == session.number and m.sequence > restored
    ]
    return reply(
        {
            **session_json(session),
            "conversation": shown,
            "conversation_total": len(items),
            "faults": faults,
            "messages": delivered,
        }
    )


async def get_conversation(request: web.Request) -> web.Response:
    """`limit` items (at most PAGE_MOST, default 500) of the conversation from `offset`."""
    items = conversation(request, _session(request))
    offset = whole(request, "offset", default=0) or 0
    limit = min(whole(request, "limit", default=500) or 0, PAGE_MOST)
    return reply({"offset": offset, "total": len(items), "items": items[offset : offset + limit]})
