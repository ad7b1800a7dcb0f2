"""Running the conformance table's rows: each client on each scenario, through a command
strategy, in worker processes; a row is the scorer's numbers, the sentence and the clock."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.base.ledger import Ledger
from harness.core.errors import PlanError
from harness.runner.command.spec import DEFAULT_TIME_SCALE, DEFAULT_TIMEOUT_S
from harness.runner.conformance import toolchains
from harness.runner.conformance.sentence import run_failed, story
from harness.runner.conformance.versions import nodemailer_version, version
from harness.runner.matrix import TRANSCRIPT_LIMIT_LINES, case_timeout, run_case
from harness.runner.scenario import Scenario
from harness.runner.workers import Lost, Task, supervise

#: Wall seconds a client may take for one row, three times a command's default: a table's rows
#: run several at a time, and Jakarta Mail's connection a message took 150 s for session-cap's
#: 1,000 messages alone, and over 300 s beside two other rows, on this 2-core machine at a load
#: of 17-26 (the timing of a row is the scorer's, on the case's clock, never this).
CLIENT_TIMEOUT_S = 3 * DEFAULT_TIMEOUT_S
DEFAULT_SCENARIOS = ("session-cap", "throttling", "drop-after-accept", "random-4xx")
#: Faults that fire by the clock: where one fired, the scale can move the counts.
TIMED_FAULTS = frozenset({"rate_per_s", "idle_timeout_s", "greylist"})


def default_workers() -> int:
    """Runs at a time: one more than the cores this process may use.

    A run is a client process and a server thread that spend much of their time waiting (on
    the scaled round trips, the rate, the client's start-up), so one run per core leaves cores
    idle. Measured on a 2-core machine, the six SMTP clients' 24 runs took 63-70 s two at a
    time, 50-52 s three at a time and 57.5 s four at a time (docs/performance.md, section 6).
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return cores + 1


@dataclass(frozen=True)
class Client:
    """A library and how the script in ``clients/`` runs it, or a user's own command."""

    name: str
    argv: tuple[str, ...]  # ours: the script relative to the clients folder; "python" is ours
    #: "python", "django", "node", a language of harness.runner.conformance.toolchains ("php",
    #: "ruby", "perl", "go", "java"), or "own": a user's command, run as given
    needs: str
    #: It sends through SES's HTTP API, not SMTP (so never to another provider).
    api: bool = False

    @classmethod
    def own(cls, text: str) -> Client:
        """A user's client from ``NAME=COMMAND`` (the command split like a shell would)."""
        name, sep, command = text.partition("=")
        if not sep or not name.strip() or not command.strip():
            raise PlanError("client", f"{text!r} is not NAME=COMMAND", allowed=_CLIENT_FORM)
        try:
            argv = tuple(shlex.split(command))
        except ValueError as error:
            raise PlanError("client", f"{text!r}: cannot split the command: {error}") from None
        return cls(name.strip(), argv, "own")

    def spec(
        self, clients_dir: Path, time_scale: float | None, timeout_s: float | None = None
    ) -> str:
        """The command strategy; without `time_scale`, each scenario's (harness.runner.scale);
        without `timeout_s`, the command strategy's default."""
        if self.needs == "own":
            argv = list(self.argv)
        elif self.needs in toolchains.INSTALL:
            _, script, *args = self.argv
            argv = toolchains.command(self.needs, clients_dir, script, args)
        else:
            program, script, *args = self.argv
            argv = [program, str(clients_dir / script), *args]
        options = [f"time_scale={time_scale:g}"] if time_scale is not None else []
        options += [f"timeout_s={timeout_s:g}"] if timeout_s is not None else []
        return f"cmd{'[' + ','.join(options) + ']' if options else ''}:{shlex.join(argv)}"


_CLIENT_FORM = "a built-in client's name, or NAME=COMMAND for your own"


CLIENTS = (
    Client("smtplib", ("python", "smtplib_batch.py"), "python"),
    Client("aiosmtplib", ("python", "aiosmtplib_batch.py"), "python"),
    Client("Django", ("python", "django_batch.py"), "django"),
    Client("Django, fail_silently", ("python", "django_batch.py", "--fail-silently"), "django"),
    Client("nodemailer", ("node", "nodemailer/send.js"), "node"),
    Client("nodemailer, pooled", ("node", "nodemailer/send.js", "--pool"), "node"),
    # The SES API's clients (the aws extra; clients/aws-sdk after npm ci).
    Client("django-ses", ("python", "django_ses_batch.py"), "django", api=True),
    Client("django-ses, v2", ("python", "django_ses_batch.py", "--v2"), "django", api=True),
    Client("AWS SDK v3 (Node)", ("node", "aws-sdk/send.js"), "node", api=True),
    # Other languages, from Debian's packages (harness.runner.conformance.toolchains).
    Client("PHPMailer", ("php", "phpmailer/send.php"), "php"),
    Client("PHPMailer, SMTPKeepAlive", ("php", "phpmailer/send.php", "--keepalive"), "php"),
    Client("Ruby mail", ("ruby", "ruby-mail/send.rb"), "ruby"),
    Client("Ruby mail, smtp_connection", ("ruby", "ruby-mail/send.rb", "--connection"), "ruby"),
    Client("Go net/smtp", ("go", "go-smtp"), "go"),
    Client("Go net/smtp, one Client", ("go", "go-smtp", "-one-client"), "go"),
    Client("Jakarta Mail", ("java", "jakarta-mail"), "java"),
    Client("Jakarta Mail, one Transport", ("java", "jakarta-mail", "--transport"), "java"),
    Client("Perl Email::Sender", ("perl", "perl-email-sender/send.pl"), "perl"),
    Client(
        "Perl Email::Sender, Persistent",
        ("perl", "perl-email-sender/send.pl", "--persistent"),
        "perl",
    ),
)


@dataclass(frozen=True)
class Row:
    client: str
    scenario: str
    score: dict[str, Any]
    story: str
    #: The case's clock: the scale it ran at, and a line when it needs one (see command.note).
    time_scale: float = 1.0
    note: str | None = None
    #: The client did not keep up with the scale (see harness.runner.pace) in a run where the
    #: clock decides counts (see _clock_decided): not the real-time counts; the table marks them.
    stretched: bool = False


def check_clients(clients: Sequence[Client], clients_dir: Path) -> None:
    """A clear error, with the install command, for a client that cannot run here."""
    ours = [c for c in clients if c.needs != "own"]
    if ours and not (clients_dir / "smtplib_batch.py").is_file():
        raise PlanError(
            "clients-dir",
            f"{clients_dir} is not the clients/ folder of ses-fault-harness (needed for "
            f"{ours[0].name}; run from a checkout, or give only your own --client NAME=COMMAND)",
        )
    for client in clients:
        if client.needs == "django" and version("django") is None:
            raise PlanError(
                "client", f"{client.name} needs Django", allowed="pip install -e '.[clients]'"
            )
        if client.needs == "node" and (
            shutil.which("node") is None or nodemailer_version(clients_dir) is None
        ):
            raise PlanError(
                "client",
                f"{client.name} needs node and nodemailer",
                allowed=f"(cd {clients_dir / 'nodemailer'} && npm ci)",
            )
        if client.needs in toolchains.INSTALL:
            toolchains.check(client.name, client.needs, clients_dir)


def runnable(
    clients: Sequence[Client], clients_dir: Path
) -> tuple[list[Client], list[tuple[Client, str]]]:
    """The clients that can run here, and the others with what they lack and how to install it
    (for the default set: a machine without Java still makes the rest of the table)."""
    ready, left_out = [], []
    for client in clients:
        try:
            check_clients([client], clients_dir)
        except PlanError as error:
            how = f": {error.allowed}" if error.allowed else ""
            left_out.append((client, f"{error.problem}{how}"))
        else:
            ready.append(client)
    return ready, left_out


def run_rows(
    clients: Sequence[Client],
    scenarios: Sequence[Scenario],
    *,
    clients_dir: Path,
    time_scale: float | None = DEFAULT_TIME_SCALE,
    seed: int | None = None,
    workers: int = 1,
    on_row: Callable[[Row], None] | None = None,
) -> list[Row]:
    """Run every client on every scenario; a row per run, clients first.

    The runs go to `workers` worker processes (one at least; each run is a client process and
    a server thread, mostly waiting: on SES's round trips, its rate, the client's start-up), as
    `run_matrix`'s cases do, so a run whose harness side hangs or dies is a failed row. A worker
    takes the next client of a scenario it has begun, so that each builds and parses a batch
    once. `on_row` hears of rows as they finish; the list is in table order.
    """
    check_clients(clients, clients_dir)
    for needs in sorted({c.needs for c in clients} & set(toolchains.SOURCES)):
        toolchains.build(needs, clients_dir)  # once, here, before the workers need it
    jobs = [(client, scenario) for client in clients for scenario in scenarios]
    tasks = [
        Task(
            index,
            (client, scenario, clients_dir, time_scale, seed),
            _timeout(scenario),
            f"{scenario.name}/{client.needs}",
        )
        for index, (client, scenario) in enumerate(jobs)
    ]
    # The largest batches first, so that the longest runs do not start last; a worker keeps to
    # one scenario and one kind of client while it can (the batch is built and parsed once per
    # worker), and the slow Node runs of one scenario are not all queued behind its Python ones.
    tasks.sort(key=lambda task: -jobs[task.index][1].workload.count)
    found: list[Row | None] = [None] * len(jobs)
    with contextlib.closing(
        supervise("harness.runner.conformance.rows:run_row", tasks, workers)
    ) as done:
        for index, outcome in done:
            if isinstance(outcome, Lost):
                client, scenario = jobs[index]
                outcome = _failed_row(client, scenario, outcome.reason)
            found[index] = outcome
            if on_row:
                on_row(outcome)
    return [row for row in found if row is not None]


def run_row(
    client: Client,
    scenario: Scenario,
    clients_dir: Path,
    time_scale: float | None,
    seed: int | None,
    *,
    started: Callable[[], None] | None = None,
) -> Row:
    """One client on one scenario: its score, the sentence read from the ledger, its clock."""
    ledger = Ledger(transcript_limit_lines=TRANSCRIPT_LIMIT_LINES)
    spec = client.spec(clients_dir, time_scale, CLIENT_TIMEOUT_S)
    case = run_case(scenario, spec, seed, ledger=ledger, started=started)
    clock = case.get("command") or {}
    return Row(
        client.name,
        scenario.name,
        case["score"],
        story(case, ledger),
        clock.get("time_scale", 1.0),
        clock.get("note"),
        stretched=_depends_on_time(case),
    )


def _depends_on_time(case: dict[str, Any]) -> bool:
    """Whether the case's counts depend on time (``case["clock"]``, see
    :mod:`harness.runner.scale`): another run may count otherwise."""
    return bool((case.get("clock") or {}).get("depends_on_time"))


def _timeout(scenario: Scenario) -> float:
    # The client's own timeout (CLIENT_TIMEOUT_S) kills it first; this is for a case whose
    # harness side hangs.
    return case_timeout(scenario) + CLIENT_TIMEOUT_S


def _failed_row(client: Client, scenario: Scenario, reason: str) -> Row:
    """The row of a run whose worker died or hung: no copy counted, the reason as the story."""
    count = scenario.workload.count
    score = {
        "messages": count,
        "delivered_once": 0,
        "given_up": 0,
        "abandoned": count,
        "silently_lost": 0,
        "duplicated": 0,
        "misreported": 0,
        "uncertain": 0,
        "rejected_reported": 0,
    }
    return Row(client.name, scenario.name, score, run_failed(reason))
