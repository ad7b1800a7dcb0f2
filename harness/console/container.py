"""`FakeSESContainer`: the image (Containerfile) as a Testcontainers module, for tests in Python
that start the fake SES in a container and drive it from the test: faults, limits, the ledger
and delivered-once assertions, the SES API. Needs testcontainers (the `testcontainers` extra).

>>> with FakeSESContainer("ses-harness", profile="plain") as ses:       # doctest: +SKIP
...     host, port = ses.smtp_address
...     ses.remote.set_plan({"faults": [{"stage": "DATA", "nth": 1, "action": "drop"}]})
...     send_the_batch(host, port)                          # the mailer under test
...     ses.remote.assert_delivered_once(["<order-1@shop.example>"])

It waits on `GET /readyz` (SMTP, the HTTP API and the SES API all accepting). With
`host_network=True` it binds 127.0.0.1 on ports of this machine instead of publishing ports
(for engines, like rootful podman in a sandbox, whose container networks cannot be used).
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterable, Mapping
from typing import Any

from harness.console.remote import RemoteFakeSES

try:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import HttpWaitStrategy
except ImportError as missing:  # pragma: no cover - the extra is not installed
    raise ImportError(
        "FakeSESContainer needs testcontainers: pip install 'ses-fault-harness[testcontainers]'"
    ) from missing

SMTP_PORT = 1025
API_PORT = 8025
#: The key id SDK clients sign with; the container's API token is the secret key.
ACCESS_KEY_ID = "AKIDSESHARNESS"


class FakeSESContainer(DockerContainer):  # type: ignore[misc]
    """`ses-harness serve` in a container, ready when started.

    `profile`, `limits` (``{"session_limit": 3, "rate_per_s": None}``) and `faults` (fault
    specs as `--fault` takes them) become its SES_HARNESS_* variables; `token` is the API token
    (a new one by default), which is also the SES API's secret key. Other keywords go to
    testcontainers' `DockerContainer`.
    """

    def __init__(
        self,
        image: str = "ses-harness",
        *,
        profile: str | None = None,
        limits: Mapping[str, Any] | None = None,
        faults: Iterable[str] = (),
        token: str | None = None,
        host_network: bool = False,
        startup_timeout_s: float = 60.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(image, **kwargs)
        self.token = token or secrets.token_urlsafe(18)
        self.host_network = host_network
        self.with_env("SES_HARNESS_API_TOKEN", self.token)
        if profile is not None:
            self.with_env("SES_HARNESS_PROFILE", profile)
        if limits:
            lines = (f"{key}={'none' if v is None else _toml(v)}" for key, v in limits.items())
            self.with_env("SES_HARNESS_LIMIT", "\n".join(lines))
        if faults:
            self.with_env("SES_HARNESS_FAULT", "\n".join(faults))
        if host_network:
            self._smtp_port, self._api_port = _free_port(), _free_port()
            self.with_kwargs(network_mode="host")
            self.with_envs(
                SES_HARNESS_HOST="127.0.0.1",
                SES_HARNESS_API_HOST="127.0.0.1",
                SES_HARNESS_PORT=str(self._smtp_port),
                SES_HARNESS_API_PORT=str(self._api_port),
            )
        else:
            self._smtp_port, self._api_port = SMTP_PORT, API_PORT
            self.with_exposed_ports(SMTP_PORT, API_PORT)
        self.waiting_for(wait_for_readyz(self._api_port, startup_timeout_s))

    # With the host's network nothing is published: the ports are the host's own.
    def get_container_host_ip(self) -> str:
        return "127.0.0.1" if self.host_network else super().get_container_host_ip()

    def get_exposed_port(self, port: int) -> int:
        return port if self.host_network else int(super().get_exposed_port(port))

    @property
    def smtp_address(self) -> tuple[str, int]:
        """(host, port) a mailer under test connects to."""
        return self.get_container_host_ip(), self.get_exposed_port(self._smtp_port)

    @property
    def api_url(self) -> str:
        """The HTTP API, the live page and the SES API (an SDK's `endpoint_url`)."""
        host = self.get_container_host_ip()
        return f"http://{host}:{self.get_exposed_port(self._api_port)}"

    @property
    def remote(self) -> RemoteFakeSES:
        """The fixture's views and assertions over the HTTP API: messages, faults fired,
        `set_plan` (faults and limits), `assert_delivered_once`, `wait_for_messages`."""
        return RemoteFakeSES(self.api_url, token=self.token)

    def boto3_client(self, service: str = "sesv2", **config: Any) -> Any:
        """A boto3 client (`"sesv2"` or `"ses"`) for the container's SES API, one attempt per
        call. Needs boto3."""
        import boto3
        from botocore.config import Config

        config.setdefault("retries", {"total_max_attempts": 1, "mode": "standard"})
        return boto3.client(
            service,
            endpoint_url=self.api_url,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=self.token,
            config=Config(**config),
        )


def wait_for_readyz(api_port: int, timeout_s: float = 60.0) -> HttpWaitStrategy:
    """Wait until `GET /readyz` answers 200: SMTP, the HTTP API and the SES API all accept."""
    strategy = HttpWaitStrategy(api_port, "/readyz").for_status_code(200)
    return strategy.with_startup_timeout(int(timeout_s))


def _toml(value: Any) -> str:
    """A limit's value as `--limit` reads it (a TOML value)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
