"""``serve``'s options for SES's events (docs/events.md): where to post them, and how signed."""

from __future__ import annotations

import argparse
import json
from typing import Any

from harness.core.errors import PlanError
from harness.core.snspolicy import DeliveryPolicy


def add_events_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--events-url",
        type=_events_url,
        metavar="URL",
        help="post every message's SES events (Send, Delivery, Bounce, Complaint) to URL as "
        "Amazon SNS posts to an HTTP subscriber (docs/events.md)",
    )
    parser.add_argument(
        "--events-signature",
        choices=("1", "2", "none"),
        default="1",
        help="SNS SignatureVersion of those posts: 1 (SHA1, SNS's default), 2 (SHA256), none",
    )
    parser.add_argument(
        "--events-policy",
        type=_events_policy,
        metavar="JSON",
        help="SNS's delivery policy for those posts, in SNS's own JSON, e.g. "
        '\'{"healthyRetryPolicy": {"numRetries": 10, "minDelayTarget": 5}}\' '
        "(default: SNS's, 3 retries 20 s apart; docs/events.md)",
    )


def events_options(args: argparse.Namespace) -> dict[str, Any]:
    """FakeSES's keywords for the options given."""
    signature = None if args.events_signature == "none" else args.events_signature
    return {
        "events_url": args.events_url,
        "events_signature": signature,
        "events_policy": args.events_policy,
    }


def events_banner(ses: Any) -> list[str]:
    """The banner's lines for the events' subscribers (a `FakeSES`)."""
    return [f"  events    {s.url}  (SNS; docs/events.md)" for s in ses.events_hub.subscriptions]


def _events_url(value: str) -> str:
    if not value.startswith(("http://", "https://")) or value[-3:] == "://":
        raise argparse.ArgumentTypeError(f"an http:// or https:// URL, got {value!r}")
    return value


def _events_policy(value: str) -> DeliveryPolicy:
    try:
        policy = json.loads(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"SNS's delivery policy as JSON, got {value!r}") from None
    if not isinstance(policy, dict):
        raise argparse.ArgumentTypeError(f"a JSON object, got {value!r}")
    try:
        return DeliveryPolicy.from_sns(policy)
    except (PlanError, TypeError) as error:
        raise argparse.ArgumentTypeError(str(error)) from None
