"""aiosmtpd handler hooks: the EHLO lines of the profile (end of data is the session's own)."""

from __future__ import annotations

import inspect
from typing import Any

from harness.core.profiles import Replies


class SesHandler:
    """Duck-typed aiosmtpd handler. The protocol (`server`) owns every decision."""

    def __init__(self, replies: Replies) -> None:
        self.replies = replies

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        lines = [responses[0]]
        last = f"250 {self.replies.ehlo_last}"
        for line in responses[1:-1]:
            if line[4:].upper() == self.replies.ehlo_last.upper():
                continue  # said last, once
            if line.startswith("250-SIZE") and not self.replies.advertise_size:
                continue
            if line.startswith("250-AUTH "):
                # SES lists PLAIN first; aiosmtpd sorts alphabetically.
                methods = line[len("250-AUTH ") :].split()
                line = "250-AUTH " + " ".join(sorted(methods, key=lambda m: m != "PLAIN"))
            lines.append(line)
        lines.append(last)
        return lines

    def __dir__(self) -> list[str]:
        # aiosmtpd's SMTP.__init__ looks for hooks with dir() and inspect.getmembers() on
        # every new connection: only the hooks, not every dunder of the class.
        return list(_HOOKS)


_HOOKS = ("handle_EHLO",)
# aiosmtpd also reads handle_EHLO's signature on every new connection; inspect returns a
# function's __signature__ when it has one instead of working it out again.
SesHandler.handle_EHLO.__signature__ = inspect.signature(SesHandler.handle_EHLO)  # type: ignore[attr-defined]
