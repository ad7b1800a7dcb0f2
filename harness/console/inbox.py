"""The messages of the HTTP API: list, search with paging, wait for, read part by part, delete.

Deleting is the page's tidying, not the server's forgetting: a deleted message leaves the API's
lists and views, while the ledger (what scoring and `fake_ses` read) and the store keep it. A
restarted `serve --store DIR` shows it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from aiohttp import web

from harness.base.ledger import MessageRecord, decoded
from harness.console import mime, preview
from harness.console.api import (
    SES_KEY,
    STORE_KEY,
    ConsoleError,
    path_number,
    reply,
    seconds,
    whole,
)
from harness.console.events import EventHub
from harness.console.search import Haystacks, MessageQuery, QueryError, TextCache
from harness.console.views import message_json
from harness.console.waits import MAX_WAITS, Waits

#: `?wait=N` gives up after `timeout` seconds: 30 unless told, 300 at most.
WAIT_DEFAULT_S = 30.0
WAIT_MOST_S = 300.0
#: What a part served on its own may do: nothing. The page frames HTML bodies from this URL,
#: and a body opened on its own is sandboxed all the same: no script, no remote loads.
PART_CSP = (
    "sandbox; default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'; "
    "font-src data:; frame-ancestors 'self'"
)


#: Messages are taken apart in one thread beside the loop, one at a time. The work is bounded
#: before it starts (`mime.too_complex`) but can still take a fifth of a second of parsing,
#: which the loop, and SMTP on it, should not wait for.
PARSER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ses-harness-mime")
#: Message views that may wait for the parser at once; more are refused (503, Retry-After).
PARSES_WAITING = 8

T = TypeVar("T")


class Inbox:
    """The API's view of the messages: which were deleted, and the text a search reads."""

    def __init__(self, app: web.Application, hub: EventHub, *, max_waits: int = MAX_WAITS) -> None:
        self.app = app
        self.hub = hub
        self.waits = Waits(self._matches, max_waits=max_waits)
        hub.listeners.append(self.waits.on_ledger)
        self.deleted: set[int] = set()
        self.deleted_through = 0  # every sequence up to this one is deleted ("delete all")
        self.texts = TextCache(self._searchable)
        self.haystacks = Haystacks()
        self.parsing = 0  # views waiting for (or in) the parser
        #: The list's snippet and attachment count, by sequence (with the body's sha256).
        self.summaries: dict[int, tuple[str, dict[str, Any]]] = {}

    @property
    def ses(self) -> Any:
        return self.app[SES_KEY]

    def restored(self) -> int:
        store = self.app[STORE_KEY]
        return store.restored if store is not None else 0

    def visible(self) -> list[MessageRecord]:
        messages = self.ses.ledger.messages
        through = self.deleted_through
        if through:
            messages = messages[through:]
        if self.deleted:
            messages = [m for m in messages if m.sequence not in self.deleted]
        return messages

    def is_deleted(self, sequence: int) -> bool:
        return sequence <= self.deleted_through or sequence in self.deleted

    def cleared(self) -> None:
        """The ledger was reset: sequence numbers start again, nothing is deleted."""
        self.deleted.clear()
        self.deleted_through = 0
        self.texts.clear()
        self.haystacks.clear()
        self.summaries.clear()

    async def summarize(self, records: list[MessageRecord]) -> dict[int, dict[str, Any]]:
        """The snippet and attachment count of each of `records` (a page of the list), taken
        apart once each and kept (at most SUMMARIES_KEPT; a body no longer held has none)."""
        held = self.summaries
        missing = [
            (r.sequence, r.sha256, data)
            for r in records
            if held.get(r.sequence, ("",))[0] != r.sha256 and (data := self.body(r)) is not None
        ]
        if missing:
            found = await self.parsed(_summaries, missing)
            for sequence, sha256, _ in missing:
                held[sequence] = (sha256, found[sequence])
            while len(held) > SUMMARIES_KEPT:
                del held[next(iter(held))]
        empty = {"snippet": None, "attachments": None}
        return {r.sequence: held.get(r.sequence, ("", empty))[1] for r in records}

    def body(self, record: MessageRecord) -> bytes | None:
        if record.data is not None:
            return record.data
        store = self.app[STORE_KEY]
        return store.read_eml(record.sequence) if store is not None else None

    def _searchable(self, record: MessageRecord) -> str:
        data = self.body(record)
        return mime.searchable_text(data) if data is not None else ""

    def _matches(self, query: MessageQuery, record: MessageRecord) -> bool:
        return query.matches(record, self.texts, self.haystacks)

    def find(self, query: MessageQuery) -> list[MessageRecord]:
        """The visible messages that match, oldest first."""
        messages = self.visible()
        if query.empty:
            return messages
        return [m for m in messages if query.matches(m, self.texts, self.haystacks)]

    async def parsed(self, parse: Callable[..., T], *args: Any) -> T:
        """`parse(*args)` run in the parser's thread; a 503 when too many views wait for it."""
        if self.parsing >= PARSES_WAITING:
            raise ConsoleError(
                503,
                f"{self.parsing} message views are waiting to be taken apart: try again shortly",
                retry_after_s=1,
            )
        self.parsing += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(PARSER, parse, *args)
        finally:
            self.parsing -= 1


