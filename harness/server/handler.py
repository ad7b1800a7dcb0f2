"""aiosmtpd handler hooks: the EHLO lines of the profile, and end of data handed to the session."""

from __future__ import annotations

from typing import Any

from harness.profiles import Replies


class SesHandler:
    """Duck-typed aiosmtpd handler. The protocol (`server`) owns every decision."""

    def __init__(self, replies: Replies) -> None:
        self.replies = replies

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        lines = [responses[0]]
        for line in responses[1:-1]:
            if line.startswith("250-SIZE") and not self.replies.advertise_size:
                continue
            if line.startswith("250-AUTH "):
                # SES lists PLAIN first; aiosmtpd sorts alphabetically.
                methods = line[len("250-AUTH ") :].split()
                line = "250-AUTH " + " ".join(sorted(methods, key=lambda m: m != "PLAIN"))
            lines.append(line)
        lines.append(f"250 {self.replies.ehlo_last}")
        return lines

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return await server.end_of_message(envelope)
