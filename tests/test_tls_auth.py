"""`serve --starttls | --tls` with `--auth USER:PASS`: smtplib over both, trusting the CA file the
banner prints, and the SES 530/535 replies."""

from __future__ import annotations

import signal
import smtplib
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serve_process import ServeProcess

USER, PASSWORD = "AKIAFAKEUSER", "fake-secret-Pa55word"
MESSAGE = b"From: app@example.com\r\nTo: user@example.com\r\nSubject: tls\r\n\r\nover TLS\r\n"


# A server with implicit TLS takes over 5 s to start and serve a test on a loaded machine.
@pytest.fixture(params=["--starttls", pytest.param("--tls", marks=pytest.mark.slow)])
def server(request: pytest.FixtureRequest) -> Iterator[ServeProcess]:
    process = ServeProcess("--profile", "ses", request.param, "--auth", f"{USER}:{PASSWORD}")
    yield process
    process.close()


def trusted(server: ServeProcess) -> ssl.SSLContext:
    """What a user does with the banner's CA file."""
    ca_file = server.ready["ca_file"]
    assert Path(ca_file).is_file()
    assert f"  CA file   {ca_file}  (trust this in your client)" in server.lines
    return ssl.create_default_context(cafile=ca_file)


def connect(server: ServeProcess) -> smtplib.SMTP:
    """An encrypted, not yet authenticated connection, as the server's TLS mode needs."""
    if server.ready["tls"] == "implicit":
        return smtplib.SMTP_SSL(*server.smtp, context=trusted(server), timeout=30)
    client = smtplib.SMTP(*server.smtp, timeout=30)
    client.starttls(context=trusted(server))
    return client


def test_a_client_that_trusts_the_ca_file_logs_in_and_sends(server: ServeProcess) -> None:
    with connect(server) as client:
        client.login(USER, PASSWORD)
        client.sendmail("app@example.com", ["user@example.com"], MESSAGE)
    _, sessions = server.api("GET", "/api/sessions")
    assert [(s["tls"], s["user"], s["accepted"]) for s in sessions] == [(True, USER, 1)]
    _, stats = server.api("GET", "/api/stats")
    assert stats["smtp"]["tls"] == server.ready["tls"]
    assert stats["smtp"]["auth"] is True


def test_mail_before_auth_gets_the_ses_530(server: ServeProcess) -> None:
    with connect(server) as client, pytest.raises(smtplib.SMTPSenderRefused) as refused:
        client.sendmail("app@example.com", ["user@example.com"], MESSAGE)
    assert (refused.value.smtp_code, refused.value.smtp_error) == (530, b"Authentication required")


def test_a_wrong_password_gets_the_ses_535(server: ServeProcess) -> None:
    with connect(server) as client, pytest.raises(smtplib.SMTPAuthenticationError) as denied:
        client.login(USER, "wrong")
    assert (denied.value.smtp_code, denied.value.smtp_error) == (
        535,
        b"Authentication Credentials Invalid",
    )


def test_auth_before_starttls_gets_the_ses_530() -> None:
    server = ServeProcess("--starttls", "--auth", f"{USER}:{PASSWORD}")
    try:
        with smtplib.SMTP(*server.smtp, timeout=30) as client:
            client.ehlo()
            code, text = client.docmd("AUTH", "PLAIN AEFLSUFGQUtFVVNFUgBzZWNyZXQ=")
        assert (code, text) == (530, b"Must issue a STARTTLS command first")
    finally:
        server.close()


def test_the_password_appears_in_no_output_and_no_api_answer(server: ServeProcess) -> None:
    with connect(server) as client:
        client.login(USER, PASSWORD)
        client.sendmail("app@example.com", ["user@example.com"], MESSAGE)
    answers = [server.api("GET", path)[1] for path in ("/api/sessions", "/api/stats", "/api/plan")]
    code, output, stderr = server.stop(signal.SIGINT)
    assert code == 0
    assert PASSWORD not in output + stderr + str(answers)
    assert f"AUTH      user '{USER}', the password given to --auth" in output
