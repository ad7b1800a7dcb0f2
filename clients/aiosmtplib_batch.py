"""aiosmtplib as an async application uses it: one connection (`async with SMTP(...)`),
`sendmail` per message, a failed message logged and the batch carried on.

The idiom is aiosmtplib's documentation (https://aiosmtplib.readthedocs.io/, "Usage": connect
with `async with SMTP(hostname=..., port=...) as smtp:` and call `smtp.sendmail(...)` on it).
"""

from __future__ import annotations

import asyncio

import aiosmtplib

from harness import client


async def main() -> None:
    server = client.server()
    claims = client.Claims()
    smtp = aiosmtplib.SMTP(
        hostname=server.host,
        port=server.port,
        username=server.user,
        password=server.password,
        use_tls=server.tls == "implicit",
        start_tls=server.tls == "starttls",
        cert_bundle=server.ca_file,
    )
    async with smtp:
        for message in client.batch():
            try:
                await smtp.sendmail(message.sender, message.recipients, message.data)
            except (aiosmtplib.SMTPException, OSError) as error:
                claims.failed(message, error)
            else:
                claims.sent(message)


if __name__ == "__main__":
    asyncio.run(main())
