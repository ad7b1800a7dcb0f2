"""`SesProxy`: a `FakeSES` whose connections relay what the plan lets through to a real server.

>>> import smtplib
>>> with FakeSES(profile="plain") as upstream, SesProxy(upstream.address, session_limit=1) as proxy:
...     with smtplib.SMTP(proxy.host, proxy.port) as client:
...         _ = client.sendmail("a@example.com", ["b@example.com"], b"Subject: 1\\r\\n\\r\\nhi")
...         try:
...             client.sendmail("a@example.com", ["b@example.com"], b"Subject: 2\\r\\n\\r\\nhi")
...         except smtplib.SMTPSenderRefused as refused:
...             print(refused.smtp_code)
...     len(upstream.messages), len(proxy.messages)
421
(1, 1)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.base.endpoint import TlsMode
from harness.server.fake_ses import FakeSES
from harness.server.relay.recording import Recorder
from harness.server.relay.session import Relay, RelaySMTP
from harness.server.relay.upstream import UpstreamConfig
from harness.server.state import ServerState


class SesProxy(FakeSES):
    """The fake server's plan in front of `upstream` ("host:port", a (host, port) pair or an
    :class:`UpstreamConfig`); every other argument is `FakeSES`'s (profile, limits, faults,
    `tls` and `auth` toward the client, the SES API, the ledger).

    Toward the upstream: `upstream_tls` ("none", "starttls", "implicit"), `upstream_ca_file`
    (trust this CA; default the system's), `upstream_verify=False` to skip the certificate
    check, `upstream_auth=(user, password)` to log in as the proxy (default: the client's own
    AUTH is relayed), `upstream_timeout_s`; `record` a path to write the upstream's side of
    every session to (see `harness.server.relay.recording`).
    """

    def __init__(
        self,
        upstream: str | tuple[str, int] | UpstreamConfig,
        *,
        upstream_tls: TlsMode | str = TlsMode.NONE,
        upstream_ca_file: str | None = None,
        upstream_verify: bool = True,
        upstream_auth: tuple[str, str] | None = None,
        upstream_timeout_s: float = 60.0,
        record: str | Path | None = None,
        **options: Any,
    ) -> None:
        options.setdefault("api", False)  # see mount_api
        super().__init__(**options)
        if isinstance(upstream, UpstreamConfig):
            config = upstream.checked()
        else:
            text = upstream if isinstance(upstream, str) else f"{upstream[0]}:{upstream[1]}"
            config = UpstreamConfig.parse(
                text,
                tls=TlsMode(upstream_tls),
                verify=upstream_verify,
                ca_file=upstream_ca_file,
                credentials=upstream_auth,
                timeout_s=upstream_timeout_s,
            )
        self.upstream = config
        self.record_path = Path(record) if record is not None else None
        self._recorder: Recorder | None = None
        self._relay = Relay(config)

    def mount_api(self, app: Any) -> None:
        """The proxy relays SMTP only: it does not answer the SES API (a message sent there
        would be recorded and never reach the upstream)."""

    def protocol(self, state: ServerState) -> RelaySMTP:  # type: ignore[override]
        return RelaySMTP(state, self._relay)

    async def start_async(self) -> SesProxy:
        if self.record_path is not None and self._recorder is None:
            self._recorder = Recorder(
                self.record_path, upstream=self.upstream.address, tls=self.upstream.tls.value
            )
            self._relay = Relay(self.upstream, self._recorder)
        await super().start_async()
        return self

    async def stop_async(self) -> None:
        await super().stop_async()
        if self._recorder is not None:
            self._recorder.close()
            self._recorder = None

    def describe(self) -> list[str]:
        """Where the proxy relays to and how, for a banner."""
        config = self.upstream
        tls = {"none": "no TLS", "starttls": "STARTTLS", "implicit": "implicit TLS"}[config.tls]
        if config.tls is not TlsMode.NONE:
            tls += ", certificate verified" if config.verify else ", certificate NOT verified"
        login = "the client's AUTH relayed"
        if config.credentials is not None:
            login = f"logs in as {config.credentials[0]!r}"
        lines = [f"upstream  {config.address}  {tls}; {login}; SMTP only (no SES API)"]
        if self.record_path is not None:
            lines.append(f"record    {self.record_path}  (ses-harness profile-check FILE)")
        return lines

    def __repr__(self) -> str:
        return (
            f"SesProxy(profile={self.plan.profile!r}, address={self.host}:{self.port}, "
            f"upstream={self.upstream.address})"
        )
