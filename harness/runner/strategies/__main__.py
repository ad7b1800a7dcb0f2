"""A built-in strategy as a client process: ``python -m harness.runner.strategies NAME``.

The same logic as ``--strategy NAME``, run the way a user's own client runs
(``--strategy 'cmd:python -m harness.runner.strategies robust'``): the batch and the server from
the variables :mod:`harness.runner.command` sets, the claims written back as JSON lines, and
time on the process's own clock (which the harness runs at its scale through libfaketime). So
a scenario's timing can be checked with a client whose expectations are known.
"""

from __future__ import annotations

import sys

from harness.base.clock import RealClock
from harness.base.endpoint import Endpoint, TlsMode
from harness.runner.clientside import Claims, batch, server
from harness.runner.strategies import BUILTINS
from harness.runner.strategy import OutgoingMessage


def main(argv: list[str]) -> int:
    smtp = [name for name, b in BUILTINS.items() if not name.startswith("sdk-")]
    if len(argv) != 1 or argv[0] not in smtp:
        print(f"usage: python -m harness.runner.strategies {{{','.join(smtp)}}}", file=sys.stderr)
        return 2
    where = server()
    endpoint = Endpoint(
        where.host,
        where.port,
        TlsMode(where.tls),
        where.user,
        where.password,
        where.ca_file,
    )
    messages = [OutgoingMessage(m.id, m.sender, tuple(m.recipients), m.data) for m in batch()]
    claims = Claims()
    for claim in BUILTINS[argv[0]].send_batch(messages, endpoint, RealClock()):
        code = claim.reply_code if claim.reply_code and 200 <= claim.reply_code <= 599 else None
        claims.write(claim.message_id, claim.status.value, code, claim.reply_text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
