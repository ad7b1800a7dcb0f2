"""The image (Containerfile) run under podman, for the container tests: which image, why none
can run here, and one container in the foreground with its log read as `serve`'s banner.

The image is built once, before the tests (`container/build`; .ci/run does it and names it in
SES_HARNESS_IMAGE); the tests never build it, so that `-n auto` workers do not build it twice.
Containers use the host's network (podman's own networks need more than this machine allows)
and bind 127.0.0.1 only, on ports the kernel just handed out.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_IMAGE = "localhost/ses-harness:dev"
#: Where .ci/run writes why podman cannot run here, when it cannot.
UNAVAILABLE = ROOT / "build" / "container-unavailable.txt"
CONTAINERS_CONF = ROOT / "container" / "containers.conf"
START_TIMEOUT_S = 60.0
EXIT_TIMEOUT_S = 60.0
TOKEN = "container-token"


def podman_env() -> dict[str, str]:
    conf = os.environ.get("CONTAINERS_CONF", str(CONTAINERS_CONF))
    return {**os.environ, "CONTAINERS_CONF": conf}


def podman(*args: str, check: bool = True, timeout: float = EXIT_TIMEOUT_S) -> str:
    done = subprocess.run(
        ["podman", *args], capture_output=True, text=True, env=podman_env(), timeout=timeout
    )
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: exit {done.returncode}: {done.stderr}")
    return done.stdout


def image_or_skip() -> str:
    """The image to test, or a skip that says why there is none."""
    if UNAVAILABLE.exists():
        pytest.skip(UNAVAILABLE.read_text().strip())  # why, as container/build said it
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (Debian: podman, runc, debootstrap; container/build)")
    image = os.environ.get("SES_HARNESS_IMAGE") or DEFAULT_IMAGE
    if subprocess.run(["podman", "image", "exists", image], env=podman_env()).returncode != 0:
        if os.environ.get("SES_HARNESS_IMAGE"):  # CI named it: its absence is a failure
            raise AssertionError(f"SES_HARNESS_IMAGE={image} does not exist")
        pytest.skip(f"no image {image}: build it with container/build")
    return image


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ContainerProcess:
    """`podman run --rm` in the foreground: its output is serve's, READY line and all."""

    def __init__(self, image: str, env: dict[str, str] | None = None, data: Path | None = None):
        self.name = f"ses-harness-test-{uuid.uuid4().hex[:12]}"
        self.smtp_port, self.api_port = free_port(), free_port()
        variables = {
            "SES_HARNESS_HOST": "127.0.0.1",
            "SES_HARNESS_API_HOST": "127.0.0.1",
            "SES_HARNESS_PORT": str(self.smtp_port),
            "SES_HARNESS_API_PORT": str(self.api_port),
            "SES_HARNESS_API_TOKEN": TOKEN,
            **(env or {}),
        }
        command = ["podman", "run", "--rm", "--name", self.name, "--network=host"]
        for key, value in variables.items():
            command += ["-e", f"{key}={value}"]
        if data is not None:
            command += ["-v", f"{data}:/data"]
        self.process = subprocess.Popen(
            [*command, image],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=podman_env(),
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
                self.close()
                raise AssertionError(f"no READY line; output so far: {self.lines}") from None
            if line is None:
                stderr = self.process.stderr.read() if self.process.stderr else ""
                raise AssertionError(f"the container exited before READY: {self.lines}\n{stderr}")
            self.lines.append(line)
            if line.startswith("READY "):
                return json.loads(line[len("READY ") :])

    @property
    def smtp(self) -> tuple[str, int]:
        return self.ready["smtp_host"], self.ready["smtp_port"]

    @property
    def url(self) -> str:
        return self.ready["api_url"]

    def terminate(self) -> tuple[int, str]:
        """SIGTERM to the server in the container (as `docker stop` sends); its exit code and
        everything it printed."""
        podman("kill", "--signal", "TERM", self.name)
        code = self.process.wait(timeout=EXIT_TIMEOUT_S)
        while (line := self._queue.get(timeout=EXIT_TIMEOUT_S)) is not None:
            self.lines.append(line)
        return code, "\n".join(self.lines)

    def close(self) -> None:
        if self.process.poll() is None:
            podman("rm", "--force", "--time", "0", self.name, check=False)
            self.process.wait(timeout=EXIT_TIMEOUT_S)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@contextlib.contextmanager
def running(image: str, **kwargs: Any) -> Iterator[ContainerProcess]:
    container = ContainerProcess(image, **kwargs)
    try:
        yield container
    finally:
        container.close()
