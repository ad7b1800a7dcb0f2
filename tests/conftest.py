"""Shared test configuration: pytester runs our plugin the way a user's project does."""

# In-process pytester runs drop the modules a run imported when it ends. Loading the harness
# here, before any run, keeps one copy of smtplib and of our classes for all of them. The same
# goes for cryptography, which the server loads only when TLS or an SNS signature needs it: its
# Rust core keeps the classes it first saw for the life of the process, so after a run that
# loaded it, a signature made with the classes imported again is refused ("Algorithm must be a
# registered hash algorithm"; tests/test_server_memory.py shows it).
import os
from collections.abc import Callable, Iterator

import cryptography.hazmat.primitives.asymmetric.padding
import cryptography.x509  # noqa: F401
import pytest
import trustme  # noqa: F401
from hypothesis import HealthCheck, settings

import harness.plugin.arrange  # noqa: F401
from tests.serve_process import ServeProcess

pytest_plugins = ["pytester"]

# Hypothesis times each example (a 200 ms deadline, a health check on slow generation). Those are
# timed assertions, and a loaded machine fails them at random: the suite makes none. In CI the
# examples are also derived from each test, not drawn at random, so a red run replays exactly.
_UNTIMED = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("untimed", **_UNTIMED)
settings.register_profile("ci", derandomize=True, print_blob=True, **_UNTIMED)
settings.load_profile("ci" if os.environ.get("CI") else "untimed")


@pytest.fixture
def start() -> Iterator[Callable[..., ServeProcess]]:
    """Start `ses-harness serve` with the given flags; killed at teardown if still running."""
    started: list[ServeProcess] = []

    def make(*args: str, env: dict[str, str] | None = None) -> ServeProcess:
        server = ServeProcess(*args, env=env)
        started.append(server)
        return server

    yield make
    for server in started:
        server.close()
