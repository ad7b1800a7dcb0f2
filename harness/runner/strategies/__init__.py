"""The built-in client strategies, by name: each a small module you could lift into an app.

``BUILTINS[name].send_batch`` is a :data:`harness.runner.strategy.Strategy`. The order is the
order of reports: from the seed's application to the one that does everything right, then
the SES API strategies on boto3 (`sdk-*`).

The `sdk-*` strategies need boto3, an extra (``pip install 'ses-fault-harness[aws]'``). Without
it they are not in BUILTINS, so the default run after a plain install works as before;
:data:`UNAVAILABLE` says which were left out and why, for the one line the CLI prints.
"""

from __future__ import annotations

import importlib.util
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
    sdk_v1_legacy,
    sdk_v2_adaptive,
    sdk_v2_standard,
)
from harness.runner.strategy import Strategy


@dataclass(frozen=True)
class Builtin:
    name: str
    description: str
    send_batch: Strategy
    requires: str | None = None  # an importable module it needs (an extra), if any


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

SDK_BUILTINS = (
    Builtin(
        "sdk-v2-standard",
        "SES API v2 through boto3: one send_email per message, standard retry mode.",
        sdk_v2_standard.send_batch,
        requires="boto3",
    ),
    Builtin(
        "sdk-v2-adaptive",
        "SES API v2 through boto3: adaptive retry mode (client-side rate limiting).",
        sdk_v2_adaptive.send_batch,
        requires="boto3",
    ),
    Builtin(
        "sdk-v1-legacy",
        "SES API v1 through boto3: send_raw_email, legacy retries (5 attempts).",
        sdk_v1_legacy.send_batch,
        requires="boto3",
    ),
)

#: Built-ins left out because what they need is not installed: name -> how to get it.
UNAVAILABLE: dict[str, str] = {}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ValueError:  # sys.modules[module] is None: blocked on purpose
        return False


for _builtin in SDK_BUILTINS:
    if _builtin.requires and not _installed(_builtin.requires):
        UNAVAILABLE[_builtin.name] = (
            f"needs {_builtin.requires}: pip install 'ses-fault-harness[aws]'"
        )
    else:
        BUILTINS[_builtin.name] = _builtin
