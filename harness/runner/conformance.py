"""The client conformance table: real mail libraries against SES's limits, from real runs.

Each row is one run of an unmodified client library (the thin application scripts in
``clients/`` at the top of the repository) through a command strategy against one scenario.
The numbers are the scorer's; the sentence on each row is read from the same run's ledger: the
first refusal the client met, what it did next on that connection, whether it opened another,
and what it reported for the mail that did not arrive.

>>> replace_section("intro\\n<!-- conformance:start -->\\nold\\n<!-- conformance:end -->\\n", "new")
'intro\\n<!-- conformance:start -->\\nnew\\n<!-- conformance:end -->\\n'
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.base.ledger import FaultRecord, Ledger, SessionRecord
from harness.core.errors import PlanError
from harness.runner.command.spec import DEFAULT_TIME_SCALE, DEFAULT_TIMEOUT_S
from harness.runner.matrix import TRANSCRIPT_LIMIT_LINES, case_timeout, run_case
from harness.runner.scenario import Scenario
from harness.runner.workers import Lost, Task, supervise

START = "<!-- conformance:start -->"
END = "<!-- conformance:end -->"
DEFAULT_SCENARIOS = ("session-cap", "throttling", "drop-after-accept", "random-4xx")
STAGES = {
    "CONNECT": "connect",
    "EHLO": "EHLO",
    "AUTH": "AUTH",
    "MAIL": "MAIL FROM",
    "RCPT": "RCPT TO",
    "DATA": "DATA",
    "EOM": "end of data",
    "RSET": "RSET",
    "QUIT": "QUIT",
    "IDLE": "idle",
}
REPLY_CHARS = 80  # a reply quoted in a sentence is cut here
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
    needs: str  # "python", "django", "node", or "own": a user's command, run as given

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

    def spec(self, clients_dir: Path, time_scale: float) -> str:
        if self.needs == "own":
            argv = list(self.argv)
        else:
            program, script, *args = self.argv
            argv = [program, str(clients_dir / script), *args]
        return f"cmd[time_scale={time_scale:g}]:{shlex.join(argv)}"


_CLIENT_FORM = "a built-in client's name, or NAME=COMMAND for your own"


CLIENTS = (
    Client("smtplib", ("python", "smtplib_batch.py"), "python"),
    Client("aiosmtplib", ("python", "aiosmtplib_batch.py"), "python"),
    Client("Django", ("python", "django_batch.py"), "django"),
    Client("Django, fail_silently", ("python", "django_batch.py", "--fail-silently"), "django"),
    Client("nodemailer", ("node", "nodemailer/send.js"), "node"),
    Client("nodemailer, pooled", ("node", "nodemailer/send.js", "--pool"), "node"),
    # The SES API's clients (the aws extra; clients/aws-sdk after npm ci).
    Client("django-ses", ("python", "django_ses_batch.py"), "django"),
    Client("django-ses, v2", ("python", "django_ses_batch.py", "--v2"), "django"),
    Client("AWS SDK v3 (Node)", ("node", "aws-sdk/send.js"), "node"),
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
        if client.needs == "django" and _version("django") is None:
            raise PlanError(
                "client", f"{client.name} needs Django", allowed="pip install -e '.[clients]'"
            )
        if client.needs == "node" and (
            shutil.which("node") is None or _nodemailer_version(clients_dir) is None
        ):
            raise PlanError(
                "client",
                f"{client.name} needs node and nodemailer",
                allowed=f"(cd {clients_dir / 'nodemailer'} && npm ci)",
            )


def run_rows(
    clients: Sequence[Client],
    scenarios: Sequence[Scenario],
    *,
    clients_dir: Path,
    time_scale: float = DEFAULT_TIME_SCALE,
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
        supervise("harness.runner.conformance:run_row", tasks, workers)
    ) as done:
        for index, outcome in done:
            if isinstance(outcome, Lost):
                client, scenario = jobs[index]
                outcome = _lost_row(client, scenario, outcome.reason)
            found[index] = outcome
            if on_row:
                on_row(outcome)
    return [row for row in found if row is not None]


def run_row(
    client: Client,
    scenario: Scenario,
    clients_dir: Path,
    time_scale: float,
    seed: int | None,
    *,
    started: Callable[[], None] | None = None,
) -> Row:
    """One client on one scenario: its score, the sentence read from the ledger, its clock."""
    ledger = Ledger(transcript_limit_lines=TRANSCRIPT_LIMIT_LINES)
    spec = client.spec(clients_dir, time_scale)
    case = run_case(scenario, spec, seed, ledger=ledger, started=started)
    clock = case.get("command") or {}
    return Row(
        client.name,
        scenario.name,
        case["score"],
        story(case, ledger),
        clock.get("time_scale", 1.0),
        clock.get("note"),
        stretched=_clock_decided(scenario, case, ledger),
    )


def _clock_decided(scenario: Scenario, case: dict[str, Any], ledger: Ledger) -> bool:
    """Whether the client fell behind its scale in a run where the clock decides counts: a
    fault that fires by the clock fired (a throttle, an idle timeout, greylisting), or the
    recipients it tried, at the pace the run would have had in real time, come to more than
    the send rate allows (a stretched client may simply never have met the throttle)."""
    pace = (case.get("command") or {}).get("pace") or {}
    if pace.get("kept_up") is not False:
        return False
    if any(fault.name in TIMED_FAULTS for fault in ledger.faults):
        return True
    rate = scenario.plan.resolved_limits().rate_per_s
    return rate is not None and _recipients_offered(ledger) / max(pace["scale_1_s"], 1e-9) > rate


def _recipients_offered(ledger: Ledger) -> int:
    """Every recipient the client tried: each RCPT TO, and each SES API send's recipients."""
    smtp = sum(
        1
        for session in ledger.sessions
        for line in session.transcript
        if line.direction == ">" and line.text[:4].upper() == "RCPT"
    )
    return smtp + sum(len(m.rcpt_tos) for m in ledger.messages if m.via != "smtp")


