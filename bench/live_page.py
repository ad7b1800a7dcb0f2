"""The live page and its API with many messages: first render and search in headless Chromium
with 10,000 messages in a `ses-harness serve`, the API's search at 100,000, and the latency
of `GET /api/messages?wait=N`.

    python bench/live_page.py [--messages 10000] [--api-messages 100000] [--quick] [--json F]

1. page: a real `serve` process gets `--messages` over SMTP (4 connections); Chromium opens the
   page (first render: navigation start to the first 50 rows drawn and the stream connected),
   then runs searches from the search box (submit to the list redrawn), each 5 times. Times
   are read in the page (`performance.now()`), the median is printed.
2. api: `--api-messages` records in an in-process ledger, searched through the API (a page of
   50, newest first), median of 5 requests each.
3. wait: a `?wait=N` already satisfied (request to answer), and one that is satisfied while it
   waits (from the end of the SMTP transaction that brings message N to the wait's answer;
   the ledger records a message before its 250, so this can be below zero), 50 times each.

Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import smtplib
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from harness import FakeSES
from harness.console.app import create_app

SEARCHES = (
    ("a word (sender, recipients, subject, ids)", "invoice"),
    ("subject:", "subject:'invoice 77'"),
    ("to: and is:delivered", "to:customer42@ is:delivered"),
    ("text: (body text, first time)", "text:'reference 4242 '"),
    ("text: (body text, cached)", "text:'reference 4243 '"),
)


def body(number: int) -> bytes:
    kind = ("Invoice", "Welcome", "Password reset", "Order shipped")[number % 4]
    return (
        f"From: shop@example.com\r\nTo: customer{number % 1000}@example.com\r\n"
        f"Subject: {kind} {number}\r\nMessage-ID: <bench-{number}@example.com>\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Hello, this is message {number} with reference {number} in its body.\r\n"
        + "Some more text to make a realistic body. " * 20
        + "\r\n"
    ).encode()


def fill(host: str, port: int, count: int, connections: int = 4) -> float:
    began = time.perf_counter()

    def one(numbers: range) -> None:
        with smtplib.SMTP(host, port) as client:
            for number in numbers:
                client.sendmail("shop@example.com", [f"c{number}@example.com"], body(number))

    threads = [
        threading.Thread(target=one, args=(range(start, count, connections),))
        for start in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began


def start_serve() -> tuple[subprocess.Popen[str], dict[str, Any]]:
    command = [sys.executable, "-m", "harness", "serve", "--port", "0", "--api-port", "0"]
    process = subprocess.Popen([*command, "--profile", "plain"], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("READY "):
            # Keep reading its live log, or the pipe fills and the server blocks.
            threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
            return process, json.loads(line[len("READY ") :])
    raise SystemExit("serve exited before READY")


def page_figures(api_url: str, chromium: str | None, rounds: int = 5) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    figures: dict[str, float] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        renders = []
        for _ in range(rounds):
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(api_url + "/")
            # Selectors, not wait_for_function: the page's CSP forbids the eval that needs.
            page.wait_for_selector("#messages tbody tr:nth-child(50)")
            page.wait_for_selector("#status.ok")
            renders.append(page.evaluate("performance.now()"))
            page.close()
        figures["first render (ms)"] = statistics.median(renders)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(api_url + "/")
        page.wait_for_selector("#status.ok")
        for label, query in SEARCHES:
            times = []
            for round_ in range(1 if "first time" in label else rounds):
                page.fill("#search", "" if round_ % 2 else "x")  # a change each round
                page.evaluate(
                    "(q) => { delete document.body.dataset.searchDone; const total = "
                    "document.getElementById('messages-total');"
                    "const seen = new MutationObserver(() => { window.searchDone = "
                    "performance.now(); document.body.dataset.searchDone = '1'; "
                    "seen.disconnect(); });"
                    "total.textContent = '…';"
                    "seen.observe(total, {childList: true, characterData: true, subtree: true});"
                    "document.getElementById('search').value = q;"
                    "window.searchStart = performance.now();"
                    "document.getElementById('search-form').requestSubmit(); }",
                    query,
                )
                page.wait_for_selector("body[data-search-done]", state="attached")
                times.append(page.evaluate("window.searchDone - window.searchStart"))
            figures[f"search {label} (ms)"] = statistics.median(times)
        browser.close()
    return figures


def api_figures(count: int, rounds: int = 5) -> dict[str, float]:
    """Search through the API over `count` records made straight in the ledger."""

    async def main() -> dict[str, float]:
        ses = FakeSES(profile="plain", ledger=None)
        ledger = ses.ledger
        ledger.memory_budget_bytes = 1 << 40
        session = ledger.open_session(1, "127.0.0.1:1", 0.0, time.time())
        for number in range(count):
            ledger.accept(
                session,
                ses_id=f"id-{number}",
                mail_from="shop@example.com",
                rcpt_tos=(f"customer{number % 1000}@example.com",),
                data=body(number),
                at=float(number),
                wall_at=time.time(),
                acknowledged=True,
            )
        out: dict[str, float] = {}
        async with TestClient(TestServer(create_app(ses))) as client:
            for label, query in (("newest 50, no search", ""), *SEARCHES):
                times = []
                for _ in range(1 if "first time" in label else rounds):
                    began = time.perf_counter()
                    response = await client.get(
                        "/api/messages", params={"q": query, "order": "newest", "limit": "50"}
                    )
                    await response.read()
                    times.append((time.perf_counter() - began) * 1000)
                    assert response.status == 200
                out[f"API {label} at {count:,} (ms)"] = statistics.median(times)
        return out

    return asyncio.run(main())


def wait_figures(api_url: str, host: str, port: int, present: int, rounds: int = 50) -> dict:
    def get(path: str) -> float:
        with urllib.request.urlopen(api_url + path, timeout=60) as answer:
            answer.read()
        return time.perf_counter()

    satisfied = []
    for _ in range(rounds):
        began = time.perf_counter()
        done = get(f"/api/messages?wait={present}&order=newest&limit=1")
        satisfied.append((done - began) * 1000)
    woken = []
    with smtplib.SMTP(host, port) as client:
        for number in range(present, present + rounds):
            answered: list[float] = []
            path = f"/api/messages?wait={number + 1}&order=newest&limit=1&timeout=30"
            waiter = threading.Thread(target=lambda p=path, out=answered: out.append(get(p)))
            waiter.start()
            time.sleep(0.02)  # let the wait reach the server first (a benchmark, not a test)
            client.sendmail("shop@example.com", ["c@example.com"], body(number))
            sent = time.perf_counter()
            waiter.join()
            woken.append((answered[0] - sent) * 1000)
    return {
        f"wait already satisfied, {present:,} messages: request to answer (ms)": statistics.median(
            satisfied
        ),
        "wait satisfied while waiting: 250 to answer (ms), median": statistics.median(woken),
        "wait satisfied while waiting: 250 to answer (ms), max": max(woken),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--api-messages", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="500 and 5,000 messages")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument(
        "--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser")
    )
    args = parser.parse_args()
    if args.quick:
        args.messages, args.api_messages = 500, 5_000
    figures: dict[str, float] = {}
    process, ready = start_serve()
    try:
        took = fill(ready["smtp_host"], ready["smtp_port"], args.messages)
        print(f"filled {args.messages:,} messages over SMTP in {took:.1f} s", flush=True)
        figures.update(page_figures(ready["api_url"], args.chromium))
        figures.update(
            wait_figures(ready["api_url"], ready["smtp_host"], ready["smtp_port"], args.messages)
        )
    finally:
        process.terminate()
        process.wait(timeout=30)
    figures.update(api_figures(args.api_messages))
    for name, value in figures.items():
        print(f"{name:70} {value:9.1f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
