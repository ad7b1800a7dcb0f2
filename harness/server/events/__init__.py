"""SES's asynchronous side: events published about accepted messages, delivered as Amazon SNS
delivers to HTTP(S) subscribers (`hub`, `sns`, `signing`, `delivery`, `endpoint`), and the
configuration sets that route them (`configsets`)."""

from harness.server.events.configsets import ConfigurationSets
from harness.server.events.delivery import Attempt, DeliveryPolicy
from harness.server.events.hub import EventHub
from harness.server.events.signing import verify
from harness.server.events.sns import Subscription

__all__ = [
    "Attempt",
    "ConfigurationSets",
    "DeliveryPolicy",
    "EventHub",
    "Subscription",
    "verify",
]
