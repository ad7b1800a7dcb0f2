"""`serve --api-host`: the HTTP API where a container's neighbours can read it, never tokenless.

No address but loopback is bound by this suite: the non-loopback run has its API server
replaced by a recorder, which says where it was asked to listen and with what token.
"""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from harness.cli import serve
from harness.cli.main import main
from harness.cli.serve import api_token, exposure_warning


def test_any_non_loopback_api_address_requires_a_token() -> None:
    tokenless = argparse.Namespace(host="127.0.0.1", api_host="0.0.0.0", api_token=None)
    assert api_token(tokenless)  # made up, and printed with the live page's URL
    given = argparse.Namespace(host="127.0.0.1", api_host="0.0.0.0", api_token="mine")
    assert api_token(given) == "mine"
    loopback = argparse.Namespace(host="127.0.0.1", api_host="127.0.0.1", api_token=None)
    assert api_token(loopback) is None


def test_the_warning_names_the_api_address() -> None:
    assert exposure_warning("127.0.0.1", "127.0.0.1") is None
    warning = exposure_warning("127.0.0.1", "0.0.0.0")
    assert warning is not None and "the HTTP API on 0.0.0.0, not loopback" in warning
    assert "requires a token" in warning
    both = exposure_warning("0.0.0.0", "0.0.0.0")
    assert both is not None and "SMTP on 0.0.0.0 and the HTTP API on 0.0.0.0" in both


def test_serve_binds_the_api_where_asked_with_a_token(monkeypatch, capsys) -> None:
    seen: dict[str, Any] = {}

    class Recorder:
        def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
            seen["host"], seen["app"] = host, app

        async def __aenter__(self) -> Recorder:
            raise OSError("recorded, not bound")

        async def __aexit__(self, *exc: object) -> None:
            pass

    made: dict[str, Any] = {}
    real_create_app = serve.create_app

    def create_app(*args: Any, **kwargs: Any) -> Any:
        made["token"] = kwargs.get("token")
        return real_create_app(*args, **kwargs)

    monkeypatch.setattr(serve, "ApiServer", Recorder)
    monkeypatch.setattr(serve, "create_app", create_app)
    argv = ["serve", "--port", "0", "--api-port", "0", "--api-host", "0.0.0.0"]
    assert main(argv) == 1  # the recorder refuses to listen
    assert seen["host"] == "0.0.0.0" and made["token"]
    assert "the HTTP API on 0.0.0.0, not loopback" in capsys.readouterr().err


@pytest.mark.parametrize("flag", [[], ["--api-host", "127.0.0.1"]])
def test_on_loopback_the_api_needs_no_token(start, flag) -> None:
    server = start("--profile", "plain", *flag)
    assert server.ready["api_url"].startswith("http://127.0.0.1:")
    status, _ = server.api("GET", "/api/stats")
    assert status == 200
