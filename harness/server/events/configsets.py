"""Configuration sets and their event destinations: which events go to which SNS topic.

A message names a configuration set with ``ConfigurationSetName`` (API) or the
``X-SES-CONFIGURATION-SET`` header (SMTP); each enabled destination of that set publishes the
event types it matches, in the event publishing form, to its SNS topic (AWS SES DG, "Creating
Amazon SES event destinations"; sesv2 model: ``EventDestinationDefinition`` with
``Enabled``, ``MatchingEventTypes``, ``SnsDestination.TopicArn``: documented). Only SNS
destinations deliver here; others are kept and listed, and publish nothing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

#: sesv2's EventType values (botocore data/sesv2 model: documented), by our kind names.
EVENT_TYPES = {
    "Send": "SEND",
    "Reject": "REJECT",
    "Bounce": "BOUNCE",
    "Complaint": "COMPLAINT",
    "Delivery": "DELIVERY",
    "Open": "OPEN",
    "Click": "CLICK",
    "RenderingFailure": "RENDERING_FAILURE",
    "DeliveryDelay": "DELIVERY_DELAY",
    "Subscription": "SUBSCRIPTION",
}
_DESTINATION_KINDS = (
    "KinesisFirehoseDestination",
    "CloudWatchDestination",
    "SnsDestination",
    "EventBridgeDestination",
    "PinpointDestination",
)


class ConfigError(Exception):
    """A request the v2 API refuses: `kind` names the error ("not_found", "already_exists",
    "bad_request"), the message its text."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass
class Destination:
    name: str
    definition: dict[str, Any]

    @property
    def enabled(self) -> bool:
        return bool(self.definition.get("Enabled", False))

    @property
    def topic_arn(self) -> str | None:
        sns = self.definition.get("SnsDestination")
        return sns.get("TopicArn") if isinstance(sns, dict) else None

    def matches(self, kind: str) -> bool:
        return EVENT_TYPES.get(kind, "") in self.definition.get("MatchingEventTypes", ())

    def to_api(self) -> dict[str, Any]:
        return {"Name": self.name, **self.definition}


@dataclass
class ConfigurationSet:
    name: str
    options: dict[str, Any] = field(default_factory=dict)
    destinations: dict[str, Destination] = field(default_factory=dict)


class ConfigurationSets:
    """The account's configuration sets (thread-safe: the API writes, the event hub reads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sets: dict[str, ConfigurationSet] = {}

    def create(self, name: object, options: dict[str, Any]) -> None:
        name = _name(name, "ConfigurationSetName")
        with self._lock:
            if name in self._sets:
                raise ConfigError("already_exists", f"Configuration set <{name}> already exists.")
            self._sets[name] = ConfigurationSet(name, options)

    def get(self, name: str) -> ConfigurationSet:
        with self._lock:
            found = self._sets.get(name)
        if found is None:
            raise ConfigError("not_found", f"Configuration set <{name}> does not exist.")
        return found

    def exists(self, name: str) -> bool:
        with self._lock:
            return name in self._sets

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._sets)

    def delete(self, name: str) -> None:
        with self._lock:
            if self._sets.pop(name, None) is None:
                raise ConfigError("not_found", f"Configuration set <{name}> does not exist.")

    def put_destination(
        self, set_name: str, name: object, definition: object, *, create: bool
    ) -> None:
        name = _name(name, "EventDestinationName")
        if not isinstance(definition, dict):
            raise ConfigError("bad_request", "EventDestination is required and is an object.")
        _check_definition(definition)
        config = self.get(set_name)
        with self._lock:
            if create and name in config.destinations:
                raise ConfigError(
                    "already_exists",
                    f"Event destination {name} already exists in configuration set {set_name}.",
                )
            if not create and name not in config.destinations:
                raise ConfigError(
                    "not_found",
                    f"Event destination {name} does not exist in configuration set {set_name}.",
                )
            merged = {} if create else dict(config.destinations[name].definition)
            merged.update(definition)
            config.destinations[name] = Destination(name, merged)

    def delete_destination(self, set_name: str, name: str) -> None:
        config = self.get(set_name)
        with self._lock:
            if config.destinations.pop(name, None) is None:
                raise ConfigError(
                    "not_found",
                    f"Event destination {name} does not exist in configuration set {set_name}.",
                )

    def topics_for(self, set_name: str | None, kind: str) -> set[str]:
        """The SNS topics an event of `kind` about a message in `set_name` is published to."""
        if set_name is None:
            return set()
        with self._lock:
            config = self._sets.get(set_name)
            if config is None:
                return set()
            return {
                d.topic_arn
                for d in config.destinations.values()
                if d.enabled and d.topic_arn and d.matches(kind)
            }

    def clear(self) -> None:
        with self._lock:
            self._sets.clear()


def _name(value: object, field_name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError("bad_request", f"{field_name} is required and is a string.")
    if len(value) > 64 or not all(c.isalnum() or c in "-_" for c in value):
        raise ConfigError(
            "bad_request",
            f"{field_name} {value!r}: up to 64 letters, digits, '_' and '-'.",
        )
    return value


def _check_definition(definition: dict[str, Any]) -> None:
    types = definition.get("MatchingEventTypes", [])
    if not isinstance(types, list) or any(t not in EVENT_TYPES.values() for t in types):
        allowed = ", ".join(EVENT_TYPES.values())
        raise ConfigError("bad_request", f"MatchingEventTypes: a list of {allowed}.")
    if "Enabled" in definition and not isinstance(definition["Enabled"], bool):
        raise ConfigError("bad_request", "Enabled is a boolean.")
    sns = definition.get("SnsDestination")
    if sns is not None and (not isinstance(sns, dict) or not isinstance(sns.get("TopicArn"), str)):
        raise ConfigError("bad_request", "SnsDestination.TopicArn is required and is a string.")
    unknown = set(definition) - {"Enabled", "MatchingEventTypes", *_DESTINATION_KINDS}
    if unknown:
        raise ConfigError("bad_request", f"EventDestination has no field {sorted(unknown)[0]}.")
