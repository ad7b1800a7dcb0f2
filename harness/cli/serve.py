"""`ses-harness serve`: a fake SES server for manual testing, with a live log, an HTTP API and a
live web page. Ctrl-C (or SIGTERM) prints a summary and exits 0.

The last banner line is machine-readable, for scripts and tests that start the server with
`--port 0 --api-port 0`::

    READY {"smtp_host": "127.0.0.1", "smtp_port": 40123, "api_url": "http://127.0.0.1:40124", ...}
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import secrets
import signal
import sys
import tomllib
import urllib.parse
from pathlib import Path
from typing import Any

from harness.base.endpoint import TlsMode
from harness.base.ledger import FaultRecord, Ledger, LedgerSink, MessageRecord, SessionRecord
from harness.base.profile_file import load_profile_file
from harness.cli.events_args import add_events_arguments, events_banner, events_options
from harness.console.app import create_app
from harness.console.http import ApiServer
from harness.console.livelog import LiveLog, describe_limits, describe_rule, first_limit
from harness.console.printer import Printer
from harness.console.sessions import TRANSCRIPT_LINES
from harness.console.store import Store
from harness.console.template_files import load_templates
from harness.core.errors import PlanError
from harness.core.plan import Plan, Rule
from harness.core.profiles import PROFILES
from harness.server.fake_ses import FakeSES

NAME = "serve"
HELP = "Run a fake SES SMTP server with a live log, an HTTP API and a live web page."
READY = "READY"
EPILOG = """\
Every option is also an environment variable, SES_HARNESS_<OPTION>: --api-port is
SES_HARNESS_API_PORT; --fault, --limit and --allow-host take one value per line. The command
line wins over a variable (docs/container.md).
"""
#: Where the API token comes from when --api-token is not given (it stays out of `ps`).
TOKEN_ENV = "SES_HARNESS_API_TOKEN"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=list(PROFILES), help="default: ses, or the plan's")
    parser.add_argument(
        "--profile-file", metavar="FILE", help="your own provider: a TOML profile (see --profile)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=_port, default=2525, help="SMTP port, 0 for any (2525)")
    parser.add_argument(
        "--seed", type=int, help="seed for every random decision (default: 0, or the plan's)"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="a fault rule, e.g. stage=RCPT,first=2,action=reply,code=451,text=Later (repeatable)",
    )
    parser.add_argument("--plan", metavar="FILE", help="a plan file (TOML or JSON)")
    parser.add_argument(
        "--limit",
        action="append",
        default=[],
        type=_limit,
        metavar="KEY=VALUE",
        help="override a limit, e.g. session_limit=3 or rate_per_s=none (repeatable)",
    )
    tls = parser.add_mutually_exclusive_group()
    tls.add_argument("--tls", action="store_true", help="implicit TLS (smtps) with a test CA")
    tls.add_argument("--starttls", action="store_true", help="offer STARTTLS with a test CA")
    parser.add_argument(
        "--auth", type=_credentials, metavar="USER:PASS", help="require AUTH PLAIN/LOGIN"
    )
    parser.add_argument("--store", metavar="DIR", help="keep the ledger and messages in DIR")
    parser.add_argument(
        "--templates",
        metavar="FILE_OR_DIR",
        help="stored SES templates: a JSON file as `aws sesv2 create-email-template "
        "--cli-input-json` takes (or a list of them), or a directory of such *.json files",
    )
    parser.add_argument(
        "--aws-credentials",
        type=_credentials,
        metavar="KEY:SECRET",
        help="verify the SES API's AWS signatures with this access key (default: any "
        "well-formed signature; needs the aws extra)",
    )
    parser.add_argument(
        "--aws-region",
        default="us-east-1",
        metavar="REGION",
        help="the region SES API signatures must be scoped to (us-east-1)",
    )
    parser.add_argument(
        "--api-token",
        metavar="TOKEN",
        help=f"require this token on every API request (default: ${TOKEN_ENV}, if set); the SES "
        "API then requires signatures made with it as the secret key, unless --aws-credentials",
    )
    add_events_arguments(parser)
    parser.add_argument(
        "--api-port", type=_port, default=8025, help="HTTP API and live page port, 0 for any (8025)"
    )
    parser.add_argument(
        "--api-host",
        default="127.0.0.1",
        metavar="ADDRESS",
        help="address the HTTP API and live page listen on (127.0.0.1); 0.0.0.0 lets a "
        "container's neighbours read it, and any address but loopback requires a token",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name the API and page answer to, besides IP addresses and localhost "
        "(repeatable); requests naming any other host are refused (DNS rebinding)",
    )
    parser.set_defaults(server_factory=FakeSES, banner=banner)  # `proxy` gives its own


def main(args: argparse.Namespace) -> int:
    plan = build_plan(args)
    args.templates = load_templates(args.templates) if args.templates else {}
    warning = exposure_warning(args.host, args.api_host)
    if warning:
        print(f"ses-harness: warning: {warning}", file=sys.stderr)
    printer = Printer(sys.stdout)
    log = LiveLog(printer)
    store = None
    lines = TRANSCRIPT_LINES  # a long session whole, for the page
    ledger = Ledger(sink=log, transcript_limit_lines=lines)
    if args.store:
        try:
            store = Store(args.store)
            ledger = Ledger(sink=_Sinks(store, log), transcript_limit_lines=lines)
            ledger.restore(store.load_messages())
        except (OSError, ValueError) as error:
            print(f"ses-harness: --store {args.store}: {error}", file=sys.stderr)
            return 2
    try:
        return asyncio.run(_serve(args, plan, ledger, log, store))
    except OSError as error:
        print(f"ses-harness: cannot listen: {error}", file=sys.stderr)
        return 1
    finally:
        if store is not None:
            store.close()
        printer.close()
        if printer.gone:  # nothing may reach stdout at exit: its reader left
            _quiet_stdout()


def build_plan(args: argparse.Namespace) -> Plan:
    """The plan file (if any), then the flags on top of it."""
    base = load_plan_file(args.plan) if args.plan else Plan()
    rules = []
    for spec in args.fault:
        try:
            rules.append(Rule.from_spec(spec))
        except PlanError as error:
            raise error.within(source=f"--fault {spec!r}") from None
    try:
        return Plan(
            profile=load_profile_file(args.profile_file)
            if args.profile_file
            else args.profile or base.profile,
            seed=base.seed if args.seed is None else args.seed,
            limits={**base.limits, **dict(args.limit)},
            faults=base.faults + tuple(rules),
        )
    except PlanError as error:
        raise error.within(source="--limit" if args.limit else args.plan) from None


def load_plan_file(path: str) -> Plan:
    """A plan from a .toml or .json file, in the Plan schema; errors name the file."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".toml", ".json"):
        raise PlanError(
            "", f"unknown plan file type {suffix!r}", allowed=".toml, .json", source=path
        )
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = tomllib.loads(text) if suffix == ".toml" else json.loads(text, parse_constant=_nan)
    except OSError as error:
        raise PlanError("", f"cannot read: {error.strerror}", source=path) from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise PlanError("", f"not valid {suffix[1:].upper()}: {error}", source=path) from None
    except UnicodeDecodeError as error:
        raise PlanError(
            "", f"not UTF-8 text: {error.reason} at byte {error.start}", source=path
        ) from None
    except RecursionError:
        raise PlanError("", "nested too deeply to be a plan", source=path) from None
    except ValueError as error:  # JSON's NaN and Infinity, an integer of 4,300 digits or more
        raise PlanError("", f"not a plan: {error}", source=path) from None
    return Plan.from_dict(data, source=path)


