"""`FakeSESContainer` (harness.console.container) on testcontainers-python, driving the image
through podman's Docker-compatible API (`podman system service`), with Ryuk off (its image
cannot be had here): it waits on /readyz, a test arranges a fault over the HTTP API, a real
SMTP client meets it, and the delivered-once assertion holds; the SES API answers over boto3.

The test in the middle is docs/container.md's example, word for word.
"""

from __future__ import annotations

import os
import smtplib
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.container_process import image_or_skip, podman_env

pytestmark = pytest.mark.slow
pytest.importorskip("testcontainers", reason="needs the testcontainers extra")

SERVICE_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def podman_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """podman's Docker-compatible API on a socket of this module's own, ready when given (the
    service says READY=1 on NOTIFY_SOCKET, as it does to systemd)."""
    image_or_skip()
    folder: Path = tmp_path_factory.mktemp("podman")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(folder / "notify"))
        notify.settimeout(SERVICE_TIMEOUT_S)
        service = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{folder}/podman.sock"],
            env={**podman_env(), "NOTIFY_SOCKET": str(folder / "notify")},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while b"READY=1" not in notify.recv(4096):
                pass
        except BaseException:
            service.kill()
            service.wait()
            raise
    try:
        yield f"unix://{folder}/podman.sock"
    finally:
        service.terminate()
        service.wait(timeout=SERVICE_TIMEOUT_S)


@pytest.fixture
def docker_host(podman_service: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DOCKER_HOST", podman_service)
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
    return image_or_skip()


def send(address: tuple[str, int], numbers: range) -> None:
    """A mailer that retries a message once after a 4xx, as a careful one does."""
    with smtplib.SMTP(*address, timeout=60) as client:
        for number in numbers:
            message = (
                f"From: shop@example.com\r\nTo: buyer@example.com\r\n"
                f"Message-ID: <order-{number}@shop.example>\r\nSubject: Order {number}\r\n\r\n"
                f"Thanks for order {number}.\r\n"
            )
            for _attempt in range(2):
                try:
                    client.sendmail("shop@example.com", ["buyer@example.com"], message)
                    break
                except smtplib.SMTPRecipientsRefused:
                    client.rset()


def test_a_fault_driven_from_the_test_and_delivered_once(docker_host: str) -> None:
    from harness.console.container import FakeSESContainer

    image = docker_host
    with FakeSESContainer(image, profile="plain", host_network=True) as ses:
        ses.remote.set_plan(
            {
                "profile": "plain",
                "faults": [
                    {"stage": "RCPT", "nth": 3, "action": "reply", "code": 451, "text": "Later"}
                ],
            }
        )
        send(ses.smtp_address, range(1, 6))
        ses.remote.assert_delivered_once([f"<order-{n}@shop.example>" for n in range(1, 6)])
        fired = ses.remote.faults_fired
        assert [(f.source, f.stage, f.reply) for f in fired] == [("rule", "RCPT", "451 Later")]
        sent = ses.boto3_client().send_email(
            FromEmailAddress="shop@example.com",
            Destination={"ToAddresses": ["buyer@example.com"]},
            Content={"Simple": {"Subject": {"Data": "Hi"}, "Body": {"Text": {"Data": "Hi"}}}},
        )
        assert ses.remote.wait_for_messages(6)[-1].ses_id == sent["MessageId"]


def test_the_assertion_catches_a_message_delivered_twice(docker_host: str) -> None:
    from harness.console.container import FakeSESContainer

    with FakeSESContainer(docker_host, profile="plain", host_network=True) as ses:
        send(ses.smtp_address, range(1, 2))
        send(ses.smtp_address, range(1, 2))  # the same order again: a duplicate
        with pytest.raises(AssertionError, match=r"<order-1@shop\.example> x2 \(sessions 1, 2\)"):
            ses.remote.assert_delivered_once(["<order-1@shop.example>"])


def test_it_is_stopped_and_removed_on_leaving(docker_host: str) -> None:
    from harness.console.container import FakeSESContainer

    with FakeSESContainer(docker_host, host_network=True) as ses:
        container_id = ses.get_container_id()
    done = subprocess.run(
        ["podman", "container", "exists", container_id], env={**os.environ, **podman_env()}
    )
    assert done.returncode == 1


def test_profile_limits_and_faults_given_to_it_are_the_containers_plan(docker_host: str) -> None:
    from harness.console.container import FakeSESContainer

    with FakeSESContainer(
        docker_host,
        profile="ses",
        limits={"rate_per_s": None, "session_limit": 2, "verified": ["@example.com", "@b.co"]},
        faults=["stage=RCPT,nth=1,action=reply,code=451,text=Later"],
        host_network=True,
    ) as ses:
        plan = ses.remote.plan
        with smtplib.SMTP(*ses.smtp_address, timeout=60) as client:
            client.mail("shop@example.com")
            first = client.rcpt("buyer@example.com")
    assert plan.profile == "ses"
    assert plan.limits == {
        "rate_per_s": None,
        "session_limit": 2,
        "verified": ["@example.com", "@b.co"],
    }
    assert [rule.to_dict() for rule in plan.faults] == [
        {"stage": "RCPT", "nth": 1, "action": "reply", "code": 451, "text": "Later"}
    ]
    assert first == (451, b"Later")
