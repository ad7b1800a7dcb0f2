"""The SES API's answers on the wire: JSON for v2, XML for v1, each version's error format, and
the one line on stderr for a bug of ours."""

from __future__ import annotations

import sys
from typing import Any

from aiohttp import web

from harness.core import api_errors
from harness.core.api_errors import SesApiError
from harness.server.sesapi import v1, v2


def internal_failure(request: web.Request, error: Exception, version: str) -> SesApiError:
    """A bug of ours: one line on stderr, and SES's InternalFailure to the client."""
    problem = f"{type(error).__name__}: {error}"[:500]
    print(
        f"ses-harness: SES API error on {request.method} {request.path[:200]}: {problem}",
        file=sys.stderr,
    )
    return api_errors.error_for("internal", version, "An internal error occurred.")


def with_message_id(data: bytes, ses_id: str) -> bytes:
    """SES gives a message without a Message-ID its own: <ses id@email.amazonses.com>."""
    ends = [end for end in (data.find(b"\r\n\r\n"), data.find(b"\n\n")) if end >= 0]
    head = data[: min(ends, default=len(data))].lower()
    if head.startswith(b"message-id:") or b"\nmessage-id:" in head:
        return data
    return f"Message-ID: <{ses_id}@email.amazonses.com>\r\n".encode() + data


def json_answer(data: dict[str, Any], request_id: str) -> web.Response:
    return web.json_response(data, headers={"x-amzn-RequestId": request_id})


def xml_answer(body: bytes, request_id: str) -> web.Response:
    """A v1 answer; its header carries the request id as SES's do (and v2's, and v1's errors)."""
    return web.Response(
        body=body, content_type="text/xml", headers={"x-amzn-RequestId": request_id}
    )


def v2_error(error: SesApiError, request_id: str, *, close: bool = False) -> web.Response:
    response = web.Response(
        status=error.status, body=v2.error_body(error), headers=v2.error_headers(error, request_id)
    )
    if close:
        response.force_close()
    return response


def v1_error(error: SesApiError, request_id: str, *, close: bool = False) -> web.Response:
    response = web.Response(
        status=error.status,
        body=v1.error_body(error, request_id),
        content_type="text/xml",
        headers={"x-amzn-RequestId": request_id},
    )
    if close:
        response.force_close()
    return response
