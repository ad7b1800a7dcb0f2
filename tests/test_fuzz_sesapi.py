"""A bounded fuzz of the SES API (v2 JSON and v1 Query) of `ses-harness serve`, over a real
loopback socket, checked after every example (issue 28).

Each example sends a few requests: a v2 body (a valid SendEmail, SendBulkEmail or raw message
with one part replaced by any JSON value, a string with CR/LF, or thousands of recipients; or
JSON of any shape; or bytes), a v1 form (known and unknown parameters, CR/LF, member lists of
any length), each signed with the server's token as the secret key, sometimes with the wrong
secret, region, service or date, or not at all. After every example:

- no answer was a 5xx, and each error is in its version's format (JSON with x-amzn-ErrorType
  for v2, an <ErrorResponse> for v1);
- nothing reached the server's stderr (no traceback, no "SES API error");
- the server's peak RSS (VmHWM) stays under the stated bound;
- a fresh SMTP client is answered and its message is taken.

`SES_HARNESS_FUZZ_EXAMPLES` sets the number of examples (default 40) and
`SES_HARNESS_FUZZ_FIGURES` names a JSON file for the answers counted by version and status.
"""

from __future__ import annotations

import datetime
import json
import os
import queue
import smtplib
import socket
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import message
from tests.sesapi_requests import SIMPLE, sign

pytest.importorskip("botocore")

TIMEOUT_S = 30.0  # every read is bounded by this; never reached when the server works
EXAMPLES = int(os.environ.get("SES_HARNESS_FUZZ_EXAMPLES", "40"))
FIGURES = os.environ.get("SES_HARNESS_FUZZ_FIGURES")
TOKEN = "fuzz-token"
#: The largest recipient list an example sends: past the fake's 10,000, so both sides of it.
MAX_RECIPIENTS = 12_000
#: How far the server's peak RSS may rise over the run: a 12,000-recipient request and its
#: parsed form are a few MiB; a body kept whole per recipient, or a quadratic copy, is not.
PEAK_GROWTH_MIB = 96
STDERR_ERRORS = ("Traceback", "API error", "Error: (")
V2_PATHS = ["/v2/email/outbound-emails", "/v2/email/outbound-bulk-emails"]


class Server:
    """`python -m harness serve --api-token ...` on port 0, its stdout and stderr read as they
    come."""

    def __init__(self) -> None:
        command = [sys.executable, "-m", "harness", "serve", "--port", "0", "--api-port", "0"]
        command += ["--api-token", TOKEN, "--profile", "plain"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.stderr: list[str] = []
        ready: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._stdout, args=(ready,), daemon=True).start()
        threading.Thread(target=self._stderr, daemon=True).start()
        found = ready.get(timeout=TIMEOUT_S)
        assert found is not None, f"serve exited: {self.stderr}"
        self.smtp = (found["smtp_host"], found["smtp_port"])
        self.api_url = found["api_url"]
        self.api = urllib.parse.urlsplit(self.api_url)
        self.baseline_kib = self.peak_kib()

    def _stdout(self, ready: queue.Queue[dict[str, Any] | None]) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("READY "):
                ready.put(json.loads(line[len("READY ") :]))
        ready.put(None)

    def _stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)

    def peak_kib(self) -> int:
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        raise LookupError("VmHWM")

    def request(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, bytes]:
        """One raw HTTP request: (status, head, body) of the answer; status 0 if none."""
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.api.netloc}"]
        lines += [f"{name}: {value}" for name, value in headers.items() if name != "Host"]
        lines += [f"Content-Length: {len(body)}", "Connection: close"]
        raw = "\r\n".join(lines).encode() + b"\r\n\r\n" + body
        with socket.create_connection((self.api.hostname, self.api.port), TIMEOUT_S) as sock:
            sock.sendall(raw)
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
        head, _, answer = received.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1."):
            return 0, head, answer
        return int(head.split(b" ", 2)[1]), head, answer

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.stop()


# --- what an example sends ----------------------------------------------------------------------

NASTY = ["\r\n", "\n", "\r", "\x00", "é", "=?utf-8?b?w6k=?=", "{{a}}", "@", "<", ">", '"', " "]
nasty_text = st.lists(st.one_of(st.sampled_from(NASTY), st.text(max_size=8)), max_size=6).map(
    "".join
)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | nasty_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(nasty_text, inner, max_size=4),
    max_leaves=12,
)

