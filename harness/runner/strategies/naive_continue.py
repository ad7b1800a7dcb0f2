"""`naive-continue`: one connection for the whole batch; a failed message is skipped.

Better than stopping, until the server hangs up: the connection is never reopened, so after
SES's 421 (or its idle 451) every remaining message fails.
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
    client = smtplib.SMTP()  # not connected yet: the first send connects it
    connected = False
    try:
        for message in messages:
            try:
                if not connected:
                    connected = True  # one connection per batch, however it ends
                    client = endpoint.connect()
                client.sendmail(message.sender, list(message.recipients), message.data)
            except (smtplib.SMTPException, OSError) as error:
                yield failed(message, error)
                continue
            yield Claim(message.id, ClaimStatus.SENT)
    finally:
        quit_quietly(client)
