"""A bounded fuzz of the live page's routes of `ses-harness serve`, over a real loopback socket,
checked after every example (issue 28).

The server is given messages first: plain, multipart with an HTML body and attachments, and the
hostile ones of issue 28 (a Content-Type of 8,000 parameters, 5,000 parts, nested comments, a
charset with CR LF). Each example then sends a few of: a GET of any page or API route with any
query (searches of any text, odd and huge numbers, `?wait` with a short timeout), a message, part
or raw view of any number, a plan or a steering panel of any JSON shape, a delete, an event
stream read for its hello and closed or never read, a long-poll left at once. After every
example:

- no answer was a 5xx (a request this test leaves without reading may go unanswered);
- nothing reached the server's stderr (no traceback, no "API error", no "Unhandled exception");
- the server's peak RSS (VmHWM) stays under the stated bound;
- the streams and long-polls this example left are gone from the server (`/api/stats`);
- with the plan put back, a fresh SMTP client is answered and its message is taken.

`SES_HARNESS_FUZZ_EXAMPLES` sets the number of examples (default 40) and
`SES_HARNESS_FUZZ_FIGURES` names a JSON file for the answers counted by route and status.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import smtplib
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import message

TIMEOUT_S = 30.0  # every read is bounded by this; never reached when the server works
EXAMPLES = int(os.environ.get("SES_HARNESS_FUZZ_EXAMPLES", "40"))
FIGURES = os.environ.get("SES_HARNESS_FUZZ_FIGURES")
#: How far the server's peak RSS may rise over the run: the seeded messages' views are a few
#: MiB each; a view parsed without its bounds, or a queue per stream, is not.
PEAK_GROWTH_MIB = 96
STDERR_ERRORS = ("Traceback", "API error", "Unhandled exception")
PLAIN = {"profile": "plain"}


def _message(head: bytes, body: bytes = b"hello\r\n") -> bytes:
    return (
        b"From: a@example.com\r\nTo: b@example.com\r\nSubject: fuzz\r\n" + head + b"\r\n\r\n" + body
    )


#: What the server holds before the examples: their views are what the message routes read.
SEEDED = [
    message(1),
    _message(
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b",
        b"--b\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n"
        b"--c\r\nContent-Type: text/plain; charset=utf-8\r\n\r\ntext\r\n"
        b"--c\r\nContent-Type: text/html\r\n\r\n<p>html<script>x()</script></p>\r\n--c--\r\n"
        b'--b\r\nContent-Type: application/pdf; name="r\xc3\xa9.pdf"\r\n'
        b"Content-Disposition: attachment; filename*=utf-8''r%C3%A9.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n",
    ),
    _message(b"Content-Type: text/plain" + b"".join(b";\r\n p%d=v" % i for i in range(8000))),
    _message(
        b"Content-Disposition: attachment" + b"".join(b";\r\n p%d=v" % i for i in range(8000))
    ),
    _message(
        b"Content-Type: multipart/mixed; boundary=b",
        b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" * 5000 + b"--b--\r\n",
    ),
    _message(b"Content-Type: text/plain; a=b " + b"(\r\n " * 5000),
    _message(b"Content-Type: text/plain; charset*=utf-8''utf-8%0D%0AX-Injected:%201"),
    _message(b"Content-Type: text/html; charset*=utf-8''%00", b"<b>nul</b>\r\n"),
]


class Server:
    """`python -m harness serve` on port 0 (plain profile), its output read as it comes."""

    def __init__(self) -> None:
        command = [sys.executable, "-m", "harness", "serve", "--port", "0", "--api-port", "0"]
        self.process = subprocess.Popen(
            [*command, "--profile", "plain"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stderr: list[str] = []
        ready: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._stdout, args=(ready,), daemon=True).start()
        threading.Thread(target=self._stderr, daemon=True).start()
        found = ready.get(timeout=TIMEOUT_S)
        assert found is not None, f"serve exited: {self.stderr}"
        self.smtp = (found["smtp_host"], found["smtp_port"])
        self.api = urllib.parse.urlsplit(found["api_url"])
        with smtplib.SMTP(*self.smtp, timeout=TIMEOUT_S) as client:
            for data in SEEDED:
                client.sendmail("a@example.com", ["b@example.com"], data)
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

    def connect(self) -> socket.socket:
        return socket.create_connection((self.api.hostname, self.api.port), TIMEOUT_S)

    def raw(self, method: str, target: str, body: bytes | None = None) -> bytes:
        head = [f"{method} {target} HTTP/1.1", f"Host: {self.api.netloc}", "Connection: close"]
        if body is not None:
            head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        return "\r\n".join(head).encode() + b"\r\n\r\n" + (body or b"")

    def request(self, method: str, target: str, body: bytes | None = None) -> int:
        """One request, its whole answer read; the status (0: closed without an answer)."""
        with self.connect() as sock:
            sock.sendall(self.raw(method, target, body))
            received = b""
            while chunk := sock.recv(1 << 16):
                received += chunk
        return int(received.split(b" ", 2)[1]) if received.startswith(b"HTTP/1.") else 0

    def stream(self, read_hello: bool) -> int:
        """An event stream: read until its hello (or not at all), then hung up on."""
        with self.connect() as sock:
            sock.sendall(self.raw("GET", "/api/events"))
            if not read_hello:
                return -1
            received = b""
            while b'"hello"' not in received and not received.startswith(b"HTTP/1.1 503"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                received += chunk
        return int(received.split(b" ", 2)[1]) if received.startswith(b"HTTP/1.") else 0

    def left(self, target: str) -> int:
        """A request sent and its connection closed at once: a long-poll abandoned."""
        with self.connect() as sock:
            sock.sendall(self.raw("GET", target))
        return -1

    def json(self, method: str, target: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        with self.connect() as sock:
            sock.sendall(self.raw(method, target, data))
            received = b""
            while chunk := sock.recv(1 << 16):
                received += chunk
        return json.loads(received.partition(b"\r\n\r\n")[2])

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

NASTY = ["\r\n", "\x00", "é", ":", '"', "'", " ", "%", "&", "=", "+", "\\", "/", "..", "\ud800"]
nasty_text = st.lists(st.one_of(st.sampled_from(NASTY), st.text(max_size=6)), max_size=5).map(
    "".join
)
NUMBERS = [
    "0",
    "1",
    "3",
    "-1",
    "1.5",
    "nan",
    "inf",
    "1e400",
    "9" * 30,
    "\u00b2",
    "\u0661",
    "0x10",
    "",
]
number_text = st.one_of(st.sampled_from(NUMBERS), st.integers(0, 12).map(str))
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | nasty_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(nasty_text, inner, max_size=3),
    max_leaves=8,
)
rule = st.fixed_dictionaries(
    {"stage": st.sampled_from(["MAIL", "RCPT", "EOM", "API"]) | json_value},
    optional={
        "action": st.sampled_from(["reply", "drop", "delay", "stall"]) | json_value,
        "code": st.sampled_from([451, 554, 999]) | json_value,
        "delay_s": json_value,
        "probability": json_value,
        "text": nasty_text,
    },
)
plan = st.fixed_dictionaries(
    {},
    optional={
        "profile": st.sampled_from(["ses", "plain"]) | json_value,
        "seed": json_value,
        "limits": st.dictionaries(
            st.sampled_from(["session_limit", "rate_per_s", "verified", "typo"]), json_value
        )
        | json_value,
        "faults": st.lists(rule | json_value, max_size=2) | json_value,
    },
)
SEARCH_KEYS = ["q", "from", "to", "subject", "text", "session", "status"]
PAGE_KEYS = ["order", "offset", "limit", "since"]


@st.composite
def list_query(draw: st.DrawFn) -> str:
    params: dict[str, str] = {}
    for key in draw(st.lists(st.sampled_from(SEARCH_KEYS), max_size=3, unique=True)):
        params[key] = draw(nasty_text | st.sampled_from(["is:cut", "text:hello", 'subject:"a']))
    for key in draw(st.lists(st.sampled_from(PAGE_KEYS), max_size=2, unique=True)):
        params[key] = draw(number_text | st.sampled_from(["newest", "oldest"]))
    if draw(st.booleans()):
        params["wait"] = draw(number_text)
        params["timeout"] = draw(st.sampled_from(["0", "0.05", "0.2", "nan", "301", "x"]))
    return "/api/messages?" + urllib.parse.urlencode(params, errors="surrogatepass")


#: The seeded messages, mostly; some numbers that name none.
message_number = st.one_of(
    st.integers(1, len(SEEDED)).map(str),
    st.integers(1, len(SEEDED)).map(str),
    number_text.map(lambda n: urllib.parse.quote(n, safe="")),
)
#: Deletes leave the seeded messages alone (the views need them): the ones sent after them.
deleted_number = st.one_of(
    st.integers(len(SEEDED) + 1, len(SEEDED) + 50).map(str),
    st.sampled_from([n for n in NUMBERS if n not in ("0", "1", "3")]).map(
        lambda n: urllib.parse.quote(n, safe="")
    ),
)
view = st.one_of(
    st.builds(lambda n: f"/api/messages/{n}", message_number),
    st.builds(lambda n: f"/api/messages/{n}/raw", message_number),
    st.builds(
        lambda n, k, d: f"/api/messages/{n}/parts/{k}" + ("?download=1" if d else ""),
        message_number,
        st.one_of(st.integers(0, 8).map(str), number_text.map(urllib.parse.quote)),
        st.booleans(),
    ),
)
others = st.sampled_from(
    [
        "/",
        "/web/app.js",
        "/web/style.css",
        "/web/../../etc/passwd",
        "/web/nothing",
        "/api/stats",
        "/api/plan",
        "/api/steering",
        "/api/sessions",
        "/api/sessions?transcript=0&limit=2",
        "/api/sessions/1",
        "/api/sessions/999",
        "/api/faults?since=1&limit=3",
        "/api/nothing",
    ]
)
action = st.one_of(
    # The message views thrice as often as the rest: they read the hostile seeded messages.
    *[st.tuples(st.just("get"), view)] * 3,
    st.tuples(st.just("get"), list_query()),
    st.tuples(st.just("get"), others),
    st.tuples(st.just("put"), st.tuples(st.sampled_from(["/api/plan"]), plan | json_value)),
    st.tuples(
        st.just("put"),
        st.tuples(
            st.just("/api/steering"),
            st.fixed_dictionaries({"plan": plan | json_value}, optional={"off": json_value})
            | json_value,
        ),
    ),
    st.tuples(st.just("delete"), deleted_number),
    st.tuples(st.just("stream"), st.booleans()),
    st.tuples(
        st.just("left"), st.sampled_from(["/api/messages?wait=1000000&timeout=300", "/api/events"])
    ),
)


# --- the fuzz ------------------------------------------------------------------------------------


def _settled(server: Server) -> dict[str, int]:
    """The page clients the server holds, once the ones an example left have gone."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        page = server.json("GET", "/api/stats")["page"]
        # This request is the only client left: no stream, no wait.
        if (page["event_streams"], page["waits"]) == (0, 0) or time.monotonic() > deadline:
            return page
        time.sleep(0.02)