def exposure_warning(host: str, api_host: str = "127.0.0.1") -> str | None:
    """What to tell the user before listening on `host` (SMTP) and `api_host` (the HTTP API):
    None when both are loopback addresses."""
    if is_loopback(host) and is_loopback(api_host):
        return None
    if is_loopback(api_host):
        return (
            f"listening on {host}, not loopback: other machines can reach this server and its "
            f"mail. The HTTP API stays on {api_host}."
        )
    smtp = "" if is_loopback(host) else f"SMTP on {host} and "
    return (
        f"listening with {smtp}the HTTP API on {api_host}, not loopback: other machines can "
        "reach the API and its mail; it requires a token (--api-token, or the one printed)."
    )


def api_token(args: argparse.Namespace) -> str | None:
    """The token the API requires: --api-token, else $SES_HARNESS_API_TOKEN, else one made up
    when the server listens anywhere but loopback (other machines could reach it), else none.
    """
    given = args.api_token or os.environ.get(TOKEN_ENV)
    if given:
        return given
    hosts = (args.host, getattr(args, "api_host", "127.0.0.1"))
    if all(is_loopback(host) for host in hosts):
        return None
    return secrets.token_urlsafe(18)


def allowed_hosts(args: argparse.Namespace) -> tuple[str, ...]:
    """Names the API answers to besides IP addresses and localhost: --allow-host, and the
    name the API is bound to if it was given by name."""
    names = list(args.allow_host)
    api_host = getattr(args, "api_host", "127.0.0.1")
    if not _is_ip(api_host):
        names.append(api_host)
    return tuple(names)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Sinks:
    """Several LedgerSinks in order: the store before the log, so what is shown is on disk."""

    def __init__(self, *sinks: LedgerSink) -> None:
        self.sinks = sinks

    def session(self, record: SessionRecord) -> None:
        for sink in self.sinks:
            sink.session(record)

    def message(self, record: MessageRecord, data: bytes) -> None:
        for sink in self.sinks:
            sink.message(record, data)

    def fault(self, record: FaultRecord) -> None:
        for sink in self.sinks:
            sink.fault(record)


