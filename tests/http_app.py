"""The HTTP API in process, for its tests: a fake SES and the app in one event loop, and the
mail to send it with a real SMTP client."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from typing import Any

import aiosmtplib
from aiohttp.test_utils import TestClient, TestServer

from harness import FakeSES
from harness.console.app import create_app

JSON = {"Content-Type": "application/json"}  # what every state-changing request must say

Scenario = Callable[[FakeSES, TestClient], Awaitable[None]]


def mail(number: int, subject: str = "", to: str = "rcpt@example.com", html: str = "") -> bytes:
    """Message `number` (its Message-ID is <mN@example.com>); with `html`, an alternative and a
    PNG attachment too."""
    message = EmailMessage()
    message["From"] = "sender@example.com"
    message["To"] = to
    message["Subject"] = subject or f"Message {number}"
    message["Message-ID"] = f"<m{number}@example.com>"
    message.set_content(f"Body of message {number}.\n")
    if html:
        message.add_alternative(html, subtype="html")
        message.add_attachment(b"\x00\x01", maintype="image", subtype="png", filename="a.png")
    return message.as_bytes().replace(b"\n", b"\r\n")


async def send(ses: FakeSES, *messages: bytes, to: str = "rcpt@example.com") -> None:
    async with aiosmtplib.SMTP(hostname=ses.host, port=ses.port) as client:
        for data in messages:
            await client.sendmail("sender@example.com", [to], data)


def run(scenario: Scenario, *, caps: tuple[int, int] | None = None, **server: Any) -> None:
    """Start a fake SES (plain profile unless told) with its API in one loop, run `scenario`;
    `caps`: the most event streams and long-polls the API holds (create_app's)."""

    async def main() -> None:
        ses = FakeSES(**{"profile": "plain", **server})
        app = create_app(ses) if caps is None else create_app(ses, caps=caps)
        async with ses, TestClient(TestServer(app)) as client:
            await scenario(ses, client)

    asyncio.run(main())


async def get(client: TestClient, path: str, status: int = 200) -> Any:
    """GET `path`, expect `status` and a JSON answer, and return it."""
    response = await client.get(path)
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    return await response.json()