INBOX_KEY = web.AppKey("inbox", Inbox)
#: Summaries the inbox keeps (a few pages' worth of a large store, and all of a small one).
SUMMARIES_KEPT = 10_000


def _summaries(items: list[tuple[int, str, bytes]]) -> dict[int, dict[str, Any]]:
    return {sequence: preview.summary(data) for sequence, _, data in items}


def routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/api/messages", list_messages),
        web.delete("/api/messages", delete_all),
        web.get("/api/messages/{sequence}", get_message),
        web.delete("/api/messages/{sequence}", delete_message),
        web.get("/api/messages/{sequence}/raw", get_raw),
        web.get("/api/messages/{sequence}/html", get_html),
        web.get("/api/messages/{sequence}/parts/{part}", get_part),
    ]


# --- lists -------------------------------------------------------------------------------


def _query(request: web.Request) -> MessageQuery:
    try:
        return MessageQuery.parse(request.query.get("q", ""), request.query)
    except QueryError as error:
        raise ConsoleError(400, str(error)) from None


def _page(request: web.Request, matches: list[MessageRecord]) -> list[MessageRecord]:
    """`order=newest` pages from the newest (`offset`, `limit`); the default order is oldest
    first, where `limit=N` keeps the newest N (as before paging existed) after `offset`."""
    order = request.query.get("order", "oldest")
    if order not in ("oldest", "newest"):
        raise ConsoleError(400, f"order must be oldest or newest, got {order!r}")
    offset = whole(request, "offset", default=0) or 0
    limit = whole(request, "limit")
    if order == "newest":
        matches = matches[::-1][offset:]
        return matches if limit is None else matches[:limit]
    matches = matches[offset:]
    return matches if limit is None else matches[max(0, len(matches) - limit) :]


async def list_messages(request: web.Request) -> web.Response:
    """Oldest first, filtered by `q` and the search keys, paged; `?wait=N` holds the answer
    until N messages match (408 at `timeout`)."""
    inbox = request.app[INBOX_KEY]
    query = _query(request)
    since = whole(request, "since")
    wanted = whole(request, "wait")
    timeout_s = seconds(request, "timeout", default=WAIT_DEFAULT_S, most=WAIT_MOST_S)

    def matching() -> list[MessageRecord]:
        found = inbox.find(query)
        return found if since is None else [m for m in found if m.sequence > since]

    matches = matching()
    if wanted is not None and len(matches) < wanted:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(matches) < wanted:
            # While it waits, a request holds a count, not its list: 500 waits each holding a
            # list of 200,000 messages made every garbage collection walk 100 million
            # references. It is woken when enough new messages match (see
            # harness.console.waits), never by a timer.
            need, matches = wanted - len(matches), []
            left = deadline - loop.time()
            woken = left > 0 and await inbox.waits.wait(query, need, left)
            matches = matching()
            if not woken and len(matches) < wanted:
                raise ConsoleError(
                    408,
                    f"{len(matches)} of {wanted} matching messages after {timeout_s:g} s",
                    matching=len(matches),
                    wanted=wanted,
                )
    restored = inbox.restored()
    page = _page(request, matches)
    out = [message_json(m, restored=m.sequence <= restored) for m in page]
    if request.query.get("summary") in ("1", "true", "yes"):
        try:
            summaries = await inbox.summarize(page)
        except ConsoleError:  # the parser is busy (503): the list comes without its summaries
            summaries = {}
        for item in out:
            item.update(summaries.get(item["sequence"], {"snippet": None, "attachments": None}))
    return reply(out, headers={"X-Total-Count": str(len(matches))})


# --- one message -------------------------------------------------------------------------


