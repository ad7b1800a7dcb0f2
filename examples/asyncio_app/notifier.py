"""An asyncio app's notifier: a worker on the app's loop drains a queue of mails with aiosmtplib,
and backs off on a temporary refusal, sleeping through a clock it is given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from email.message import EmailMessage

import aiosmtplib

BACKOFF_S = (5.0, 30.0, 300.0)


def notice(n: int) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "alerts@example.com"
    message["To"] = f"ops{n}@example.com"
    message["Subject"] = f"Alert {n}"
    message["Message-ID"] = f"<alert-{n}@example.com>"
    message.set_content(f"alert {n}")
    return message


async def worker(
    queue: asyncio.Queue[EmailMessage],
    host: str,
    port: int,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Send what arrives on `queue` until it is joined; retry a 4xx after each backoff step."""
    while True:
        message = await queue.get()
        try:
            for pause in (*BACKOFF_S, None):
                try:
                    await aiosmtplib.send(message, hostname=host, port=port, start_tls=False)
                    break
                except (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPResponseException):
                    if pause is None:
                        raise
                    await sleep(pause)
        finally:
            queue.task_done()
