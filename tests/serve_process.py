"""`ses-harness serve` as a user runs it: a subprocess, its banner, its HTTP API, its exit."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from typing import Any

# Bounds so that a broken server fails the test instead of hanging it; never reached when it works.
START_TIMEOUT_S = 30.0
EXIT_TIMEOUT_S = 30.0


class ServeProcess:
    """Start `python -m harness serve --port 0 --api-port 0 ARGS...` and read its READY line."""

    def __init__(
        self, *args: str, env: dict[str, str] | None = None, subcommand: str = "serve"
    ) -> None:
        command = [sys.executable, "-m", "harness", subcommand, "--port", "0", "--api-port", "0"]
        self.process = subprocess.Popen(
            [*command, *args],
            env=None if env is None else {**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.ready = self._wait_ready()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def _wait_ready(self) -> dict[str, Any]:
        while True:
            try:
                line = self._queue.get(timeout=START_TIMEOUT_S)
            except queue.Empty:
                self.process.kill()
                raise AssertionError(f"no READY line; output so far: {self.lines}") from None
            if line is None:
                stderr = self.process.stderr.read() if self.process.stderr else ""
                raise AssertionError(f"serve exited before READY: {self.lines}\n{stderr}")
            self.lines.append(line)
            if line.startswith("READY "):
                return json.loads(line[len("READY ") :])

    @property
    def smtp(self) -> tuple[str, int]:
        return self.ready["smtp_host"], self.ready["smtp_port"]

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One HTTP request to the API; returns the status and the decoded JSON (or bytes)."""
        data = None if body is None else json.dumps(body).encode()
        headers = {} if method in ("GET", "HEAD") else {"Content-Type": "application/json"}
        request = urllib.request.Request(
            self.ready["api_url"] + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=EXIT_TIMEOUT_S) as response:
                status, payload, kind = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, payload, kind = error.code, error.read(), error.headers
        if kind.get_content_type() == "application/json":
            return status, json.loads(payload)
        return status, payload

    def stop(self, signum: int = signal.SIGINT) -> tuple[int, str, str]:
        """Send `signum`, wait for the exit; returns the exit code, all stdout and stderr."""
        self.process.send_signal(signum)
        return self.wait()

    def wait(self) -> tuple[int, str, str]:
        code = self.process.wait(timeout=EXIT_TIMEOUT_S)
        while (line := self._queue.get(timeout=EXIT_TIMEOUT_S)) is not None:
            self.lines.append(line)
        stderr = self.process.stderr.read() if self.process.stderr else ""
        return code, "\n".join(self.lines), stderr

    def close(self) -> None:
        """Kill it if a test left it running."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