async def _serve(
    args: argparse.Namespace, plan: Plan, ledger: Ledger, log: LiveLog, store: Store | None
) -> int:
    tls = TlsMode.IMPLICIT if args.tls else TlsMode.STARTTLS if args.starttls else TlsMode.NONE
    token = api_token(args)
    ses = args.server_factory(
        plan=plan,
        host=args.host,
        port=args.port,
        tls=tls,
        auth=args.auth,
        ledger=ledger,
        api=False,  # the SES API answers on the HTTP port, beside /api/
        aws_credentials=args.aws_credentials,
        # SDKs cannot send the token's header: the token is their secret key instead.
        api_token=token,
        region=args.aws_region,
        **events_options(args),
        templates=args.templates,
    )
    # Ids unique to this run: a client's store or an SES log of an earlier run keeps them.
    ses.id_salt = secrets.token_hex(8)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    app = create_app(ses, store, token=token, allowed_hosts=allowed_hosts(args), log=log)
    ses.mount_api(app)
    async with ses, ApiServer(app, host=args.api_host, port=args.api_port) as api:
        for line in args.banner(ses, api.url, store, token):
            log.say(line)
        await stop.wait()
    restored = store.restored if store is not None else 0
    log.say("\n".join(["", "stopped.", *log.summary(restored)]))
    return 0


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush finds no broken pipe."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def banner(ses: FakeSES, api_url: str, store: Store | None, token: str | None = None) -> list[str]:
    """How to connect, what is switched on, and the machine-readable READY line.

    With an API token, the live page's URL carries it (the page keeps it for its API calls);
    the token is shown on that line only.
    """
    endpoint = ses.endpoint
    plan = ses.plan
    tls = {
        TlsMode.NONE: "no TLS (an app set up for SES's STARTTLS: --starttls)",
        TlsMode.STARTTLS: "STARTTLS offered (AUTH only after it)",
        TlsMode.IMPLICIT: "implicit TLS (smtps)",
    }[endpoint.tls]
    lines = [
        f"ses-harness serve: fake Amazon SES, profile {plan.profile_name}, seed {plan.seed}",
        f"  SMTP      {endpoint.host}:{endpoint.port}  {endpoint.url}  {tls}",
    ]
    if endpoint.ca_file:
        lines.append(f"  CA file   {endpoint.ca_file}  (trust this in your client)")
    if endpoint.username is not None:
        lines.append(f"  AUTH      user {endpoint.username!r}, the password given to --auth")
    described = describe_limits(plan.resolved_limits(), plan.resolved_profile().replies)
    lines.append(f"  limits    {'; '.join(described)}")
    if (first := first_limit(plan.resolved_limits())) is not None:
        lines.append(f"  first     {first}")
    if plan.profile_name == "ses":  # AWS publishes no default quotas but the sandbox's
        lines.append(
            "  account   the rate and daily quota are example settings: set your account's "
            "(--limit rate_per_s=N --limit daily_quota=N)"
        )
    for rule in plan.faults:
        lines.append(f"  fault     {describe_rule(rule)}")
    if ses.templates:
        names = ", ".join(list(ses.templates)[:5]) + (", ..." if len(ses.templates) > 5 else "")
        lines.append(f"  templates {len(ses.templates)} stored: {names}")
    if store is not None:
        lines.append(
            f"  store     {store.directory}  ({store.restored} messages from earlier runs)"
        )
    if token is None:
        lines.append(f"  API       {api_url}/api/messages  (docs/http-api.md)")
        lines.append(f"  live page {api_url}/")
    else:
        lines.append(
            f"  API       {api_url}/api/messages  with 'Authorization: Bearer <token>' "
            "(docs/http-api.md)"
        )
        lines.append(f"  live page {api_url}/?token={urllib.parse.quote(token, safe='')}")
    if ses.aws_credentials:
        signing = "signatures verified with --aws-credentials"
    elif ses.api_token:
        signing = "sign with the API token as the secret key, any key id"
    else:
        signing = "any well-formed signature"
    lines.append(
        f"  SES API   {api_url}  (endpoint_url for boto3 sesv2/ses, AWS SDKs; region "
        f"{ses.region}; {signing})"
    )
    lines += [*events_banner(ses), "Ctrl-C prints a summary and stops."]
    ready: dict[str, Any] = {
        "smtp_host": endpoint.host,
        "smtp_port": endpoint.port,
        "tls": endpoint.tls.value,
        "ca_file": endpoint.ca_file,
        "api_url": api_url,
    }
    lines.append(f"{READY} {json.dumps(ready)}")
    return lines


#: How a fast sender meets each limit (`Limits.first_met`), for the banner.


def _limit(text: str) -> tuple[str, Any]:
    """KEY=VALUE with a TOML value (3, 1.5, true, ["@a.com"]); `none` switches a limit off."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    raw = raw.strip()
    if raw.lower() in ("none", "off"):
        return key.strip(), None
    try:
        value = tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word: a string
    return key.strip(), value


def _nan(constant: str) -> None:
    raise ValueError(f"{constant} is not a JSON value")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to 65535, got {text!r}")
    return port


def _credentials(text: str) -> tuple[str, str]:
    user, sep, password = text.partition(":")
    if not sep or not user:
        raise argparse.ArgumentTypeError("expected USER:PASS")
    return user, password
