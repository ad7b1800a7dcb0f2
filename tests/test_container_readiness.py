"""`GET /readyz` and `GET /livez` (harness.console.health): ready only once SMTP, the HTTP API
and the SES API all accept; both answer without the API token."""

from __future__ import annotations

import smtplib
import urllib.error
import urllib.request
from typing import Any

import aiohttp

from harness import FakeSES
from harness.console.app import create_app
from harness.console.http import ApiServer


async def probe(url: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as client, client.get(url) as response:
        assert response.headers["Cache-Control"] == "no-store"
        return response.status, await response.json()


async def test_readyz_is_503_until_smtp_and_the_ses_api_accept_then_200() -> None:
    # The HTTP listener first, the fake SES later: the order a slow start would show.
    ses = FakeSES(profile="plain", api=False)
    app = create_app(ses, token="secret")
    ses.mount_api(app)
    async with ApiServer(app) as api:
        status, body = await probe(f"{api.url}/readyz")
        assert status == 503
        assert body == {
            "status": 503,
            "ready": False,
            "smtp": False,
            "http_api": True,
            "ses_api": False,
            "error": "not accepting yet: smtp, ses_api",
        }
        assert (await probe(f"{api.url}/livez"))[0] == 200
        await ses.start_async()
        try:
            status, body = await probe(f"{api.url}/readyz")
            assert (status, body["ready"], body["smtp"], body["ses_api"]) == (200, True, True, True)
        finally:
            await ses.stop_async()
        # Stopped: SMTP no longer accepts, and readiness says so.
        status, body = await probe(f"{api.url}/readyz")
        assert (status, body["smtp"]) == (503, False)


async def test_readyz_is_503_while_the_ses_api_is_neither_mounted_nor_on_its_own_port() -> None:
    ses = FakeSES(profile="plain", api=False)
    async with ses, ApiServer(create_app(ses)) as api:
        status, body = await probe(f"{api.url}/readyz")
    assert (status, body["smtp"], body["ses_api"]) == (503, True, False)
    assert body["error"] == "not accepting yet: ses_api"


async def test_readyz_counts_the_ses_api_on_its_own_port() -> None:
    ses = FakeSES(profile="plain")  # api=True: the SES API on a port of its own
    async with ses, ApiServer(create_app(ses)) as api:
        assert (await probe(f"{api.url}/readyz"))[0] == 200


def test_serve_is_ready_and_live_without_the_token_while_the_api_wants_it(start) -> None:
    server = start("--api-token", "s3cret")
    url = server.ready["api_url"]
    for path in ("/readyz", "/livez"):
        with urllib.request.urlopen(url + path, timeout=30) as response:
            assert response.status == 200
    try:
        urllib.request.urlopen(url + "/api/stats", timeout=30)
    except urllib.error.HTTPError as error:
        assert error.code == 401
    else:
        raise AssertionError("/api/stats answered without the token")
    # Ready means ready: SMTP takes mail at once.
    with smtplib.SMTP(*server.smtp) as client:
        assert client.noop()[0] == 250