def _message(request: web.Request) -> MessageRecord:
    inbox = request.app[INBOX_KEY]
    sequence = path_number(request, "sequence")
    messages = inbox.ses.ledger.messages
    if not 1 <= sequence <= len(messages):
        raise ConsoleError(404, f"no message {sequence}", messages=len(messages))
    if inbox.is_deleted(sequence):
        raise ConsoleError(404, f"message {sequence} was deleted")
    return messages[sequence - 1]


def _body(request: web.Request, record: MessageRecord) -> bytes:
    data = request.app[INBOX_KEY].body(record)
    if data is None:
        raise ConsoleError(
            410,
            f"the body of message {record.sequence} is not kept: the in-memory budget was spent",
            hint="start the server with --store DIR to keep every body on disk",
        )
    return data


async def get_message(request: web.Request) -> web.Response:
    """The message with its headers and, when its body is kept, its bodies and parts."""
    inbox = request.app[INBOX_KEY]
    record = _message(request)
    out = message_json(record, restored=record.sequence <= inbox.restored(), headers=True)
    # RFC 2047 words decoded, for the Headers tab to show beside the raw values.
    out["headers_decoded"] = [[key, decoded(value)] for key, value in record.headers]
    data = inbox.body(record)
    if data is None:
        out["body"] = None
        out["body_missing"] = "not kept: the in-memory budget was spent (use --store DIR)"
        return reply(out)
    body = await inbox.parsed(mime.describe, data)
    for part in body["parts"]:
        part["url"] = f"/api/messages/{record.sequence}/parts/{part['index']}"
    out["body"] = body
    return reply(out)


async def get_raw(request: web.Request) -> web.Response:
    record = _message(request)
    return web.Response(
        body=_body(request, record),
        content_type="message/rfc822",
        headers={
            "Content-Disposition": f'inline; filename="{record.sequence:06d}.eml"',
            "X-Content-Type-Options": "nosniff",
        },
    )


async def get_html(request: web.Request) -> web.Response:
    """The HTML body as the page frames it: its inline (cid:) images as data: URLs, under the
    policy every part is served with (no script, nothing remote)."""
    record = _message(request)
    try:
        html = await request.app[INBOX_KEY].parsed(preview.inline_html, _body(request, record))
    except mime.TooComplex as error:
        raise ConsoleError(422, f"message {record.sequence} is not taken apart: {error}") from None
    if html is None:
        raise ConsoleError(404, f"message {record.sequence} has no HTML body")
    headers = {"Content-Security-Policy": PART_CSP, "X-Frame-Options": "SAMEORIGIN"}
    return web.Response(text=html, content_type="text/html", headers=headers)


async def get_part(request: web.Request) -> web.Response:
    """One leaf part, decoded; `?download=1` as an attachment with its file name."""
    record = _message(request)
    number = path_number(request, "part")
    try:
        found = await request.app[INBOX_KEY].parsed(mime.part, _body(request, record), number)
    except mime.TooComplex as error:
        raise ConsoleError(
            422,
            f"message {record.sequence} is not taken apart: {error}",
            raw_url=f"/api/messages/{record.sequence}/raw",
        ) from None
    if found is None:
        raise ConsoleError(404, f"message {record.sequence} has no leaf part {number}")
    part, content = found
    headers = {
        "Content-Security-Policy": PART_CSP,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "SAMEORIGIN",  # the page may frame it; no other site may
    }
    if request.query.get("download") in ("1", "true", "yes"):
        name = part.filename or f"message-{record.sequence}-part-{number}"
        safe = "".join(c if c.isalnum() or c in "._- " else "_" for c in name)
        headers["Content-Disposition"] = f'attachment; filename="{safe}"'
    return web.Response(
        body=content,
        content_type=part.content_type,
        charset=part.charset if part.content_type.startswith("text/") else None,
        headers=headers,
    )


# --- deleting ----------------------------------------------------------------------------


async def delete_message(request: web.Request) -> web.Response:
    inbox = request.app[INBOX_KEY]
    record = _message(request)
    inbox.deleted.add(record.sequence)
    inbox.hub.publish({"type": "deleted", "sequences": [record.sequence]})
    return reply({"status": 200, "deleted": [record.sequence]})


async def delete_all(request: web.Request) -> web.Response:
    inbox = request.app[INBOX_KEY]
    count = len(inbox.visible())
    inbox.deleted_through = len(inbox.ses.ledger.messages)
    inbox.deleted = {s for s in inbox.deleted if s > inbox.deleted_through}
    inbox.hub.publish({"type": "deleted", "all": True})
    return reply({"status": 200, "deleted": count})
