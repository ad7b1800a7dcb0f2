"""`retry-same-session`: one connection; a failed message is tried again on it, whatever the error.

Good against refusals that leave the session usable (greylisting, a random 451). Useless once
the server has hung up, and careless about 5xx: it repeats refusals that will never change.
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterator, Sequence

from harness.base.clock import Clock
from harness.base.endpoint import Endpoint
from harness.runner.strategies.session import failed, quit_quietly
from harness.runner.strategy import Claim, ClaimStatus, OutgoingMessage

ATTEMPTS = 3
PAUSE_S = 1.0


def send_batch(
    messages: Sequence[OutgoingMessage],
    endpoint: Endpoint,
    clock: Clock,
    *,
    attempts: int = ATTEMPTS,
    pause_s: float = PAUSE_S,
) -> Iterator[Claim]:
    client = smtplib.SMTP()  # not connected yet: the first send connects it
    connected = False
    try:
        for message in messages:
            for attempt in range(1, attempts + 1):
                try:
                    if not connected:
                        connected = True  # one connection per batch, however it ends
                        client = endpoint.connect()
                    client.sendmail(message.sender, list(message.recipients), message.data)
                except (smtplib.SMTPException, OSError) as error:
                    if attempt == attempts:
                        yield failed(message, error)
                    else:
                        clock.sleep(pause_s)
                    continue
                yield Claim(message.id, ClaimStatus.SENT)
                break
    finally:
        quit_quietly(client)
