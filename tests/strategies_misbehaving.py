"""Strategies that misbehave, for tests of how the harness survives them. They are importable
by the runner's worker processes as ``tests.strategies_misbehaving:<name>``.

Each one first sends one message properly, so the server has something to score, then does its
misdeed. With ``MISBEHAVING_ANNOUNCE`` set to a FIFO's path, a strategy that is about to hang
writes its process id (and that of any child it started) there, one per line, so a test knows
the moment to act and which processes must be gone afterwards.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence

from harness.base.clock import Clock
from harness.base.endpoint import Endpoint
from harness.runner.strategy import Claim, ClaimStatus, OutgoingMessage

ANNOUNCE = "MISBEHAVING_ANNOUNCE"


def _send_first(messages: Sequence[OutgoingMessage], endpoint: Endpoint) -> Claim:
    message = messages[0]
    with endpoint.connect() as client:
        client.sendmail(message.sender, list(message.recipients), message.data)
    return Claim(message.id, ClaimStatus.SENT)


def _announce(*pids: int) -> None:
    path = os.environ.get(ANNOUNCE)
    if path:
        with open(path, "w") as fifo:
            fifo.write("".join(f"{pid}\n" for pid in pids))


def _forever() -> None:
    threading.Event().wait()  # real time: the virtual clock would let this return at once


def raises(
    messages: Sequence[OutgoingMessage], endpoint: Endpoint, clock: Clock
) -> Iterator[Claim]:
    """Sends one message, then raises."""
    yield _send_first(messages, endpoint)
    raise ValueError("misbehaving on purpose")


def exits(messages: Sequence[OutgoingMessage], endpoint: Endpoint, clock: Clock) -> Iterator[Claim]:
    """Sends one message, then calls sys.exit(4)."""
    yield _send_first(messages, endpoint)
    sys.exit(4)


def hangs(messages: Sequence[OutgoingMessage], endpoint: Endpoint, clock: Clock) -> Iterator[Claim]:
    """Sends one message, then waits forever."""
    yield _send_first(messages, endpoint)
    _announce(os.getpid())
    _forever()


def hangs_with_child(
    messages: Sequence[OutgoingMessage], endpoint: Endpoint, clock: Clock
) -> Iterator[Claim]:
    """Sends one message, starts a child process that sleeps, then waits forever."""
    yield _send_first(messages, endpoint)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    _announce(os.getpid(), child.pid)
    _forever()


def exits_hard(
    messages: Sequence[OutgoingMessage], endpoint: Endpoint, clock: Clock
) -> Iterator[Claim]:
    """Sends one message, then ends its process at once with os._exit(3)."""
    yield _send_first(messages, endpoint)
    os._exit(3)


def kills_itself(
    messages: Sequence[OutgoingMessage], endpoint: Endpoint, clock: Clock
) -> Iterator[Claim]:
    """Sends one message, then sends SIGKILL to its own process."""
    yield _send_first(messages, endpoint)
    os.kill(os.getpid(), signal.SIGKILL)


#: The password `sends_credentials` logs in with; it must appear in no report.
SECRET = "misbehaving-Secr3t-pw"


def sends_credentials(
    messages: Sequence[OutgoingMessage], endpoint: Endpoint, clock: Clock
) -> Iterator[Claim]:
    """Logs in with a password the server never asked for (AUTH PLAIN and LOGIN), then sends
    the batch on that connection."""
    client = endpoint.connect()
    client.ehlo()
    plain = base64.b64encode(f"\0user\0{SECRET}".encode()).decode()
    client.docmd("AUTH", f"PLAIN {plain}")
    client.docmd("AUTH", f"LOGIN {base64.b64encode(b'user').decode()}")
    client.docmd(base64.b64encode(SECRET.encode()).decode())
    for message in messages:
        client.sendmail(message.sender, list(message.recipients), message.data)
        yield Claim(message.id, ClaimStatus.SENT)
    client.quit()
