"""The image (Containerfile) as users run it, under podman: SES's session cap on the wire, the
HTTP API, the SES API over boto3, readiness and its HEALTHCHECK, a non-root user, and a SIGTERM
in the middle of a batch that loses nothing the server acknowledged.

Built once before the tests by container/build (see tests/container_process.py); skipped, with
the reason, where podman cannot run or no image was built.
"""

from __future__ import annotations

import json
import smtplib
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.container_process import TOKEN, image_or_skip, podman, running

pytestmark = pytest.mark.slow

SESSION_CAP_TEXT = "Connection closed by server. Maximum message count per session reached."


@pytest.fixture(scope="module")
def image() -> str:
    return image_or_skip()


def mail(number: int) -> bytes:
    return (
        f"From: app@example.com\r\nTo: user@example.com\r\nSubject: Container {number}\r\n"
        f"Message-ID: <container-{number}@example.com>\r\n\r\nMessage {number}.\r\n"
    ).encode()


def get(url: str, token: str | None = TOKEN) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_image_runs_serve_as_a_non_root_user(image: str) -> None:
    user = podman("image", "inspect", "--format", "{{.Config.User}}", image).strip()
    assert user == "10001:10001"
    with running(image) as container:
        uid = podman("exec", container.name, "id", "-u").strip()
        owner = podman("exec", container.name, "stat", "-c", "%u", "/data").strip()
    assert uid == "10001" and owner == "10001"


def test_400_messages_on_one_connection_meet_ses_421_at_the_351st(image: str) -> None:
    refused: list[tuple[int, int, str]] = []
    with running(image, env={"SES_HARNESS_LIMIT": "rate_per_s=none"}) as container:
        with smtplib.SMTP(*container.smtp, timeout=60) as client:
            for number in range(1, 401):
                try:
                    client.sendmail("app@example.com", ["user@example.com"], mail(number))
                except smtplib.SMTPSenderRefused as error:
                    refused.append((number, error.smtp_code, error.smtp_error.decode()))
                    break
        status, stats = get(f"{container.url}/api/stats")
    assert refused == [(351, 421, SESSION_CAP_TEXT)]
    assert status == 200 and stats["messages"]["this_run"] == 350


def test_readiness_the_healthcheck_the_http_api_and_the_ses_api_answer(image: str) -> None:
    boto3 = pytest.importorskip("boto3")
    with running(image, env={"SES_HARNESS_PROFILE": "plain"}) as container:
        assert get(f"{container.url}/readyz", token=None)[0] == 200
        assert get(f"{container.url}/livez", token=None)[0] == 200
        podman("healthcheck", "run", container.name)  # the HEALTHCHECK passes: exit 0
        assert get(f"{container.url}/api/stats", token=None)[0] == 401
        ses = boto3.client(
            "sesv2",
            endpoint_url=container.url,
            region_name="us-east-1",
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key=TOKEN,  # serve's rule: the API token is the secret key
        )
        sent = ses.send_email(
            FromEmailAddress="app@example.com",
            Destination={"ToAddresses": ["user@example.com"]},
            Content={"Simple": {"Subject": {"Data": "Hi"}, "Body": {"Text": {"Data": "Hello"}}}},
        )
        status, messages = get(f"{container.url}/api/messages")
    assert status == 200
    assert [m["ses_id"] for m in messages] == [sent["MessageId"]]


def test_sigterm_mid_batch_keeps_every_acknowledged_message_in_the_store(
    image: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o777)  # the image's user, 10001, writes here
    acknowledged: list[str] = []
    enough = threading.Event()
    ended: list[BaseException] = []

    def sender(smtp: tuple[str, int]) -> None:
        try:
            with smtplib.SMTP(*smtp, timeout=60) as client:
                for number in range(1, 5001):
                    client.sendmail("app@example.com", ["user@example.com"], mail(number))
                    acknowledged.append(f"<container-{number}@example.com>")
                    if len(acknowledged) == 100:
                        enough.set()
        except (smtplib.SMTPException, OSError) as error:
            ended.append(error)
        finally:
            enough.set()

    env = {"SES_HARNESS_PROFILE": "plain"}
    with running(image, env=env, data=data) as container:
        thread = threading.Thread(target=sender, args=(container.smtp,))
        thread.start()
        enough.wait(timeout=120)
        code, output = container.terminate()
        thread.join(timeout=120)
    assert ended, "the batch finished before the SIGTERM: not mid-batch"
    assert code == 0 and "stopped." in output
    stored = [json.loads(line) for line in (data / "ledger.jsonl").read_text().splitlines() if line]
    kept = {r["message_id"]: r for r in stored if r["type"] == "message"}
    assert len(acknowledged) >= 100
    missing = [m for m in acknowledged if m not in kept]
    assert missing == []
    for message_id in acknowledged:
        record = kept[message_id]
        assert (data / "messages" / f"{record['sequence']:06d}.eml").exists()
