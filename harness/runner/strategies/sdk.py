"""Strategies that send through boto3, the way applications on the SES API do.

An application on the API usually trusts the SDK: one call per message, the SDK's retry mode
deciding what to try again and when, and the result taken as the truth. These strategies do
exactly that, so the tournament shows what the SDK's retries buy and cost against SES's
limits and faults. Every wait of the SDK runs on the scenario's clock
(:mod:`harness.runner.sdk_clock`), so a virtual clock makes its backoff free.

boto3 is an extra (``pip install 'ses-fault-harness[aws]'``): without it these strategies are
left out of the default set (see :mod:`harness.runner.strategies`).
"""

from __future__ import annotations

import functools
import os
import random
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from harness.base.clock import Clock
from harness.base.endpoint import Endpoint
from harness.runner import sdk_clock
from harness.runner.strategy import Claim, ClaimStatus, OutgoingMessage, Strategy

#: Long enough for any answer of the fake; a stalled request is cut by it.
READ_TIMEOUT_S = 60.0


def available() -> bool:
    """True when boto3 can be imported (the ``aws`` extra is installed)."""
    try:
        import boto3  # noqa: F401
    except ImportError:
        return False
    return True


def client(endpoint: Endpoint, service: str, retries: dict[str, Any]) -> Any:
    """A boto3 client for the endpoint's SES API, nothing looked up anywhere else."""
    from botocore.config import Config

    if endpoint.api_url is None:
        raise RuntimeError("this server does not run the SES API (FakeSES(api=False)?)")
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    with _SESSION_LOCK:  # a boto3 session is not safe to share between threads unguarded
        return _session().client(
            service,
            endpoint_url=endpoint.api_url,
            region_name=endpoint.region,
            aws_access_key_id=endpoint.aws_access_key_id,
            aws_secret_access_key=endpoint.aws_secret_access_key,
            config=Config(retries=retries, read_timeout=READ_TIMEOUT_S, connect_timeout=10),
        )


_SESSION_LOCK = threading.Lock()


@functools.cache
def _session() -> Any:
    """One boto3 session for the process: a client from a new session loads the service's
    model files again (120 ms here), one from this session 4-5 ms. Each client still has its
    own retry configuration, rate limiter and connection pool."""
    import boto3

    return boto3.session.Session()


def _send_v2(api: Any, message: OutgoingMessage) -> None:
    api.send_email(
        FromEmailAddress=message.sender,
        Destination={"ToAddresses": list(message.recipients)},
        Content={"Raw": {"Data": message.data}},
    )


def _send_v1(api: Any, message: OutgoingMessage) -> None:
    api.send_raw_email(
        Source=message.sender,
        Destinations=list(message.recipients),
        RawMessage={"Data": message.data},
    )


def claim_for(message: OutgoingMessage, error: Exception) -> Claim:
    """What the application learns from the SDK's exception: the API's status and error, or
    the connection error when no answer came."""
    from botocore.exceptions import ClientError

    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        details = error.response.get("Error", {})
        text = f"{details.get('Code', '')}: {details.get('Message', '')}"
        return Claim(message.id, ClaimStatus.FAILED, status, text)
    return Claim(message.id, ClaimStatus.FAILED, None, f"{type(error).__name__}: {error}")


def strategy(service: str, retries: dict[str, Any]) -> Strategy:
    """A strategy that sends each message with one SDK call under the given retry config."""
    send: Callable[[Any, OutgoingMessage], None] = _send_v2 if service == "sesv2" else _send_v1

    def send_batch(
        messages: Sequence[OutgoingMessage], endpoint: Endpoint, clock: Clock
    ) -> Iterator[Claim]:
        from botocore.exceptions import BotoCoreError, ClientError

        # botocore draws its backoff jitter from the `random` module: seeded from the batch,
        # the same scenario gives the same retry schedule (cases run one per process at a
        # time); the caller's random state is given back at the end.
        outer = random.getstate()
        random.seed(zlib.crc32(messages[0].id.encode()) if len(messages) else 0)
        with sdk_clock.using(clock):
            api = client(endpoint, service, retries)
            try:
                for message in messages:
                    try:
                        send(api, message)
                    except (ClientError, BotoCoreError) as error:
                        yield claim_for(message, error)
                    else:
                        yield Claim(message.id, ClaimStatus.SENT)
            finally:
                api.close()
                random.setstate(outer)

    return send_batch
