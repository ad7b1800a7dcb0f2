"""A request's connection, as the SES API handles it: its body read within a cap, and the two
ways a fault ends it without an answer (a cut, a stall)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from harness.server.sesapi.requests import BadRequest

#: Request bodies above this are refused unread: a 40 MB message in base64, with room.
MAX_BODY_BYTES = 60 * 1024 * 1024
#: How often a stalled request looks whether its client has gone.
STALL_POLL_S = 0.05


class Cut(Exception):
    """The connection was cut on purpose: nothing is to be written."""


async def read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise BadRequest(f"The request body is over {MAX_BODY_BYTES} bytes.")
    chunks, size = [], 0
    while chunk := await request.content.read(1 << 16):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BadRequest(f"The request body is over {MAX_BODY_BYTES} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def abort(request: web.Request) -> Any:
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise Cut


def gone(request: web.Request) -> bool:
    """Whether the request's connection is cut (by a fault, or by its client)."""
    return request.transport is None or request.transport.is_closing()


async def stall(request: web.Request, stall_s: float | None) -> None:
    """Never answer: until the client gives up, or `stall_s` real seconds and then a cut."""
    if stall_s is not None:
        await asyncio.sleep(stall_s)
        abort(request)
    while not gone(request):
        await asyncio.sleep(STALL_POLL_S)
    raise Cut
