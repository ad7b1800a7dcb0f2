"""What the HTTP API's handler modules share: the app's keys, JSON answers and errors, and the
reading of query parameters.

It sits below `harness.console.app` so that the handler modules (inbox, live, steering) can raise
the same errors and read the same state without importing the app that registers them.
"""

from __future__ import annotations

import json
import math
from typing import Any

from aiohttp import web

from harness.console.store import Store
from harness.core.errors import PlanError
from harness.core.plan import Plan
from harness.server.fake_ses import FakeSES

SES_KEY = web.AppKey("ses", FakeSES)
STORE_KEY = web.AppKey("store", Store | None)
#: More digits than any count of messages, sessions or faults (and than int() takes from text).
MAX_DIGITS = 18


class ConsoleError(Exception):
    """An error of the console's HTTP API (docs/http-api.md), raised by a handler and answered
    as JSON: ``{"status": 404, "error": "...", ...details}``."""

    def __init__(
        self, status: int, error: str, *, retry_after_s: int | None = None, **details: Any
    ) -> None:
        super().__init__(error)
        self.status = status
        self.body = {"status": status, "error": error, **details}
        #: For a refusal that passes (a cap reached): the answer's Retry-After header.
        self.headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else {}


def reply(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """Every JSON answer of the API goes through here."""
    return web.json_response(
        data, status=status, headers=headers, dumps=lambda value: json.dumps(value, indent=1)
    )


def whole(request: web.Request, name: str, *, default: int | None = None) -> int | None:
    """A query parameter that must be a whole number >= 0; a 400 names it otherwise."""
    raw = request.query.get(name)
    if raw is None:
        return default
    if not _digits(raw):
        raise ConsoleError(
            400,
            f"query parameter {name!r} must be a whole number >= 0 of at most {MAX_DIGITS} "
            f"digits, got {_shown(raw)}",
        )
    return int(raw)


def seconds(request: web.Request, name: str, *, default: float, most: float) -> float:
    """A query parameter in seconds: a finite number from 0 to `most` (NaN and inf refused)."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 <= value <= most:
        raise ConsoleError(
            400,
            f"query parameter {name!r} must be a number of seconds from 0 to {most:g}, "
            f"got {_shown(raw)}",
        )
    return value


def path_number(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    if not _digits(raw):
        raise ConsoleError(
            404, f"{name} must be a whole number of at most {MAX_DIGITS} digits, got {_shown(raw)}"
        )
    return int(raw)


async def json_body(request: web.Request) -> Any:
    """The request's body as JSON; a 400 says what is wrong with it."""
    try:
        return json.loads(await request.read(), parse_constant=_not_json)
    except UnicodeDecodeError as error:
        raise ConsoleError(400, f"the body is not UTF-8 JSON: {error.reason}") from None
    except json.JSONDecodeError as error:
        raise ConsoleError(400, f"the body is not JSON: {error}") from None
    except RecursionError:
        raise ConsoleError(400, "the body is nested too deeply") from None
    except ValueError as error:  # an integer of more than 4,300 digits
        raise ConsoleError(400, f"the body is not usable JSON: {error}") from None


def plan_from(data: Any, source: str) -> Plan:
    """`data` as a plan; one that is not valid is a 400 naming the key, the problem and what is
    allowed (docs/http-api.md)."""
    try:
        return Plan.from_dict(data, source=source)
    except PlanError as error:
        raise ConsoleError(
            400, str(error), key=error.key, problem=error.problem, allowed=error.allowed
        ) from None


def _not_json(constant: str) -> None:
    # Python's json reads NaN and Infinity, which are not JSON and no number here may be.
    raise ConsoleError(400, f"the body is not JSON: {constant} is not a JSON value")


def _digits(raw: str) -> bool:
    """ASCII digits only, at most MAX_DIGITS of them: `str.isdigit` also takes '\\u00b2' (which
    int() refuses) and Arabic-Indic digits (which int() reads)."""
    return bool(raw) and len(raw) <= MAX_DIGITS and raw.isascii() and raw.isdigit()


def _shown(raw: str) -> str:
    """`raw` quoted for an error message, cut short: a 5,000-digit path is not echoed whole."""
    return repr(raw) if len(raw) <= 40 else f"{raw[:40]!r}... ({len(raw):,} characters)"
