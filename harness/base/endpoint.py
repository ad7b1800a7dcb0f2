"""Where a client connects: host, port, TLS mode and credentials, with a ready smtplib helper."""

from __future__ import annotations

import enum
import smtplib
import ssl
from dataclasses import dataclass

#: What a connection from `Endpoint.connect` says in EHLO: the address literal of the loopback
#: it comes from. Without it smtplib looks the machine's own name up on every connection
#: (socket.getfqdn: /etc/hosts, and on some machines DNS), which cost a tenth of a built-in
#: case's system calls and made the EHLO line depend on the machine.
EHLO_NAME = "[127.0.0.1]"


class TlsMode(enum.StrEnum):
    NONE = "none"
    STARTTLS = "starttls"
    IMPLICIT = "implicit"


@dataclass(frozen=True)
class Endpoint:
    """How to reach a (fake) SES server.

    >>> Endpoint("127.0.0.1", 2525).url
    'smtp://127.0.0.1:2525'
    """

    host: str
    port: int
    tls: TlsMode = TlsMode.NONE
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None  # trust anchor for the generated test certificate
    # The SES HTTP API of the same fake account (None when the server runs without it).
    api_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    region: str = "us-east-1"
    # Where the client reads the events SES published (JSON), when the scenario publishes them.
    events_url: str | None = None

    @property
    def url(self) -> str:
        scheme = "smtps" if self.tls is TlsMode.IMPLICIT else "smtp"
        return f"{scheme}://{self.host}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def connect(self, timeout_s: float = 30.0) -> smtplib.SMTP:
        """An smtplib connection with EHLO, STARTTLS and AUTH done as this endpoint needs."""
        if self.tls is TlsMode.IMPLICIT:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host,
                self.port,
                local_hostname=EHLO_NAME,
                timeout=timeout_s,
                context=self.ssl_context(),
            )
        else:
            client = smtplib.SMTP(self.host, self.port, local_hostname=EHLO_NAME, timeout=timeout_s)
        try:
            if self.tls is TlsMode.STARTTLS:
                client.starttls(context=self.ssl_context())
            if self.username is not None:
                client.login(self.username, self.password or "")
        except BaseException:
            client.close()
            raise
        return client
