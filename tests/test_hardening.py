"""Issue 15's nine holes, each pinned where it shows: on the wire (SMTP over real sockets, the
HTTP API served by a real server) or in the file, flag or API body a user writes.

1. one unterminated line in DATA and the server's peak memory;
2. other web pages driving the API: Host, Origin, content type, response headers, a token
   off loopback;
3. NaN, infinity and huge numbers in plans, flags, the API and scenario files;
4. 500s and tracebacks for odd digits, long numbers, deep nesting and non-UTF-8 tokens;
5. a scenario's total size, and large bodies written only when read;
6. the idle timer and a message still arriving;
7. a plan change over the API keeping `--auth`, and the live log noting it;
8. garbled addresses;
9. noise in a user's run of the plugin.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import http.server
import io
import logging
import math
import shutil
import smtplib
import socket
import textwrap
import threading
import tracemalloc
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st

from harness import FakeSES, PlanError
from harness.cli import serve
from harness.cli.main import main
from harness.console.app import create_app
from harness.console.livelog import LiveLog
from harness.core import schema
from harness.core.limits import Limits
from harness.core.plan import Plan, Rule
from harness.runner.scenario import load_scenario
from harness.runner.workload import MAX_TOTAL_BYTES, LazyMessage, WorkloadSpec, build_messages
from tests.helpers import Replies, message
from tests.stepped_clock import stepped_server

TIMEOUT_S = 30.0  # every socket read is bounded by this; never reached when things work
JSON = {"Content-Type": "application/json"}
MiB = 1024 * 1024


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(field)


def open_session(address: tuple[str, int]) -> tuple[socket.socket, Replies]:
    sock = socket.create_connection(address, timeout=TIMEOUT_S)
    replies = Replies(sock)
    assert replies.next().startswith(b"220")
    assert replies.command(b"EHLO hardening").startswith(b"250")
    return sock, replies


def run_api(scenario: Callable[[FakeSES, TestClient], Awaitable[None]], **server: Any) -> None:
    """A fake SES and its HTTP API, served on 127.0.0.1 in one loop; run `scenario`."""

    async def go() -> None:
        log = server.pop("log", None)
        ses = FakeSES(**{"profile": "plain", **server})
        async with ses, TestClient(TestServer(create_app(ses, log=log))) as client:
            await scenario(ses, client)

    asyncio.run(go())


# --- 1. one unterminated line in DATA -----------------------------------------------------------

LINE_MIB = 96
SIZE_CAP = MiB
# What the server may grow by beyond the size cap: the stream reader's buffer (two line limits),
# the socket's buffers, allocator slack. Before the fix it grew by twice the line (~190 MiB).
SLACK_MIB = 24


def test_a_line_with_no_crlf_in_data_costs_the_server_its_cap_not_the_line(start) -> None:
    server = start("--profile", "ses", "--limit", f"max_message_bytes={SIZE_CAP}")
    pid = server.process.pid
    before_kib = status_kib(pid, "VmHWM")
    sock, replies = open_session(server.smtp)
    with sock:
        assert replies.command(b"MAIL FROM:<a@example.com>").startswith(b"250")
        assert replies.command(b"RCPT TO:<b@example.com>").startswith(b"250")
        assert replies.command(b"DATA").startswith(b"354")
        chunk = b"C" * MiB
        for _ in range(LINE_MIB):
            sock.sendall(chunk)
        sock.sendall(b"\r\n.\r\n")
        refused = replies.next()
        assert refused[:3] in (b"500", b"552"), refused
        # The session goes on: the next message is taken.
        assert replies.command(b"MAIL FROM:<a@example.com>").startswith(b"250")
        assert replies.command(b"RCPT TO:<b@example.com>").startswith(b"250")
        assert replies.command(b"DATA").startswith(b"354")
        sock.sendall(message(1) + b".\r\n")
        assert replies.next().startswith(b"250 Ok ")
    grown_mib = (status_kib(pid, "VmHWM") - before_kib) / 1024
    assert grown_mib < SIZE_CAP / MiB + SLACK_MIB, f"peak RSS grew by {grown_mib:.0f} MiB"


# --- 2. other web pages driving the API ---------------------------------------------------------

REBIND = {"Host": "rebind.attacker.test:8126", "Origin": "http://rebind.attacker.test:8126"}


def test_a_request_that_names_another_host_is_refused_so_dns_rebinding_reads_nothing() -> None:
    async def scenario(ses: FakeSES, client: TestClient) -> None:
        await asyncio.to_thread(_send_one, ses)
        plan = {"faults": [{"stage": "MAIL", "action": "reply", "code": 451}]}
        response = await client.put("/api/plan", json=plan, headers=REBIND)
        assert response.status == 421, await response.text()
        assert "rebind.attacker.test" in (await response.json())["error"]
        for path in ("/api/messages", "/api/messages/1/raw", "/api/stats", "/"):
            response = await client.get(path, headers={"Host": REBIND["Host"]})
            assert response.status == 421, path
        assert ses.plan.faults == ()
        # The names that do reach this server by design still work.
        for host in ("127.0.0.1:8025", "localhost:8025", "[::1]:8025", "app.localhost"):
            response = await client.get("/api/stats", headers={"Host": host})
            assert response.status == 200, host

    run_api(scenario)


def test_a_listed_host_name_is_answered() -> None:
    async def go() -> None:
        ses = FakeSES(profile="plain")
        app = create_app(ses, allowed_hosts=("devbox.lan",))
        async with ses, TestClient(TestServer(app)) as client:
            response = await client.get("/api/stats", headers={"Host": "devbox.lan:8025"})
            assert response.status == 200

    asyncio.run(go())


def _send_one(ses: FakeSES) -> None:
    with smtplib.SMTP(*ses.address, timeout=TIMEOUT_S) as client:
        client.sendmail("a@example.com", ["b@example.com"], message(1))


def test_a_state_change_from_another_origin_is_refused() -> None:
    async def scenario(ses: FakeSES, client: TestClient) -> None:
        await asyncio.to_thread(_send_one, ses)
        own = f"http://127.0.0.1:{client.port}"
        for headers in (
            {"Origin": "http://127.0.0.1:9999"},  # a page on another port
            {"Origin": "null"},  # a sandboxed frame or a file: page
            {"Origin": own, "Sec-Fetch-Site": "cross-site"},
        ):
            response = await client.post("/api/reset", headers={**JSON, **headers})
            assert response.status == 403, headers
        assert len(ses.ledger.messages) == 1
        response = await client.post("/api/reset", headers={**JSON, "Origin": own})
        assert response.status == 200  # the page's own origin
        assert ses.ledger.messages == []

    run_api(scenario)


def test_a_state_change_needs_a_json_content_type_so_no_simple_request_gets_through() -> None:
    async def scenario(ses: FakeSES, client: TestClient) -> None:
        await asyncio.to_thread(_send_one, ses)
        # What a cross-site form or a no-cors fetch can send without a preflight.
        for content_type in (None, "text/plain", "application/x-www-form-urlencoded"):
            headers = {} if content_type is None else {"Content-Type": content_type}
            response = await client.post("/api/reset", headers=headers)
            assert response.status == 415, content_type
            response = await client.put("/api/plan", data=b'{"seed": 7}', headers=headers)
            assert response.status == 415, content_type
        assert len(ses.ledger.messages) == 1 and ses.plan.seed == 0
        response = await client.put("/api/plan", data=b'{"seed": 7}', headers=JSON)
        assert response.status == 200 and ses.plan.seed == 7

    run_api(scenario)


def test_every_answer_says_nosniff_and_the_page_runs_only_its_own_files() -> None:
    async def scenario(ses: FakeSES, client: TestClient) -> None:
        await asyncio.to_thread(_send_one, ses)
        for path in ("/", "/web/app.js", "/api/stats", "/api/messages/1/raw", "/api/nothing"):
            response = await client.get(path)
            assert response.headers["X-Content-Type-Options"] == "nosniff", path
            csp = response.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        refused = await client.post("/api/reset")  # refusals carry them too
        assert refused.headers["X-Content-Type-Options"] == "nosniff"

    run_api(scenario)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_off_loopback_the_api_gets_a_token_unless_one_is_given(host, monkeypatch) -> None:
    monkeypatch.delenv(serve.TOKEN_ENV, raising=False)
    args = argparse.Namespace(host=host, api_host="127.0.0.1", api_token=None)
    token = serve.api_token(args)
    assert token and len(token) >= 20
    assert serve.api_token(args) != token  # made up per run, not a constant
    given_token = argparse.Namespace(host=host, api_host="127.0.0.1", api_token="mine")
    assert serve.api_token(given_token) == "mine"
    loopback = argparse.Namespace(host="127.0.0.1", api_host="127.0.0.1", api_token=None)
    assert serve.api_token(loopback) is None


def test_the_banner_prints_the_page_url_that_carries_a_made_up_token() -> None:
    ses = FakeSES(profile="plain")
    lines = serve.banner(ses, "http://127.0.0.1:8025", None, "s3cret-token")
    assert "  live page http://127.0.0.1:8025/?token=s3cret-token" in lines


ATTACK_PAGE = """<!doctype html><title>cat pictures</title><script>
const api = new URLSearchParams(location.search).get("api");
const tries = [
  fetch(api + "/api/reset", {method: "POST", mode: "no-cors", body: "{}"}),
  fetch(api + "/api/reset", {method: "POST", mode: "no-cors",
                             headers: {"Content-Type": "text/plain"}, body: "{}"}),
  fetch(api + "/api/plan", {method: "PUT", mode: "no-cors", body: '{"seed": 99}'}),
  fetch(api + "/api/reset", {method: "POST", headers: {"Content-Type": "application/json"},
                             body: "{}"}),  // needs a preflight, which gets no CORS answer
];
navigator.sendBeacon(api + "/api/reset", "{}");
Promise.allSettled(tries).then(() => { document.title = "done"; });
</script>"""


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium on PATH")
def test_a_page_on_another_port_cannot_wipe_the_ledger_in_chromium(start) -> None:
    """The attack from the issue, in a real browser: a page served from another local port
    sends the simple requests a browser lets through without a preflight."""
    from playwright import sync_api

    server = start("--profile", "plain")
    with smtplib.SMTP(*server.smtp, timeout=TIMEOUT_S) as client:
        client.sendmail("a@example.com", ["b@example.com"], message(1))

    class Attacker(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = ATTACK_PAGE.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    attacker = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Attacker)
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=shutil.which("chromium"),
                args=["--no-sandbox", "--disable-gpu", "--no-first-run"],
            )
            page = browser.new_page()
            page.set_default_timeout(TIMEOUT_S * 1000)
            api = urllib.parse.quote(server.ready["api_url"], safe="")
            page.goto(f"http://127.0.0.1:{attacker.server_address[1]}/?api={api}")
            page.wait_for_function("document.title === 'done'")
            browser.close()
    finally:
        attacker.shutdown()
        attacker.server_close()
    status, messages = server.api("GET", "/api/messages")
    assert status == 200 and len(messages) == 1, "a page on another port wiped the ledger"
    assert server.api("GET", "/api/plan")[1]["seed"] == 0


# --- 3. every number finite and in range --------------------------------------------------------

NUMBER_KEYS = sorted(set(schema.RANGES) - {"latency_s", "timeout_s", "pause_s"})
# Out of range for every key: the largest range ends at 2**64 - 1 (seed).
BAD_NUMBERS = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 10**400, 2**64]),
    st.floats(min_value=1e20),  # infinity included
    st.floats(max_value=-1e20),
    st.integers(min_value=2**64, max_value=10**4000),
    st.integers(max_value=-(2**64), min_value=-(10**4000)),
)


_LIMIT_KEYS = {f.name for f in dataclasses.fields(Limits)}
_ACTION_OF = {"delay_s": "delay", "stall_s": "stall", "code": "reply"}


def _plan_with(key: str, value: Any) -> dict[str, Any]:
    """A plan that puts `value` under `key`, wherever that key lives."""
    if key in _LIMIT_KEYS:
        return {"limits": {key: value}}
    if key == "seed":
        return {"seed": value}
    if key in _ACTION_OF:
        return {"faults": [{"stage": "MAIL", "action": _ACTION_OF[key], key: value}]}
    return {"faults": [{"stage": "RCPT", "action": "drop", key: value}]}


@given(key=st.sampled_from(NUMBER_KEYS), value=BAD_NUMBERS)
def test_no_plan_holds_nan_infinity_or_a_huge_number(key: str, value: Any) -> None:
    with pytest.raises(PlanError) as raised:
        Plan.from_dict(_plan_with(key, value), source="plan.toml")
    text = str(raised.value)
    assert text.startswith("plan.toml: key '") and f"{key}'" in text, text
    assert "(allowed: " in text and "\n" not in text


def test_the_error_states_the_range_of_the_key() -> None:
    with pytest.raises(PlanError) as raised:
        Plan.from_dict({"limits": {"rate_per_s": math.nan}})
    assert str(raised.value) == (
        "key 'limits.rate_per_s': nan is not a finite number (allowed: > 0 and <= 1,000,000)"
    )
    with pytest.raises(PlanError, match=r"key 'delay_s': 1e\+308 is too large"):
        Rule.from_spec("stage=MAIL,action=delay,delay_s=1e308")


def test_nan_over_the_api_is_a_400_and_the_plan_stays() -> None:
    async def scenario(ses: FakeSES, client: TestClient) -> None:
        for body in (
            b'{"limits": {"rate_per_s": NaN}}',
            b'{"limits": {"idle_timeout_s": Infinity}}',
            b'{"faults": [{"stage": "MAIL", "action": "delay", "delay_s": 1e308}]}',
        ):
            response = await client.put("/api/plan", data=body, headers=JSON)
            assert response.status == 400, body
        plan = await (await client.get("/api/plan")).json()  # valid JSON: no bare NaN
        assert plan == {"profile": "plain", "seed": 0}

    run_api(scenario)


@pytest.fixture
def listen_nowhere(monkeypatch) -> None:
    """`serve` with its listening step replaced: a plan that is wrongly accepted returns 0 at
    once instead of serving forever."""

    async def accepted(*args: Any) -> int:
        return 0

    monkeypatch.setattr(serve, "_serve", accepted)


@pytest.mark.parametrize(
    ("flag", "key"),
    [
        ("rate_per_s=nan", "limits.rate_per_s"),
        ("idle_timeout_s=inf", "limits.idle_timeout_s"),
        ("max_message_bytes=1e400", "limits.max_message_bytes"),
    ],
)
def test_nan_in_a_limit_flag_is_one_line_naming_the_key(capsys, listen_nowhere, flag, key) -> None:
    assert main(["serve", "--port", "0", "--api-port", "0", "--limit", flag]) == 2
    err = capsys.readouterr().err.strip()
    assert f"key '{key}'" in err and "\n" not in err and "Traceback" not in err, err


def test_a_fault_flag_with_a_huge_delay_is_refused(capsys, listen_nowhere) -> None:
    code = main(["serve", "--port", "0", "--fault", "stage=MAIL,action=delay,delay_s=1e308"])
    assert code == 2
    assert "key 'delay_s': 1e+308 is too large" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("line", "key"),
    [("latency_s = 1e308", "latency_s"), ("latency_s = nan", "latency_s")],
)
def test_a_scenario_with_an_overflowing_latency_is_refused(tmp_path, line, key) -> None:
    path = tmp_path / "s.toml"
    path.write_text(f'{line}\n[workload]\ncount = 1\n[plan]\nprofile = "ses"\n')
    with pytest.raises(PlanError, match=rf"key '{key}': .* \(allowed: >= 0 and <= 3,600\)"):
        load_scenario(path)


def test_a_scenario_share_of_nan_is_refused(tmp_path) -> None:
    path = tmp_path / "s.toml"
    path.write_text("[workload]\ncount = 1\nattachments = nan\n[plan]\n")
    with pytest.raises(PlanError, match=r"key 'workload.attachments': nan is not a finite"):
        load_scenario(path)


# --- 4. 4xx and one-line errors, not 500s and tracebacks ----------------------------------------

LONG_NUMBER = "9" * 5000


def test_odd_digits_and_long_numbers_in_paths_and_queries_are_4xx_and_quiet(capsys) -> None:
    async def scenario(ses: FakeSES, client: TestClient) -> None:
        await asyncio.to_thread(_send_one, ses)
        for path, status in (
            ("/api/messages/\u00b2/raw", 404),  # superscript two: isdigit() but not int()
            ("/api/messages/\u0661/raw", 404),  # Arabic-Indic one: int() reads it as 1
            (f"/api/messages/{LONG_NUMBER}/raw", 404),
            (f"/api/messages/{LONG_NUMBER}", 404),
            (f"/api/sessions/{LONG_NUMBER}", 404),
            (f"/api/messages?since={LONG_NUMBER}", 400),
            (f"/api/messages?limit={LONG_NUMBER}", 400),
            (f"/api/faults?since={LONG_NUMBER}", 400),
            ("/api/messages?limit=\u00b2", 400),
        ):
            response = await client.get(path)
            assert response.status == status, (path[:60], response.status)
            assert len(await response.read()) < 2000  # the path is not echoed whole

    run_api(scenario)
    assert capsys.readouterr().err == ""


def test_a_deeply_nested_plan_body_is_a_400() -> None:
    async def scenario(ses: FakeSES, client: TestClient) -> None:
        for body in (b"[" * 100_000, b'{"seed": ' + b"[" * 100_000, b'{"seed": 1' + b"0" * 5000):
            response = await client.put("/api/plan", data=body, headers=JSON)
            assert response.status == 400, body[:20]
            assert (await response.json())["status"] == 400

    run_api(scenario)


def test_a_token_that_is_not_utf8_is_a_401() -> None:
    async def go() -> None:
        ses = FakeSES(profile="plain")
        runner_app = create_app(ses, token="right")
        async with ses, TestServer(runner_app) as http:
            reader, writer = await asyncio.open_connection("127.0.0.1", http.port)
            writer.write(
                b"GET /api/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Api-Token: \xff\xfe\x80\r\n"
                b"Connection: close\r\n\r\n"
            )
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), TIMEOUT_S)
            writer.close()
            assert answer.startswith(b"HTTP/1.1 401"), answer[:200]

    asyncio.run(go())


DEEP_SEED = "seed = " + "[" * 5000 + "]" * 5000 + "\n"


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_a_deeply_nested_plan_file_is_one_line(tmp_path, capsys, listen_nowhere, suffix) -> None:
    path = tmp_path / f"plan{suffix}"
    text = DEEP_SEED if suffix == ".toml" else '{"seed": ' + "[" * 5000 + "]" * 5000 + "}"
    path.write_text(text)
    assert main(["serve", "--port", "0", "--api-port", "0", "--plan", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("nested too deeply to be a plan") and "\n" not in err, err[-300:]


def test_a_deeply_nested_scenario_file_is_a_plan_error(tmp_path) -> None:
    path = tmp_path / "deep.toml"
    path.write_text(DEEP_SEED + "[workload]\ncount = 1\n[plan]\n")
    with pytest.raises(PlanError, match="nested too deeply"):
        load_scenario(path)


# --- 5. a scenario's total size -----------------------------------------------------------------


def test_a_scenario_too_large_in_total_is_refused_before_a_body_is_built(tmp_path) -> None:
    path = tmp_path / "huge.toml"
    path.write_text("[workload]\ncount = 100000\nbody_bytes = [67108864, 67108864]\n[plan]\n")
    with pytest.raises(PlanError) as raised:
        load_scenario(path)
    text = str(raised.value)
    assert text.startswith(f"{path}: key 'workload': ") and f"{MAX_TOTAL_BYTES:,}" in text


def test_large_bodies_are_written_when_read_and_the_same_each_time() -> None:
    spec = WorkloadSpec(count=16, seed=4, body_bytes=(6 * MiB, 6 * MiB), attachments=0.0)
    tracemalloc.start()
    try:
        messages = build_messages(spec)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert all(isinstance(m, LazyMessage) for m in messages)
    assert peak < 4 * 6 * MiB  # not 16 bodies of 6 MiB
    first = messages[3].data
    assert len(first) >= 6 * MiB and first == messages[3].data
    assert build_messages(spec)[3].data == first  # same seed, same bytes
    assert b"Message-ID: " + messages[3].id.encode() in first


# --- 6. the idle timer and a message still arriving ---------------------------------------------

IDLE_S = 1.0


def test_a_message_arriving_slowly_is_not_cut_by_the_idle_timer(monkeypatch) -> None:
    # On a clock the test steps (tests/stepped_clock.py): the server's real idle timer, which
    # fires only when the test moves time past it, not when the machine is slow.
    with stepped_server(monkeypatch, profile="ses", rate_per_s=None, idle_timeout_s=IDLE_S) as (
        ses,
        clock,
    ):
        sock, replies = open_session(ses.address)
        # Each line leaves at once: Nagle's algorithm would hold one back until the server's
        # (delayed) ACK of the last, which comes on the wall clock, after the step.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with sock:
            replies.command(b"MAIL FROM:<a@example.com>")
            replies.command(b"RCPT TO:<b@example.com>")
            assert replies.command(b"DATA").startswith(b"354")
            lines = message(1).split(b"\r\n")[:-1] + [b"more"] * 10
            for line in lines:
                sock.sendall(line + b"\r\n")
                # The client's pace: each line well inside the timeout, 7 timeouts in all.
                clock.step(IDLE_S / 2)
            assert clock.elapsed() > 5 * IDLE_S
            sock.sendall(b".\r\n")
            assert replies.next().startswith(b"250 Ok "), "cut by the idle timer"
        assert [m.message_id for m in ses.ledger.messages] == ["<msg-1@test.example>"]


def test_a_client_silent_mid_data_still_gets_the_451_and_the_close() -> None:
    with FakeSES(profile="ses", rate_per_s=None, idle_timeout_s=IDLE_S) as ses:
        sock, replies = open_session(ses.address)
        with sock:
            replies.command(b"MAIL FROM:<a@example.com>")
            replies.command(b"RCPT TO:<b@example.com>")
            assert replies.command(b"DATA").startswith(b"354")
            sock.sendall(b"Subject: half a message\r\n")
            assert replies.next() == b"451 4.4.2 Timeout waiting for data from client."
            assert replies.next() == b""  # closed
        assert ses.ledger.messages == []


# --- 7. a plan change keeps --auth; the live log notes it ---------------------------------------


def test_a_plan_put_over_the_api_keeps_the_auth_the_server_was_started_with() -> None:
    stream = io.StringIO()

    async def scenario(ses: FakeSES, client: TestClient) -> None:
        response = await client.put("/api/plan", json={"profile": "ses", "seed": 3}, headers=JSON)
        assert response.status == 200
        assert (await response.json())["limits"] == {"require_auth": True}

        def mail_without_auth() -> tuple[int, bytes]:
            with smtplib.SMTP(*ses.address, timeout=TIMEOUT_S) as client:
                client.ehlo()
                return client.mail("a@example.com")

        code, text = await asyncio.to_thread(mail_without_auth)
        assert (code, text) == (530, b"Authentication required")
        response = await client.post("/api/reset", headers=JSON)
        assert response.status == 200
        # A plan that says otherwise is obeyed.
        off = {"profile": "ses", "limits": {"require_auth": False}}
        assert (await client.put("/api/plan", json=off, headers=JSON)).status == 200
        assert not ses.plan.resolved_limits().require_auth

    run_api(scenario, profile="ses", auth=("user", "pass"), log=LiveLog(stream))
    lines = stream.getvalue().splitlines()
    assert any("plan changed by PUT /api/plan" in line and '"seed": 3' in line for line in lines)
    assert any("reset by POST /api/reset" in line for line in lines)


# --- 8. garbled addresses -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        b"<<img/src=x/onerror=alert(5)>@x.test>",
        b"<img/src=x/onerror=alert>",  # what smtplib makes of the line above
        b"<a b@example.com>",
        b"<a(comment)@example.com>",
        b"<user@>",
    ],
)
def test_a_garbled_address_gets_ses_syntax_error_and_nothing_is_stored(address) -> None:
    with FakeSES(profile="ses", rate_per_s=None) as ses:
        sock, replies = open_session(ses.address)
        with sock:
            assert replies.command(b"MAIL FROM:" + address) == (
                b"501 Invalid MAIL FROM address provided"
            )
            assert replies.command(b"MAIL FROM:<a@example.com>") == b"250 Ok"
            assert replies.command(b"RCPT TO:" + address) == b"501 Invalid RCPT TO address provided"
            assert replies.command(b"DATA").startswith(b"503")  # no recipient was taken
        assert ses.ledger.messages == []


def test_good_addresses_still_pass() -> None:
    with FakeSES(profile="ses", rate_per_s=None) as ses:
        sock, replies = open_session(ses.address)
        with sock:
            for sender in (b"<>", b'<"a b"@example.com>', b"<x+tag@[192.0.2.1]>", b"a@b.example"):
                assert replies.command(b"MAIL FROM:" + sender) == b"250 Ok", sender
                assert replies.command(b"RSET").startswith(b"250")


@pytest.mark.parametrize("mechanism", [b"LOGIN", b"PLAIN"])
@pytest.mark.parametrize("length", [1_001, 70_000])
def test_an_over_long_auth_answer_gets_rfc_4954s_reply_once(mechanism, length, caplog) -> None:
    # aiosmtpd answered `500 Error: (ValueError) Separator is found, but chunk is longer than
    # limit`, logged a traceback, and read the rest of a longer answer as commands.
    with FakeSES(profile="ses", auth=("user", "secret")) as ses:
        sock, replies = open_session(ses.address)
        with sock:
            assert replies.command(b"AUTH " + mechanism).startswith(b"334")
            sock.sendall(b"A" * length + b"\r\n")
            assert replies.command(b"NOOP") == b"500 5.5.6 Authentication Exchange line is too long"
            assert replies.next() == b"250 Ok"  # the NOOP's: nothing more came of the long line
            assert replies.command(b"AUTH PLAIN AHVzZXIAc2VjcmV0").startswith(b"235")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# --- 9. a user's run of the plugin is quiet -----------------------------------------------------

USER_TEST = textwrap.dedent(
    """
    import smtplib
    import socket

    from harness import FakeSES


    def test_send(fake_ses):
        host, port = fake_ses.endpoint.host, fake_ses.endpoint.port
        with smtplib.SMTP(host, port) as client:
            client.sendmail("a@example.com", ["b@example.com"], b"Subject: x\\r\\n\\r\\nhi\\r\\n")


    def test_auth_and_a_broken_starttls():
        with FakeSES(profile="ses", tls="starttls", auth=("user", "pass")) as ses:
            with ses.endpoint.connect() as client:  # STARTTLS, then AUTH
                client.sendmail("a@example.com", ["b@example.com"], b"Subject: y\\r\\n\\r\\n")
            with socket.create_connection(ses.address) as sock:
                sock.sendall(b"EHLO x\\r\\nSTARTTLS\\r\\n")
                received = b""
                while b"220 Ready" not in received:
                    received += sock.recv(4096)
                sock.sendall(b"this is not a TLS ClientHello")
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(4096):
                    pass
            ses.ledger.wait_for(lambda ledger: not any(s.open for s in ledger.sessions), 30)
    """
)
NOISE = (
    '"asyncio_default_fixture_loop_scope" is unset',
    "login_data is deprecated",
    "Traceback (most recent call last)",
    "warnings summary",
)


def test_a_users_run_of_the_plugin_is_quiet(pytester) -> None:
    pytester.makepyfile(test_user=USER_TEST)
    # -p no:logging: log records go where they go in a project that configures no logging
    # (stderr), instead of into pytest's capture; -rA prints every captured stream.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:logging", "-rA")
    result.assert_outcomes(passed=2)
    output = "\n".join(result.outlines + result.errlines)
    found = [noise for noise in NOISE if noise in output]
    assert found == [], output
