"""Certificates made for the test run, in memory and a temporary folder; never committed."""

from __future__ import annotations

import functools
import ssl
import tempfile
from pathlib import Path


class TestCertificates:
    """A throwaway CA and a certificate for 127.0.0.1 and localhost."""

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        import trustme  # loads cryptography: 9 MiB a server without TLS need not hold

        self._ca = trustme.CA()
        self._cert = self._ca.issue_cert("127.0.0.1", "localhost", "email-smtp.amazonaws.com")
        self._dir = tempfile.TemporaryDirectory(prefix="ses-harness-ca-")
        self.ca_file = str(Path(self._dir.name) / "ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_file)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(context)
        return context


@functools.cache
def shared_certificates() -> TestCertificates:
    """One CA per process: generating keys costs tens of milliseconds."""
    return TestCertificates()


def deferred_server_context() -> ssl.SSLContext:
    """A server context that makes the test certificates at its first handshake, not before.

    For a port most runs never connect to (the SNS stand-in's HTTPS port): making them loads
    cryptography, about 9 MiB. OpenSSL asks the SNI callback at every handshake, with or without
    a server name, before it picks a certificate; the callback hands over the real context.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    real: list[ssl.SSLContext] = []

    def _swap(connection: ssl.SSLObject | ssl.SSLSocket, *_: object) -> None:
        if not real:
            real.append(shared_certificates().server_context())
        connection.context = real[0]

    context.sni_callback = _swap
    return context
