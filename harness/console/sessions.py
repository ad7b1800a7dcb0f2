"""One session as the page shows it: the conversation command by command, each fault where it
was decided with the rule or limit behind it, and the messages the session delivered.

`GET /api/sessions/{number}` (the session's fields, its transcript, and `conversation`).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from harness.base.ledger import FaultRecord
from harness.base.records import TranscriptLine, line_json
from harness.console.api import STORE_KEY, ConsoleError, path_number, reply
from harness.console.inbox import INBOX_KEY
from harness.console.steering import STEERING_KEY
from harness.console.views import message_json, session_json


def routes() -> list[web.AbstractRouteDef]:
    return [web.get("/api/sessions/{number}", get_session)]


async def get_session(request: web.Request) -> web.Response:
    inbox = request.app[INBOX_KEY]
    steering = request.app[STEERING_KEY]
    number = path_number(request, "number")
    ledger = inbox.ses.ledger
    session = ledger.session(number)
    if session is None:
        raise ConsoleError(404, f"no session {number}")
    faults = ledger.faults
    plans = steering.plans()
    where = {id(fault): index for index, fault in enumerate(faults)}
    conversation: list[dict[str, Any]] = []
    for item in session.conversation():
        if isinstance(item, TranscriptLine):
            conversation.append({"kind": "line", **line_json(item)})
        elif isinstance(item, FaultRecord):
            index = where.get(id(item))
            plan = plans[index] if index is not None and index < len(plans) else steering.in_force
            conversation.append(
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
            conversation.append({"kind": "gap", "lines": item})
    store = request.app[STORE_KEY]
    restored = store.restored if store is not None else 0
    delivered = [
        message_json(m, restored=False)
        for m in inbox.visible()
        if m.session == number and m.sequence > restored
    ]
    return reply({**session_json(session), "conversation": conversation, "messages": delivered})
