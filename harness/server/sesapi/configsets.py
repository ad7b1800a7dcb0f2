"""The v2 API's configuration-set and event-destination operations (sesv2 model, botocore's
data/sesv2: paths, fields, errors; documented). The sets live in the event hub's
`ConfigurationSets`; only SNS destinations publish (`harness.server.events`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from harness.core import api_errors
from harness.core.api_errors import V2
from harness.server.events.configsets import ConfigError, ConfigurationSets
from harness.server.sesapi import responses, v2

SETS = "/v2/email/configuration-sets"
SET = SETS + "/{ConfigurationSetName}"
DESTINATIONS = SET + "/event-destinations"
DESTINATION = DESTINATIONS + "/{EventDestinationName}"
LIST = "/v2/email/list-configuration-sets"  # newer models list with a POST; older with GET SETS

Operation = Callable[[ConfigurationSets, dict[str, Any], web.Request], dict[str, Any]]


def _set_name(request: web.Request) -> str:
    return unquote(request.match_info["ConfigurationSetName"])


def create_set(
    sets: ConfigurationSets, body: dict[str, Any], request: web.Request
) -> dict[str, Any]:
    options = {k: v for k, v in body.items() if k != "ConfigurationSetName"}
    sets.create(body.get("ConfigurationSetName"), options)
    return {}


def get_set(sets: ConfigurationSets, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
    config = sets.get(_set_name(request))
    return {"ConfigurationSetName": config.name, **config.options}


def list_sets(
    sets: ConfigurationSets, body: dict[str, Any], request: web.Request
) -> dict[str, Any]:
    return {"ConfigurationSets": sets.names()}


def delete_set(
    sets: ConfigurationSets, body: dict[str, Any], request: web.Request
) -> dict[str, Any]:
    sets.delete(_set_name(request))
    return {}


def create_destination(
    sets: ConfigurationSets, body: dict[str, Any], request: web.Request
) -> dict[str, Any]:
    sets.put_destination(
        _set_name(request),
        body.get("EventDestinationName"),
        body.get("EventDestination"),
        create=True,
    )
    return {}


def get_destinations(
    sets: ConfigurationSets, body: dict[str, Any], request: web.Request
) -> dict[str, Any]:
    config = sets.get(_set_name(request))
    return {"EventDestinations": [d.to_api() for d in config.destinations.values()]}


def update_destination(
    sets: ConfigurationSets, body: dict[str, Any], request: web.Request
) -> dict[str, Any]:
    name = unquote(request.match_info["EventDestinationName"])
    sets.put_destination(_set_name(request), name, body.get("EventDestination"), create=False)
    return {}


def delete_destination(
    sets: ConfigurationSets, body: dict[str, Any], request: web.Request
) -> dict[str, Any]:
    sets.delete_destination(_set_name(request), unquote(request.match_info["EventDestinationName"]))
    return {}


#: Each operation by its name (sesv2 model).
OPERATIONS: dict[str, Operation] = {
    "CreateConfigurationSet": create_set,
    "ListConfigurationSets": list_sets,
    "GetConfigurationSet": get_set,
    "DeleteConfigurationSet": delete_set,
    "CreateConfigurationSetEventDestination": create_destination,
    "GetConfigurationSetEventDestinations": get_destinations,
    "UpdateConfigurationSetEventDestination": update_destination,
    "DeleteConfigurationSetEventDestination": delete_destination,
}
#: Their routes: method, path, operation (`harness.server.sesapi.mount`).
ROUTES = (
    ("POST", SETS, "CreateConfigurationSet"),
    ("GET", SETS, "ListConfigurationSets"),
    ("POST", LIST, "ListConfigurationSets"),
    ("GET", SET, "GetConfigurationSet"),
    ("DELETE", SET, "DeleteConfigurationSet"),
    ("POST", DESTINATIONS, "CreateConfigurationSetEventDestination"),
    ("GET", DESTINATIONS, "GetConfigurationSetEventDestinations"),
    ("PUT", DESTINATION, "UpdateConfigurationSetEventDestination"),
    ("DELETE", DESTINATION, "DeleteConfigurationSetEventDestination"),
)


def handler(
    operation: Operation, sets: Callable[[], ConfigurationSets | None]
) -> Callable[[bytes, str, web.Request], Awaitable[web.StreamResponse]]:
    """`operation` as the v2 handler wrapper calls it: the body's bytes in, its answer out (a
    refused request answered in v2's error format)."""

    async def run(body: bytes, request_id: str, request: web.Request) -> web.StreamResponse:
        current = sets()
        try:
            if current is None:
                raise ConfigError("not_found", "Configuration sets are not kept by this server.")
            data = v2.loads(body) if body.strip() else {}
            return responses.json_answer(operation(current, data, request), request_id)
        except ConfigError as refused:
            error = api_errors.error_for(refused.kind, V2, refused.message)
            return responses.v2_error(error, request_id)

    return run
