"""`ses-harness proxy --upstream HOST:PORT`: `serve`'s plan, page, API and ledger in front of a
real SMTP server. What the plan lets through is relayed and the upstream's reply goes back;
limits and rules answer the client without relaying. `--record FILE` writes the upstream's
side of every session for `ses-harness profile-check`."""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import Any

from harness.base.endpoint import TlsMode
from harness.cli import serve
from harness.server.relay.proxy import SesProxy
from harness.server.relay.upstream import UpstreamConfig

NAME = "proxy"
HELP = "Put the fake SES's plan (limits, faults) in front of a real SMTP server."
EPILOG = """examples:
  ses-harness proxy --upstream 127.0.0.1:1025 --port 2525
  ses-harness proxy --upstream smtp.example.com:587 --upstream-tls starttls \\
      --upstream-auth "$USER:$PASS" --record upstream.jsonl
  ses-harness profile-check upstream.jsonl --profile ses
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--upstream", required=True, metavar="HOST:PORT", help="the SMTP server to relay to"
    )
    parser.add_argument(
        "--upstream-tls",
        choices=[mode.value for mode in TlsMode],
        default="none",
        help="TLS toward the upstream: none, starttls (required) or implicit (default: none)",
    )
    parser.add_argument(
        "--upstream-ca", metavar="FILE", help="trust this CA for the upstream's certificate"
    )
    parser.add_argument(
        "--upstream-insecure",
        action="store_true",
        help="do not verify the upstream's certificate (a test server's own)",
    )
    parser.add_argument(
        "--upstream-auth",
        type=serve._credentials,
        metavar="USER:PASS",
        help="log in to the upstream as the proxy (default: relay the client's AUTH)",
    )
    parser.add_argument(
        "--upstream-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for the upstream at each step (60)",
    )
    parser.add_argument(
        "--record", metavar="FILE", help="write the upstream's side of every session to FILE"
    )
    serve.add_arguments(parser)


def main(args: argparse.Namespace) -> int:
    try:
        config = UpstreamConfig.parse(
            args.upstream,
            tls=TlsMode(args.upstream_tls),
            verify=not args.upstream_insecure,
            ca_file=args.upstream_ca,
            credentials=args.upstream_auth,
            timeout_s=args.upstream_timeout,
        )
    except ValueError as error:
        print(f"ses-harness proxy: --upstream: {error}", file=sys.stderr)
        return 2
    if args.record:
        try:
            Path(args.record).touch()  # fail now, not at the first client
        except OSError as error:
            print(f"ses-harness proxy: --record {args.record}: {error.strerror}", file=sys.stderr)
            return 2
    args.server_factory = functools.partial(SesProxy, config, record=args.record)
    args.banner = banner
    return serve.main(args)


def banner(proxy: SesProxy, api_url: str, store: Any, token: str | None = None) -> list[str]:
    """`serve`'s banner, for a proxy: its title, where it relays, and no SES API (it relays
    SMTP only)."""
    lines = serve.banner(proxy, api_url, store, token)
    plan = proxy.plan
    title = f"ses-harness proxy: profile {plan.profile}'s plan, seed {plan.seed}"
    kept = [line for line in lines[2:] if not line.startswith("  SES API ")]
    return [title, lines[1], *(f"  {line}" for line in proxy.describe()), *kept]