VALID_V2 = [
    SIMPLE,
    {
        "FromEmailAddress": "app@example.com",
        "Destination": {"ToAddresses": ["a@example.com"], "CcAddresses": ["b@example.com"]},
        "Content": {
            "Simple": {
                "Subject": {"Data": "s", "Charset": "UTF-8"},
                "Body": {"Text": {"Data": "t"}, "Html": {"Data": "<p>h</p>"}},
                "Headers": [{"Name": "X-Tag", "Value": "v"}],
            }
        },
    },
    {
        "FromEmailAddress": "app@example.com",
        "Destination": {"ToAddresses": ["a@example.com"]},
        "Content": {
            "Template": {
                "TemplateContent": {"Subject": "Hi {{name}}", "Text": "Dear {{name}}"},
                "TemplateData": '{"name": "Ann"}',
            }
        },
    },
    {"Content": {"Raw": {"Data": "RnJvbTogYUBleGFtcGxlLmNvbQpUbzogYkBleGFtcGxlLmNvbQoKeA=="}}},
    {
        "FromEmailAddress": "app@example.com",
        "DefaultContent": {
            "Template": {"TemplateContent": {"Subject": "s", "Text": "t"}, "TemplateData": "{}"}
        },
        "BulkEmailEntries": [{"Destination": {"ToAddresses": ["a@example.com"]}}],
    },
]


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value a part can be replaced at."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    parent = copy
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = new
    return copy


@st.composite
def v2_request(draw: st.DrawFn) -> tuple[str, bytes]:
    """A path and a body: mostly a valid request with one part changed (or none)."""
    base = draw(st.sampled_from(VALID_V2))
    path = V2_PATHS[1] if "BulkEmailEntries" in base else V2_PATHS[0]
    if draw(st.integers(0, 9)) == 0:
        path = draw(st.sampled_from(V2_PATHS))
    kind = draw(st.sampled_from(["valid", "mutated", "mutated", "recipients", "any", "raw"]))
    if kind == "raw":
        raw = draw(st.sampled_from([b"[", b'{"a":', b'{"Content": {"Simple": '])) * draw(
            st.integers(1, 50_000)
        )
        return path, draw(st.one_of(st.just(raw), st.binary(max_size=200)))
    if kind == "any":
        return path, json.dumps(draw(json_value)).encode()
    if kind == "valid":
        return path, json.dumps(base).encode()
    if kind == "recipients":
        count = draw(st.integers(0, MAX_RECIPIENTS))
        one = draw(st.sampled_from(["u@example.com", "u@example.com\r\nBcc: e@x", 5, ""]))
        key = draw(st.sampled_from(["ToAddresses", "CcAddresses", "BccAddresses"]))
        where = ("BulkEmailEntries", 0) if "BulkEmailEntries" in base else ()
        body = replaced(base, (*where, "Destination"), {key: [one] * count})
        return path, json.dumps(body).encode()
    where = draw(st.sampled_from(paths(base)))
    return path, json.dumps(replaced(base, where, draw(json_value))).encode()


V1_KEYS = [
    "Source",
    "Destination.ToAddresses.member.1",
    "Destination.CcAddresses.member.1",
    "Message.Subject.Data",
    "Message.Body.Text.Data",
    "Message.Body.Html.Data",
    "ReplyToAddresses.member.1",
    "RawMessage.Data",
    "Destinations.member.1",
    "Version",
]


@st.composite
def v1_body(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200))
    params: dict[str, str] = {
        "Action": draw(st.sampled_from(["SendEmail", "SendRawEmail", "GetSendQuota", "Nope", ""]))
    }
    params.update(
        {
            "Source": "app@example.com",
            "Destination.ToAddresses.member.1": "u@example.com",
            "Message.Subject.Data": "s",
            "Message.Body.Text.Data": "t",
            "RawMessage.Data": "RnJvbTogYUBleGFtcGxlLmNvbQpUbzogYkBleGFtcGxlLmNvbQoKeA==",
        }
    )
    changes = draw(st.dictionaries(st.sampled_from(V1_KEYS) | nasty_text, nasty_text, max_size=4))
    params.update(changes)
    members = draw(st.integers(0, MAX_RECIPIENTS))
    prefix = draw(st.sampled_from(["Destination.ToAddresses", "Destinations", "ReplyToAddresses"]))
    for n in range(2, members + 2):
        params[f"{prefix}.member.{n}"] = "m@example.com"
    return urllib.parse.urlencode(params).encode()