def _timeout(scenario: Scenario) -> float:
    # The client's own timeout (command.DEFAULT_TIMEOUT_S) kills it first; this is for a case
    # whose harness side hangs.
    return case_timeout(scenario) + DEFAULT_TIMEOUT_S


def _lost_row(client: Client, scenario: Scenario, reason: str) -> Row:
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
    }
    return Row(client.name, scenario.name, score, f"The run failed: {_cut(reason, 160)}.")


# --- the sentence ------------------------------------------------------------------------------


def story(case: dict[str, Any], ledger: Ledger) -> str:
    """One or two sentences on what the client did, read from the run: its first refusal, what
    came next, and what it reported for the mail that did not arrive."""
    if case["error"] is not None:
        return f"The client failed: {_cut(case['error'], 160)}."
    sessions = ledger.sessions
    faults = ledger.faults
    if not faults and not sessions and ledger.messages:  # through the SES API only
        sends = _count(len(ledger.messages), "API send")
        return f"No refusal in {sends}; {_reports(case)}."
    if not faults:
        told = f"No refusal in {_count(len(sessions), 'session')}"
        if len(sessions) == case["score"]["messages"] > 1:
            told += ", one per message"
        return told + f"; {_reports(case)}."
    first = faults[0]
    if first.session == 0:  # the SES API: a request per send, no connection to tell of
        return _api_story(case, faults, ledger)
    session = next(s for s in sessions if s.number == first.session)
    stored = sum(1 for m in ledger.messages if m.session == first.session and m.at <= first.at)
    later = sum(1 for s in sessions if s.opened_at > first.at)
    where = f"at {STAGES.get(first.stage, first.stage)} in session {first.session}"
    where += f" after {_count(stored, 'message')}" if stored else ", its first message"
    parts = [
        f"First refusal, {where}: {_what(first)}",
        _next(session, first),
        f"{_count(later, 'more session') if later else 'no more sessions'} opened after it",
    ]
    reports = _reports(case)
    return "; ".join(parts) + f". {reports[0].upper()}{reports[1:]}."


