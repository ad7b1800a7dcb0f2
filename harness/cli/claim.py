"""`ses-harness claim`: write one claim for a client in any language, as the harness reads it.

A Node, Go or shell client can call it per message instead of writing JSON itself; a client
that sends many messages a second is better off appending the JSON line itself (one process per
claim costs tens of milliseconds). Appends to $HARNESS_CLAIMS unless --file says otherwise.
"""

from __future__ import annotations

import argparse
import os

NAME = "claim"
HELP = "Append one claim (what your client believes happened to a message) to HARNESS_CLAIMS."
EPILOG = """\
examples, from a client run as --strategy 'cmd:./send.sh':
  ses-harness claim '<20261201.1@app.example>' sent
  ses-harness claim '<20261201.2@app.example>' failed --code 421 --text 'Connection closed'

the line written (the same format a client may write itself):
  {"id": "<Message-ID>", "status": "sent"|"failed"|"uncertain"|"not_attempted",
   "code": 421, "text": "..."}
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from harness.runner.clientside import STATUSES

    parser.add_argument("message_id", metavar="MESSAGE_ID", help="the message's Message-ID")
    parser.add_argument("status", choices=STATUSES, help="what the client believes happened")
    parser.add_argument("--code", type=int, help="the SMTP reply code that decided a failure")
    parser.add_argument("--text", help="that reply's text")
    parser.add_argument(
        "--file", help="the claims file (default: $HARNESS_CLAIMS, set by the harness)"
    )


def main(args: argparse.Namespace) -> int:
    from harness.core.errors import PlanError
    from harness.runner.clientside import Claims

    path = args.file or os.environ.get("HARNESS_CLAIMS")
    if not path:
        raise PlanError(
            "", "no claims file: HARNESS_CLAIMS is not set", allowed="run by the harness, or --file"
        )
    try:
        Claims(path).write(args.message_id, args.status, args.code, args.text)
    except ValueError as error:
        raise PlanError("", str(error)) from None
    except OSError as error:
        raise PlanError("", f"cannot append: {error.strerror}", source=path) from None
    return 0
