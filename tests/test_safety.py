"""Safety defaults: loopback unless told otherwise (with a warning, tested without binding any other
address), an optional API token that the live page can still use, credentials in no output,
file, API answer or report, and certificates only in a temporary folder."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.cli import serve
from harness.cli.main import main
from harness.cli.serve import TOKEN_ENV, exposure_warning
from tests.strategies_misbehaving import SECRET

REPO = Path(__file__).resolve().parent.parent
TOKEN = "tok-3n/ 5+ecret"  # characters that need quoting in a URL
USER, PASSWORD = "AKIAFAKEUSER", "Pa55-never-logged"
WAIT_S = 30.0
MESSAGE = b"From: app@example.com\r\nTo: user@example.com\r\nSubject: hi\r\n\r\nHello.\r\n"


def request(
    url: str, method: str = "GET", headers: dict[str, str] | None = None, body: Any = None
) -> tuple[int, dict[str, str], Any]:
    """One HTTP request: status, headers, and the JSON (or bytes) it answered."""
    data = None if body is None else json.dumps(body).encode()
    headers = dict(headers or {})
    if method not in ("GET", "HEAD"):
        headers.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=WAIT_S) as response:
            status, payload, info = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, payload, info = error.code, error.read(), error.headers
    if info.get_content_type() == "application/json":
        return status, dict(info), json.loads(payload)
    return status, dict(info), payload


# --- where it listens ------------------------------------------------------------------------


def test_serve_listens_on_loopback_by_default_and_says_nothing_about_it(start) -> None:
    server = start("--profile", "plain")
    assert server.ready["smtp_host"] == "127.0.0.1"
    assert server.ready["api_url"].startswith("http://127.0.0.1:")
    code, _, stderr = server.stop()
    assert code == 0 and "warning" not in stderr


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.9", "::1", "localhost"])
def test_no_warning_for_a_loopback_address(host: str) -> None:
    assert exposure_warning(host) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "mail.example.com"])
def test_a_warning_for_any_other_address(host: str) -> None:
    warning = exposure_warning(host)
    assert warning is not None
    assert warning.startswith(f"listening on {host}, not loopback: other machines can reach")
    assert "The HTTP API stays on 127.0.0.1." in warning


def test_serve_prints_the_warning_before_it_listens_on_another_address(monkeypatch, capsys):
    """The command end to end, with the listening step replaced: no address but loopback is
    ever bound by this suite."""
    seen: dict[str, Any] = {}

    async def listen_nowhere(args, plan, ledger, log, store) -> int:
        seen["host"] = args.host
        seen["warned_first"] = "warning" in capsys.readouterr().err
        return 0

    monkeypatch.setattr(serve, "_serve", listen_nowhere)
    assert main(["serve", "--host", "0.0.0.0", "--port", "0", "--api-port", "0"]) == 0
    assert seen == {"host": "0.0.0.0", "warned_first": True}


# --- the API token ----------------------------------------------------------------------------


def test_with_a_token_the_api_refuses_requests_without_it(start) -> None:
    server = start("--profile", "plain", "--api-token", TOKEN)
    api = server.ready["api_url"]
    status, headers, body = request(api + "/api/stats")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert body == {
        "status": 401,
        "error": "this server wants an API token: send 'Authorization: Bearer TOKEN' "
        "or 'X-Api-Token: TOKEN'",
    }
    status, _, body = request(api + "/api/stats", headers={"Authorization": "Bearer wrong"})
    assert status == 401 and body["error"].startswith("wrong API token")
    status, _, body = request(
        api + "/api/plan", "PUT", {"X-Api-Token": "wrong"}, {"profile": "ses"}
    )
    assert status == 401
    status, _, stats = request(api + "/api/stats", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and stats["profile"] == "plain"  # the refused PUT changed nothing
    status, _, plan = request(api + "/api/plan", "PUT", {"X-Api-Token": TOKEN}, {"seed": 9})
    assert status == 200 and plan["seed"] == 9


def test_with_a_token_the_page_loads_and_the_banner_gives_its_url(start) -> None:
    server = start("--api-token", TOKEN)
    api = server.ready["api_url"]
    assert f"  live page {api}/?token=tok-3n%2F%205%2Becret" in server.lines
    for path in ("/", "/web/app.js", "/web/style.css"):
        status, _, _ = request(api + path)
        assert status == 200, path


def test_the_token_can_come_from_the_environment(start, monkeypatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    server = start("--profile", "plain")
    api = server.ready["api_url"]
    assert request(api + "/api/stats")[0] == 401
    assert request(api + "/api/stats", headers={"X-Api-Token": TOKEN})[0] == 200
    assert TOKEN not in " ".join(server.process.args)  # not on the command line, for `ps`


def test_without_a_token_the_api_answers_anyone_on_loopback(start) -> None:
    server = start("--profile", "plain")
    assert request(server.ready["api_url"] + "/api/stats")[0] == 200


# --- the live page with a token (headless Chromium) ------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def page() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"],
        )
        page = browser.new_page()
        page.set_default_timeout(WAIT_S * 1000)
        yield page
        browser.close()


def status_starts(page: Any, text: str) -> None:
    # A locator, not wait_for_function: the page's CSP forbids the eval that one needs.
    from playwright.sync_api import expect

    expect(page.locator("#status")).to_have_text(re.compile("^" + re.escape(text)))


def test_the_page_opened_at_the_banner_url_works_and_keeps_the_token(start, page) -> None:
    server = start("--profile", "plain", "--api-token", TOKEN)
    (url,) = [line.split()[-1] for line in server.lines if line.startswith("  live page ")]
    with smtplib.SMTP(*server.smtp, timeout=WAIT_S) as client:
        client.sendmail("app@example.com", ["user@example.com"], MESSAGE)
    page.goto(url)
    status_starts(page, "live")
    from playwright.sync_api import expect

    expect(page.locator("#count-messages")).to_have_text("1")
    assert "token" not in page.url  # out of the address bar and the history
    page.reload()
    status_starts(page, "live")  # kept for the tab
    page.locator("#messages tbody tr").first.click()
    page.locator("#message-text", has_text="Hello.").wait_for()
    with page.expect_download() as download:  # the raw .eml, fetched with the token
        page.click("#message-raw-link")
    assert "Hello." in Path(download.value.path()).read_text()


def test_the_page_without_the_token_says_it_needs_one(start, page) -> None:
    server = start("--api-token", TOKEN)
    page.goto(server.ready["api_url"] + "/")
    status_starts(page, "the API wants a token")


# --- credentials ------------------------------------------------------------------------------


def secret_forms(user: str, password: str) -> list[str]:
    """The password as typed and as it travels in AUTH PLAIN and AUTH LOGIN."""
    return [
        password,
        base64.b64encode(password.encode()).decode(),
        base64.b64encode(f"\0{user}\0{password}".encode()).decode(),
    ]


def test_the_password_is_in_no_output_store_file_or_api_answer(start, tmp_path) -> None:
    store = tmp_path / "store"
    server = start("--profile", "ses", "--auth", f"{USER}:{PASSWORD}", "--store", str(store))
    with smtplib.SMTP(*server.smtp, timeout=WAIT_S) as client:  # AUTH PLAIN, initial response
        client.login(USER, PASSWORD)
        client.sendmail("app@example.com", ["user@example.com"], MESSAGE)
    with smtplib.SMTP(*server.smtp, timeout=WAIT_S) as client:  # AUTH LOGIN
        client.ehlo()
        client.auth("LOGIN", lambda challenge=None: PASSWORD if challenge else USER)
    with smtplib.SMTP(*server.smtp, timeout=WAIT_S) as client:  # PLAIN on the next line
        client.ehlo()
        assert client.docmd("AUTH", "PLAIN")[0] == 334
        assert client.docmd(secret_forms(USER, PASSWORD)[2])[0] == 235
    with (
        smtplib.SMTP(*server.smtp, timeout=WAIT_S) as client,  # a wrong one: 535
        pytest.raises(smtplib.SMTPAuthenticationError),
    ):
        client.login(USER, PASSWORD + "-wrong")
    answers = [
        server.api("GET", path)[1]
        for path in (
            "/api/sessions",
            "/api/sessions/1",
            "/api/messages",
            "/api/messages/1",
            "/api/faults",
            "/api/stats",
            "/api/plan",
        )
    ]
    code, output, stderr = server.stop(signal.SIGINT)
    assert code == 0
    transcript = json.dumps(answers[0])
    assert "AUTH PLAIN ****" in transcript and "AUTH LOGIN" in transcript
    stored = "".join(p.read_text(errors="replace") for p in store.rglob("*") if p.is_file())
    assert "AUTH PLAIN ****" in stored  # the transcripts are there, masked
    everything = "\n".join([output, stderr, json.dumps(answers), stored])
    for secret in secret_forms(USER, PASSWORD) + secret_forms(USER, PASSWORD + "-wrong"):
        assert secret not in everything


def test_credentials_a_strategy_sends_are_in_no_report(tmp_path) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text('[workload]\ncount = 3\n[plan]\nprofile = "plain"\n')
    reports = tmp_path / "reports"
    strategy = "tests.strategies_misbehaving:sends_credentials"
    run = [sys.executable, "-m", "harness", "run", str(scenario), "--report-dir", str(reports)]
    result = subprocess.run(
        [*run, "--strategy", strategy],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    files = [p for p in reports.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"results.json", "report.html", "junit.xml", "summary.md"}
    everything = "".join(p.read_text() for p in files) + result.stdout
    for secret in secret_forms("user", SECRET):
        assert secret not in everything


# --- certificates -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["--tls", "--starttls"])
def test_certificates_live_only_in_a_temporary_folder_gone_at_exit(tmp_path, mode) -> None:
    work = tmp_path / "work"
    work.mkdir()
    temp = tmp_path / "tmp"
    temp.mkdir()
    command = [sys.executable, "-m", "harness", "serve", "--port", "0", "--api-port", "0", mode]
    process = subprocess.Popen(
        command,
        cwd=work,
        env={**os.environ, "TMPDIR": str(temp)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready = next(line for line in process.stdout if line.startswith("READY "))
        ca_file = Path(json.loads(ready[len("READY ") :])["ca_file"])
        assert ca_file.is_file() and ca_file.is_relative_to(temp)
        assert not ca_file.is_relative_to(REPO)
        assert list(work.iterdir()) == []  # nothing in the working directory
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=WAIT_S) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    assert not ca_file.exists() and list(temp.iterdir()) == []  # removed at exit
    assert list(work.iterdir()) == []


def test_a_library_server_keeps_its_ca_file_in_the_temporary_folder() -> None:
    from harness import FakeSES, TlsMode

    with FakeSES(profile="plain", tls=TlsMode.STARTTLS) as ses:
        ca_file = Path(ses.endpoint.ca_file or "")
        assert ca_file.is_file()
        assert ca_file.is_relative_to(tempfile.gettempdir())
        assert not ca_file.is_relative_to(REPO) and not ca_file.is_relative_to(Path.cwd())