def _api_story(case: dict[str, Any], faults: Sequence[FaultRecord], ledger: Ledger) -> str:
    """The SES API's side of a run: the first refusal, how many sends were refused or cut, and
    what the client did with the sends a cut had already stored."""
    first = faults[0]
    api_faults = [f for f in faults if f.session == 0]
    stored = [m for m in ledger.messages if m.via != "smtp" and not m.acknowledged]
    resent = sum(
        1
        for m in stored
        if sum(1 for other in ledger.messages if other.message_id == m.message_id) > 1
    )
    parts = [
        f"First refusal, at API send {first.command}: {_what(first)}",
        f"{_count(len(api_faults), 'API send')} refused or cut in all",
    ]
    if stored:
        parts.append(f"{resent} of the {_count(len(stored), 'send')} cut after storing sent again")
    reports = _reports(case)
    return "; ".join(parts) + f". {reports[0].upper()}{reports[1:]}."


def _what(fault: FaultRecord) -> str:
    if fault.reply:
        return f"`{_cut(fault.reply, REPLY_CHARS)}`"
    if fault.action == "drop_after_accept":
        answer = "its HTTP response" if fault.session == 0 else "its 250"
        return f"the connection cut after the message was stored, before {answer}"
    return "the connection cut without a reply"


def _next(session: SessionRecord, fault: FaultRecord) -> str:
    """What the client sent next on the connection of the refusal, or how that connection ended."""
    commands = [line.text for line in session.transcript if line.direction == ">"]
    later = commands[fault.command :]
    if later:
        verbs = [text.split(" ")[0].upper() for text in later[:3]]
        verbs = ["end of data" if v == "[" or v.startswith("[") else v for v in verbs]
        more = ", ..." if len(later) > 3 else ""
        return f"the client then sent {', '.join(verbs)}{more} on that connection"
    by = session.closed_by or "nobody"
    if by == "server":
        return "the server closed that connection and the client sent nothing more on it"
    return "the client closed that connection without another command"


def _reports(case: dict[str, Any]) -> str:
    """What the client said about the messages that did not arrive exactly once."""
    missed = [m for m in case["messages"] if m["class"] != "delivered_once"]
    if not missed:
        return "every message arrived once and was reported sent"
    groups = Counter(
        (m["claim"], _cut(m["reply"], REPLY_CHARS) if m["reply"] else None) for m in missed
    )
    said = []
    for (claim, reply), number in groups.most_common(3):
        if claim == "sent":
            said.append(f"{number} reported sent")
        elif claim == "failed":
            said.append(f"{number} reported failed" + (f" (`{reply}`)" if reply else ""))
        else:
            said.append(f"{number} never tried")
    if len(groups) > 3:
        said.append(f"{sum(n for _, n in groups.most_common()[3:])} others")
    return "of the mail not delivered exactly once, " + ", ".join(said)


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split()).replace("`", "'")
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


# --- the table ---------------------------------------------------------------------------------