@st.composite
def signing(draw: st.DrawFn) -> dict[str, Any]:
    """How a request is signed: mostly right (the token as the secret key), else one thing off."""
    problem = draw(st.sampled_from([None] * 6 + ["secret", "region", "service", "date"]))
    now = datetime.datetime.now(datetime.UTC)
    options: dict[str, Any] = {"key": "AKIAFUZZ", "secret": TOKEN}
    if problem == "secret":
        options["secret"] = draw(st.text(min_size=1, max_size=10))
    elif problem == "region":
        options["region"] = draw(st.sampled_from(["x", "eu-west-1", "US-EAST-1"]))
    elif problem == "service":
        options["service"] = draw(st.sampled_from(["s3", "email", "SES", "sesv2"]))
    elif problem == "date":
        minutes = draw(st.integers(-(10**6), 10**6))
        options["at"] = now + datetime.timedelta(minutes=minutes)
    return options


AUTH_GARBAGE = ["", "AWS4-HMAC-SHA256", "Bearer " + TOKEN, "AWS4-HMAC-SHA256 Credential=a/b/c/d/e"]


@st.composite
def ses_request(draw: st.DrawFn, api_url: str) -> tuple[str, str, bytes, dict[str, str]]:
    version = draw(st.sampled_from(["v1", "v2"]))
    if version == "v2":
        path, body = draw(v2_request())
        content_type = "application/json"
    else:
        path, body, content_type = "/", draw(v1_body()), "application/x-www-form-urlencoded"
    how = draw(st.sampled_from(["signed"] * 4 + ["garbage", "none"]))
    headers = {"Content-Type": content_type}
    if how == "signed":
        headers = sign(api_url + path, body, content_type=content_type, **draw(signing()))
    elif how == "garbage":
        headers["Authorization"] = draw(st.sampled_from(AUTH_GARBAGE))
        headers["X-Amz-Date"] = draw(st.sampled_from(["20151399T999999Z", "x", "20260101T000000Z"]))
    return version, path, body, headers


# --- the fuzz ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_hostile_ses_api_requests_never_hurt_the_served_harness(server: Server) -> None:
    counts = {"examples": 0, "requests": 0, "accepted": 0}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(requests=st.lists(ses_request(server.api_url), min_size=1, max_size=3))
    def example(requests: list[tuple[str, str, bytes, dict[str, str]]]) -> None:
        counts["examples"] += 1
        for version, path, body, headers in requests:
            status, head, answer = server.request(path, body, headers)
            counts["requests"] += 1
            counts[f"{version} {status}"] = counts.get(f"{version} {status}", 0) + 1
            assert 0 < status < 500, (status, answer[:300], body[:200])
            if status == 200:
                counts["accepted"] += 1
            elif version == "v2":
                assert b"\r\nx-amzn-ErrorType: " in head, head
                assert set(json.loads(answer)) == {"message"}, answer[:300]
            else:  # unsigned forms too: serve's page guard leaves them to the SES API's 403
                assert answer.startswith(b"<ErrorResponse"), answer[:300]
        # A fresh SMTP client is answered, and its message is taken.
        with smtplib.SMTP(*server.smtp, timeout=TIMEOUT_S) as client:
            refused = client.sendmail("a@example.com", ["b@example.com"], message(1))
        assert refused == {}
        grown_mib = (server.peak_kib() - server.baseline_kib) / 1024
        assert grown_mib < PEAK_GROWTH_MIB, f"peak RSS grew by {grown_mib:.0f} MiB"
        errors = [line for line in server.stderr if any(w in line for w in STDERR_ERRORS)]
        assert errors == [], "".join(server.stderr)[-2000:]

    example()
    assert counts["requests"] >= counts["examples"]
    if FIGURES:
        Path(FIGURES).write_text(json.dumps(counts, indent=1, sort_keys=True) + "\n")
