"""Shared test configuration: pytester runs our plugin the way a user's project does."""

# In-process pytester runs drop the modules a run imported when it ends. Loading the harness
# here, before any run, keeps one copy of smtplib and of our classes for all of them.
from collections.abc import Callable, Iterator

import pytest

import harness.arrange  # noqa: F401
from tests.serve_process import ServeProcess

pytest_plugins = ["pytester"]


@pytest.fixture
def start() -> Iterator[Callable[..., ServeProcess]]:
    """Start `ses-harness serve` with the given flags; killed at teardown if still running."""
    started: list[ServeProcess] = []

    def make(*args: str) -> ServeProcess:
        server = ServeProcess(*args)
        started.append(server)
        return server

    yield make
    for server in started:
        server.close()