def render(
    rows: Sequence[Row],
    *,
    time_scale: float,
    clients_dir: Path,
    command: str,
    own: Sequence[Client] = (),
) -> str:
    """The generated block: how it was made, the table, and what the columns mean."""
    versions = ", ".join(f"{name} {v}" for name, v in library_versions(clients_dir).items() if v)
    lines = [
        f"Generated by `{command}` on {datetime.date.today():%Y-%m-%d} from real runs "
        f"(ses-fault-harness {_version('ses-fault-harness') or 'unknown'}; {versions}; "
        f"{_clock(rows, time_scale)}, see `harness/runner/command/__init__.py`). "
        "Do not edit by hand.",
        "",
        "| client | scenario | delivered once | lost | duplicated | misreported | what happened |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        s = row.score
        lost = s["given_up"] + s["abandoned"] + s["silently_lost"]
        lost_cell = f"{lost} ({s['silently_lost']} reported sent)" if s["silently_lost"] else lost
        mark = " †" if row.stretched else ""
        lines.append(
            f"| {row.client} | {row.scenario}{mark} | {s['delivered_once']} of {s['messages']} "
            f"| {lost_cell} | {s['duplicated']} | {s['misreported']} | {_cell(row.story)} |"
        )
    lines += [
        "",
        "*lost*: no copy reached the server and the client did not rightly report a permanent "
        "refusal (given up, never tried, or silently lost: reported sent). *misreported*: one "
        "copy arrived but the client reported it failed. "
        + (
            "Each client is a few lines of ordinary application code in `clients/`; the "
            "scenarios are in `scenarios/`."
            if not own
            else "Own clients: "
            + "; ".join(f"{c.name} is `{shlex.join(c.argv)}`" for c in own)
            + "."
        ),
    ]
    stretched = [row for row in rows if row.stretched]
    if stretched:
        slowest = max(row.time_scale for row in stretched)
        lines += [
            "",
            f"† The clock decides part of these counts (the send rate, the idle timeout or "
            f"greylisting), and at {slowest:g}x the client and the server did not keep up with "
            "it: their own CPU, which the scale does not shrink, made the client slower in SES "
            "seconds than it is in real time, so these counts may differ from the real-time "
            "ones (usually: fewer throttles). `--time-scale 1` gives those; "
            "docs/performance.md has both side by side.",
        ]
    return "\n".join(lines)


def _clock(rows: Sequence[Row], time_scale: float) -> str:
    """How the table's cases were timed: one clock for server and client, at which scale."""
    scales = sorted({row.time_scale for row in rows}) or [time_scale]
    if scales == [1.0]:
        return "on the real clock"
    shown = "/".join(f"{k:g}x" for k in scales)
    return f"server and client on one clock {shown} faster than the wall (libfaketime)"


def library_versions(clients_dir: Path) -> dict[str, str | None]:
    return {
        "Python": platform.python_version(),
        "aiosmtplib": _version("aiosmtplib"),
        "Django": _version("django"),
        "nodemailer": _nodemailer_version(clients_dir),
        "django-ses": _version("django-ses"),
        "@aws-sdk/client-sesv2": _node_package_version(
            clients_dir, "aws-sdk", "@aws-sdk/client-sesv2"
        ),
        "node": _node_version(),
    }


def replace_section(text: str, block: str) -> str:
    """`text` with what lies between the conformance markers replaced by `block`; the markers
    are appended when `text` has none."""
    start, end = text.find(START), text.find(END)
    if start == -1 and end == -1:
        separator = (
            "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
        )
        return f"{text}{separator}{START}\n{block}\n{END}\n"
    if start == -1 or end == -1 or end < start:
        raise PlanError("", f"needs {START} before {END}, each once")
    if text.count(START) > 1 or text.count(END) > 1:
        raise PlanError("", f"has more than one {START} or {END}")
    return f"{text[: start + len(START)]}\n{block}\n{text[end:]}"


def write_section(path: Path, block: str) -> None:
    """Rewrite only the marked section of `path` (created with just the section if missing).

    The file is read right before it is written: others may be editing the rest of it.
    """
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        updated = replace_section(text, block)
    except PlanError as error:
        raise error.within(source=str(path)) from None
    path.write_text(updated, encoding="utf-8")


def write_doc(path: Path, block: str) -> None:
    """docs/conformance.md: the same block under a title."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Client conformance\n\n"
        "What real SMTP client libraries do with each message when Amazon SES's limits and\n"
        "faults hit them, scored by ses-fault-harness against the fake server's ledger.\n\n"
        f"{block}\n",
        encoding="utf-8",
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _nodemailer_version(clients_dir: Path) -> str | None:
    package = clients_dir / "nodemailer" / "node_modules" / "nodemailer" / "package.json"
    try:
        return json.loads(package.read_text(encoding="utf-8"))["version"]
    except (OSError, ValueError, KeyError):
        return None


def _node_package_version(clients_dir: Path, folder: str, package: str) -> str | None:
    manifest = clients_dir / folder / "node_modules" / package / "package.json"
    try:
        return json.loads(manifest.read_text(encoding="utf-8"))["version"]
    except (OSError, ValueError, KeyError):
        return None


def _node_version() -> str | None:
    node = shutil.which("node")
    if node is None:
        return None
    done = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip().lstrip("v") or None
