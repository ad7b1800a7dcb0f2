"""The client conformance table: real mail libraries against SES's limits, from real runs.

Each row is one run of an unmodified client library (the thin application scripts in
``clients/`` at the top of the repository) through a command strategy against one scenario.
The numbers are the scorer's; the sentence on each row is read from the same run's ledger: the
first refusal the client met, what it did next on that connection, whether it opened another,
and what it reported for the mail that did not arrive.

The parts: :mod:`~harness.runner.conformance.rows` runs the clients and makes the rows,
:mod:`~harness.runner.conformance.sentence` tells each row's story,
:mod:`~harness.runner.conformance.table` renders the table and writes it into its files,
:mod:`~harness.runner.conformance.providers` renders the second table, by provider,
:mod:`~harness.runner.conformance.versions` finds the versions it names, and
:mod:`~harness.runner.conformance.toolchains` checks, builds and starts the clients in PHP,
Ruby, Perl, Go and Java.
"""

from harness.runner.conformance.providers import PROVIDER_SCENARIOS, render_by_provider
from harness.runner.conformance.rows import (
    CLIENTS,
    DEFAULT_SCENARIOS,
    DEFAULT_TIME_SCALE,
    TIMED_FAULTS,
    Client,
    Row,
    check_clients,
    default_workers,
    run_row,
    run_rows,
    runnable,
)
from harness.runner.conformance.sentence import story
from harness.runner.conformance.table import (
    END,
    START,
    generated,
    render,
    replace_section,
    write_doc,
    write_section,
)
from harness.runner.conformance.versions import library_versions

__all__ = [
    "CLIENTS",
    "DEFAULT_SCENARIOS",
    "DEFAULT_TIME_SCALE",
    "END",
    "PROVIDER_SCENARIOS",
    "START",
    "TIMED_FAULTS",
    "Client",
    "Row",
    "check_clients",
    "default_workers",
    "generated",
    "library_versions",
    "render",
    "render_by_provider",
    "replace_section",
    "run_row",
    "run_rows",
    "runnable",
    "story",
    "write_doc",
    "write_section",
]
