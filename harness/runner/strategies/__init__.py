"""The built-in client strategies, by name: each a small module you could lift into an app.

``BUILTINS[name].send_batch`` is a :data:`harness.runner.strategy.Strategy`. The order is the
order of reports: from the seed's application to the one that does everything right.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.runner.strategies import (
    backoff,
    naive,
    naive_continue,
    paced,
    reconnect,
    retry_same_session,
    robust,
    rotate,
)
from harness.runner.strategy import Strategy


@dataclass(frozen=True)
class Builtin:
    name: str
    description: str
    send_batch: Strategy


BUILTINS: dict[str, Builtin] = {
    b.name: b
    for b in (
        Builtin("naive", "One connection, stops at the first error.", naive.send_batch),
        Builtin(
            "naive-continue",
            "One connection, skips failed messages, never reconnects.",
            naive_continue.send_batch,
        ),
        Builtin(
            "retry-same-session",
            "One connection, retries any failure up to 3 times on it.",
            retry_same_session.send_batch,
        ),
        Builtin(
            "reconnect",
            "Reconnects and resends at once on a 4xx or a lost connection.",
            reconnect.send_batch,
        ),
        Builtin("rotate", "A new connection every 300 messages; never resends.", rotate.send_batch),
        Builtin(
            "backoff",
            "Retries every failure after exponential waits with seeded jitter.",
            backoff.send_batch,
        ),
        Builtin(
            "paced",
            "Paces sends at 12 recipients/s, below SES's 14/s; never resends.",
            paced.send_batch,
        ),
        Builtin(
            "robust",
            "Paces, rotates, refreshes idle connections, backs off on 4xx, never retries a 5xx "
            "or resends after an ambiguous loss, stops when the daily quota is spent.",
            robust.send_batch,
        ),
    )
}