def test_hostile_requests_to_every_page_route_never_hurt_the_served_harness(server: Server) -> None:
    answers: collections.Counter[str] = collections.Counter()
    counts = {"examples": 0}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(actions=st.lists(action, min_size=1, max_size=4))
    def example(actions: list[tuple[str, Any]]) -> None:
        counts["examples"] += 1
        for kind, args in actions:
            if kind == "get":
                status = server.request("GET", args)
                route = args.split("?")[0]
            elif kind == "put":
                path, body = args
                data = json.dumps(body, default=str).encode()  # NaN too: a 400 to give
                status = server.request("PUT", path, data)
                route = path
            elif kind == "delete":
                status = server.request("DELETE", f"/api/messages/{args}", b"{}")
                route = "DELETE /api/messages/{n}"
            elif kind == "stream":
                status = server.stream(read_hello=args)
                route = "/api/events"
            else:
                status = server.left(args)
                route = "left " + args.split("?")[0]
            answers[f"{route[:40]} {status}"] += 1
            assert status != 0 and status < 500, (kind, args, status)
        page = _settled(server)
        assert (page["event_streams"], page["waits"]) == (0, 0), page
        assert server.json("PUT", "/api/plan", PLAIN)["profile"] == "plain"
        with smtplib.SMTP(*server.smtp, timeout=TIMEOUT_S) as client:
            client.sendmail("a@example.com", ["b@example.com"], message(counts["examples"]))
        grown_mib = (server.peak_kib() - server.baseline_kib) / 1024
        assert grown_mib < PEAK_GROWTH_MIB, f"peak RSS grew by {grown_mib:.0f} MiB"
        errors = [line for line in server.stderr if any(w in line for w in STDERR_ERRORS)]
        assert errors == [], "".join(server.stderr)[-2000:]

    example()
    if FIGURES:
        figures = {
            **counts,
            "peak_growth_mib": round((server.peak_kib() - server.baseline_kib) / 1024, 1),
            "answers": dict(answers.most_common()),
        }
        Path(FIGURES).write_text(json.dumps(figures, indent=1) + "\n")
