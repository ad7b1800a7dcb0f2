"""`naive`: one connection for the whole batch, stop at the first error.

This is the application that broke in November 2024: it reuses one SMTP connection for every
message, so SES's 421 after 350 messages ends the batch. It reports honestly: the message that
failed is claimed failed and the rest were never attempted.
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterator, Sequence

from harness.base.clock import Clock
from harness.base.endpoint import Endpoint
from harness.runner.strategies.session import failed, quit_quietly
from harness.runner.strategy import Claim, ClaimStatus, OutgoingMessage


def send_batch(
    messages: Sequence[OutgoingMessage], endpoint: Endpoint, clock: Clock
) -> Iterator[Claim]:
    client: smtplib.SMTP | None = None
    try:
        for message in messages:
            try:
                if client is None:
                    client = endpoint.connect()
                client.sendmail(message.sender, list(message.recipients), message.data)
            except (smtplib.SMTPException, OSError) as error:
                yield failed(message, error)
                return
            yield Claim(message.id, ClaimStatus.SENT)
    finally:
        if client is not None:
            quit_quietly(client)
