"""Command strategies: a client in any language, run as a process and scored like a built-in.

``--strategy 'cmd:node send.js'`` runs ``node send.js`` (split like a shell would, run without
one, in the current directory) once per case. The harness hands it the batch as files and the
server in environment variables, and reads back what it believes happened:

=======================  ========================================================================
``SMTP_HOST``            ``127.0.0.1``
``SMTP_PORT``            the fake server's port
``SMTP_TLS``             ``none``, ``starttls`` or ``implicit``
``SMTP_USER``            the AUTH user name, empty when the server wants none
``SMTP_PASSWORD``        its password, empty when the server wants none
``SMTP_CA_FILE``         the CA certificate to trust for TLS, empty without TLS
``SES_API_URL``          the SES HTTP API of the same account (an SDK's ``endpoint_url``), with
                         ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and ``AWS_REGION``
                         to sign with
``HARNESS_MESSAGES_DIR`` a folder of ``00001.eml`` ... (CRLF line ends, sent as they are)
``HARNESS_MANIFEST``     a JSON list, in batch order, of
                         ``{"id": "<Message-ID>", "sender": ..., "recipients": [...], "file": ...}``
                         (`file` is an absolute path into ``HARNESS_MESSAGES_DIR``), and the
                         parts an application builds a message from: ``from``, ``to``,
                         ``subject``, ``text``, ``html`` (or null), ``attachments`` (a list of
                         ``{"filename", "content_type", "file"}``)
``HARNESS_CLAIMS``       a file to append claims to, one JSON object a line:
                         ``{"id": "<Message-ID>", "status": "sent"|"failed", "code": 421,
                         "text": "..."}`` (`code` and `text` optional: the reply that decided a
                         failure; ``"not_attempted"`` and ``"uncertain"``, for a client that
                         cannot know whether the server kept it, are allowed too)
``HARNESS_TIME_SCALE``   the time scale below (the client's clocks already run at it)
=======================  ========================================================================

Messages are matched by their Message-ID header, not by order, so a pooled client may send them
in any order; a client that builds its own message must keep the harness's Message-ID. A later
claim for a message replaces an earlier one, and unclaimed messages count as never attempted.
A client that claims nothing at all (and exits 0) is scored on the server's side alone: each
message is taken to be what the server told the client (sent when a copy was acknowledged with a
250; failed otherwise), the case says ``"claims": "server"``, and silently lost mail cannot show.

Options go in brackets after ``cmd``: ``cmd[time_scale=10,timeout_s=120]:python send.py``.

- ``timeout_s`` (default 300): wall seconds the process may run; then it and its children are
  killed and the case reports an error with the tail of its stderr (kept whenever it fails).
- ``time_scale`` (default :data:`DEFAULT_TIME_SCALE`): one clock for the case, k times faster
  than the wall. A client in another process cannot share the harness's virtual clock, so the
  server runs on a :class:`harness.base.clock.ScaledClock` (every limit, window, delay, stall
  and idle timer as the plan has it, in SES seconds, k times faster on the wall), and the client
  runs under libfaketime at the same k, started at the server clock's time
  (:mod:`harness.runner.faketime`): its sleeps, backoffs and timeouts are k times shorter on the
  wall and the same in SES seconds, so both sides agree on how much time has passed. A 20-minute
  backoff takes a minute at scale 20. ``time_scale=1`` is real time. Without libfaketime (not
  Linux, not installed) the case runs at scale 1 and says how to install it.

Every time in the report of a command case (``timeline``, ``virtual_elapsed_s``) is in SES
seconds, on that clock, and the ``command`` record says the scale it ran at. The scenario's
modelled round trip (``latency_s``) is paid by the server on each command before it answers.
The CPU the client and the server take is not scaled (each CPU second is k SES seconds), so a
busy client looks slower at a higher scale: after each case :mod:`harness.runner.pace` checks
that the client kept up, and when it did not the case says so and suggests a lower scale. The
whole batch is available when the process starts (burst arrival times are not modelled).
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import functools
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.base.clock import Clock, ScaledClock
from harness.base.endpoint import Endpoint
from harness.base.ledger import Ledger
from harness.core.errors import PlanError
from harness.runner import faketime
from harness.runner.pace import Pace
from harness.runner.strategy import Claim, ClaimStatus, OutgoingMessage

PREFIX = "cmd"
DEFAULT_TIMEOUT_S = 300.0
#: The scale a command case runs at unless told: measured, not guessed (bench/time_scale.py,
#: docs/performance.md). The conformance table at 20x on this 2-core machine under a load of
#: about 10 had pace suggest 3x to 14x, median 8x, and at 20x a 10 s idle timeout (0.5 wall
#: seconds) cut 3 of nodemailer's 1,000 sessions in an untimed scenario.
DEFAULT_TIME_SCALE = 8.0
KILL_WAIT_S = 10.0  # how long a killed process group may take to exit
#: What a case keeps of the client's stdout and stderr: the end of each, whatever the exit.
OUTPUT_TAIL_CHARS = 4000
_SPEC = re.compile(r"^cmd(?:\[(?P<options>[^\]]*)\])?:(?P<command>.*)$", re.DOTALL)
_OPTIONS = ("time_scale", "timeout_s")
_STATUSES = tuple(s.value for s in ClaimStatus)


class ClientFailed(RuntimeError):
    """The client process exited non-zero, timed out, or wrote claims that cannot be read."""


class CommandStrategy:
    """A client process as a strategy; build it from a spec with :meth:`from_spec`.

    >>> CommandStrategy.from_spec("cmd[time_scale=10]:node send.js").argv
    ('node', 'send.js')
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        time_scale: float = DEFAULT_TIME_SCALE,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if not argv:
            raise PlanError("strategy", "cmd: needs a command", allowed="cmd:PROGRAM [ARGS...]")
        self.argv = tuple(argv)
        self.time_scale_asked = time_scale
        self.library = faketime.find_library() if time_scale != 1 else None
        # What the case runs at: the scale asked for, when libfaketime can give it to the client.
        self.time_scale = time_scale if self.library is not None else 1.0
        self.timeout_s = timeout_s
        self.exit_code: int | None = None
        self.pace: Pace | None = None
        self._ledger: Ledger | None = None  # the case's, to see the client's first contact
        #: When the process started, on the case's clock: its own clock starts there too.
        self.started_at_s: float | None = None
        self.stdout_tail = ""
        self.stderr_tail = ""
        # What `ses-harness run` shows as the strategy's description.
        self.__doc__ = f"The command {shlex.join(self.argv)}, run as a client process."

    @classmethod
    def from_spec(cls, spec: str) -> CommandStrategy:
        """Parse ``cmd[key=value,...]:COMMAND``; bad options are a PlanError naming them."""
        found = _SPEC.match(spec)
        if found is None:
            raise PlanError("strategy", f"{spec!r} is not a command strategy", allowed=_FORM)
        try:
            argv = shlex.split(found.group("command"))
        except ValueError as error:
            raise PlanError("strategy", f"{spec!r}: cannot split the command: {error}") from None
        options = _options(found.group("options") or "")
        return cls(argv, **options)

    # --- the run -----------------------------------------------------------------------------

    def __call__(
        self, messages: Sequence[OutgoingMessage], endpoint: Endpoint, clock: Clock
    ) -> Iterator[Claim]:
        """Write the batch, run the process, and yield its claims (then raise if it failed)."""
        with tempfile.TemporaryDirectory(prefix="ses-harness-cmd-") as folder:
            root = Path(folder)
            manifest, claims_path = _write_batch(list(messages), root)
            failure = self._run(endpoint, root / "messages", manifest, claims_path, root, clock)
            yield from read_claims(claims_path)
        if failure:
            raise ClientFailed(failure)

    def _run(
        self,
        endpoint: Endpoint,
        folder: Path,
        manifest: Path,
        claims: Path,
        root: Path,
        clock: Clock,
    ) -> str | None:
        """Run the process to the end or the timeout; a reason when it failed, else None.

        Its stdout and stderr go to files, not pipes (a chatty client never blocks on a full
        pipe, and memory stays flat); the end of each is kept for the report. Its clocks start
        at `clock`'s time, at this strategy's scale.
        """
        env = {
            **os.environ,
            "SMTP_HOST": endpoint.host,
            "SMTP_PORT": str(endpoint.port),
            "SMTP_TLS": endpoint.tls.value,
            "SMTP_USER": endpoint.username or "",
            "SMTP_PASSWORD": endpoint.password or "",
            "SMTP_CA_FILE": endpoint.ca_file or "",
            # The SES HTTP API of the same account, for clients on an AWS SDK.
            "SES_API_URL": endpoint.api_url or "",
            "AWS_ACCESS_KEY_ID": endpoint.aws_access_key_id or "",
            "AWS_SECRET_ACCESS_KEY": endpoint.aws_secret_access_key or "",
            "AWS_REGION": endpoint.region,
            "AWS_DEFAULT_REGION": endpoint.region,
            "AWS_EC2_METADATA_DISABLED": "true",  # never look for instance credentials
            "HARNESS_MESSAGES_DIR": str(folder),
            "HARNESS_MANIFEST": str(manifest),
            "HARNESS_CLAIMS": str(claims),
            "HARNESS_TIME_SCALE": f"{self.time_scale:g}",
        }
        self.pace = None
        stdout_path, stderr_path = root / "stdout.txt", root / "stderr.txt"
        with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
            start = _Moment.now()
            self.started_at_s = clock.now()  # the last moment: the client's clock starts here
            if self.library is not None:
                env = faketime.environment(env, self.library, self.started_at_s, self.time_scale)
            contact = _FirstContact()  # watching before the start: no contact can slip by
            if self._ledger is not None:
                contact.stop = self._ledger.watch(contact.heard)
            try:
                try:
                    process = subprocess.Popen(
                        _argv(self.argv),
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=stdout,  # in a file: on the terminal it would garble the progress
                        stderr=stderr,
                        start_new_session=True,  # its own group: a timeout kills children too
                    )
                except OSError as error:
                    return f"cannot start {shlex.join(self.argv)}: {error.strerror or error}"
                contact.pid = process.pid
                self.exit_code, client_cpu_s, client_queued_s, timed_out = _wait(
                    process, self.timeout_s
                )
            finally:
                contact.stop()
            failure = None
            if not timed_out:
                end = _Moment.now(client_cpu_s, client_queued_s)
                self.pace = _pace(self.time_scale, start, contact.moment or start, end)
                if self.exit_code != 0:
                    failure = f"{shlex.join(self.argv)} exited with status {self.exit_code}"
            else:
                _, survivors = _kill_group(process)
                if self.library is not None:
                    faketime.clean_up(process.pid)
                failure = (
                    f"{shlex.join(self.argv)} still running after {self.timeout_s:g} s; killed"
                )
                if survivors:
                    failure += (
                        f" ({survivors} of its processes had not exited {KILL_WAIT_S:g} s later)"
                    )
                if self.time_scale != 1:  # see harness.runner.faketime for what hangs there
                    failure += (
                        f" (at time_scale {self.time_scale:g}: if it waits on a thread with a "
                        "timeout, or is a Go program, run it with time_scale=1)"
                    )
        self.stdout_tail, self.stderr_tail = _tail(stdout_path), _tail(stderr_path)
        if failure and self.stderr_tail:  # its last line; the report shows the whole tail
            failure += f"; stderr ends: {self.stderr_tail.splitlines()[-1]}"
        return failure

    # --- what run_case asks of an out-of-process client ----------------------------------------

    def watch(self, ledger: Ledger) -> None:
        """Read the case's `ledger` to see when the client first reached the server: the pace
        check counts from there (a client's start-up is no time SES sees)."""
        self._ledger = ledger

    def clock(self, latency_s: float) -> ScaledClock:
        """The case's clock: this strategy's scale, `latency_s` SES seconds per command."""
        return ScaledClock(self.time_scale, latency_s=latency_s)

    def note(self) -> str | None:
        """One line on the clock when the case needs it: no libfaketime, or a client that did
        not keep up (see :mod:`harness.runner.pace`)."""
        if self.time_scale_asked != 1 and self.library is None:
            return faketime.INSTALL_HINT
        return self.pace.note() if self.pace is not None else None

    def record(self, claims_from: str) -> dict[str, Any]:
        """The ``command`` entry of the case: what ran, how it ended, whose claims were scored."""
        return {
            "argv": list(self.argv),
            "time_scale": self.time_scale,
            "time_scale_asked": self.time_scale_asked,
            "clock": "libfaketime" if self.library is not None else "real",
            "pace": self.pace.to_dict() if self.pace is not None else None,
            "note": self.note(),
            "timeout_s": self.timeout_s,
            "claims": claims_from,
            "exit_code": self.exit_code,
            "stdout_tail": self.stdout_tail,
            "stderr_tail": self.stderr_tail,
        }


def read_claims(path: Path) -> list[Claim]:
    """The claims a client wrote, one JSON object a line; blank lines are skipped."""
    if not path.exists():
        return []
    claims = []
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                claims.append(_claim(line, f"HARNESS_CLAIMS line {number}"))
    return claims


def claims_from_ledger(messages: Sequence[OutgoingMessage], ledger: Ledger) -> list[Claim]:
    """Claims for a client that made none: what the server told it about each message.

    Sent when the server acknowledged a copy with a 250; failed when a copy was stored but the
    connection was cut before the 250, or when the server saw the message at RCPT TO or later
    without storing it; never attempted otherwise.
    """
    acknowledged = {m.message_id for m in ledger.messages if m.acknowledged}
    stored = {m.message_id for m in ledger.messages}
    reached = set()  # (sender, recipient) of every RCPT TO: workload messages differ in both
    for session in ledger.sessions:
        sender = ""
        for line in session.transcript:
            if line.direction == ">" and line.text[:10].upper() == "MAIL FROM:":
                sender = _path(line.text).lower()
            elif line.direction == ">" and line.text[:8].upper() == "RCPT TO:":
                reached.add((sender, _path(line.text).lower()))
    claims = []
    for message in messages:
        first = (
            message.sender.lower(),
            message.recipients[0].lower() if message.recipients else "",
        )
        if message.id in acknowledged:
            claims.append(Claim(message.id, ClaimStatus.SENT, 250, "(inferred from the server)"))
        elif message.id in stored or first in reached:
            claims.append(Claim(message.id, ClaimStatus.FAILED, None, "(inferred from the server)"))
        else:
            claims.append(Claim(message.id, ClaimStatus.NOT_ATTEMPTED))
    return claims


# --- internals -------------------------------------------------------------------------------

_FORM = "cmd:COMMAND or cmd[time_scale=K,timeout_s=S]:COMMAND"


def _options(text: str) -> dict[str, float]:
    options: dict[str, float] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or key not in _OPTIONS:
            raise PlanError(f"strategy.cmd[{key}]", "unknown option", allowed=_OPTIONS)
        try:
            value = float(raw)
        except ValueError:
            raise PlanError(f"strategy.cmd[{key}]", f"{raw!r} is not a number") from None
        if not value > 0 or value == float("inf"):
            raise PlanError(f"strategy.cmd[{key}]", f"{raw} must be positive", allowed="> 0")
        options[key] = value
    return options


def _tail(path: Path) -> str:
    """The last `OUTPUT_TAIL_CHARS` of a file, read from its end, stripped ("" if empty)."""
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - OUTPUT_TAIL_CHARS * 4))  # UTF-8: <= 4 bytes
        text = handle.read().decode("utf-8", "replace")
    return text[-OUTPUT_TAIL_CHARS:].strip()


def _argv(argv: tuple[str, ...]) -> list[str]:
    # "python" means the harness's own interpreter, so a client runs with the packages the
    # harness was installed with (e.g. the `clients` extra), venv activated or not.
    if argv[0] in ("python", "python3"):
        return [sys.executable, *argv[1:]]
    return list(argv)


def _write_batch(messages: list[OutgoingMessage], root: Path) -> tuple[Path, Path]:
    folder = root / "messages"
    folder.mkdir()
    entries = []
    for index, message in enumerate(messages, 1):
        path = folder / f"{index:05d}.eml"
        path.write_bytes(message.data)
        entries.append(
            {
                "id": message.id,
                "sender": message.sender,
                "recipients": list(message.recipients),
                "file": str(path),
                **_fields(message.data, root / "attachments" / f"{index:05d}"),
            }
        )
    manifest = root / "manifest.json"
    manifest.write_text(json.dumps(entries, ensure_ascii=False, indent=1), encoding="utf-8")
    claims = root / "claims.jsonl"
    claims.touch()
    return manifest, claims


def _fields(data: bytes, stem: Path) -> dict[str, Any]:
    """The parts an application builds a message from, for clients that do not send raw bytes.

    Attachments are written to an ``attachments`` folder (``00001.1.bin`` ...), to pass by path.
    """
    fields, attachments = _parts(data) if len(data) <= _PARTS_CACHED_BYTES else _parse(data)
    written = []
    for number, (filename, content_type, payload) in enumerate(attachments, 1):
        stem.parent.mkdir(exist_ok=True)
        path = stem.with_name(f"{stem.name}.{number}.bin")
        path.write_bytes(payload)
        written.append({"filename": filename, "content_type": content_type, "file": str(path)})
    return {**fields, "attachments": written}


#: Messages up to this size keep their parsed parts for the next case of the same batch (every
#: client of a conformance run, every command strategy of a matrix): parsing with the modern
#: email policy was a third of a command case's own time. Larger ones are parsed each time.
_PARTS_CACHED_BYTES = 256 * 1024


@functools.lru_cache(maxsize=8192)
def _header(name: str, value: str) -> Any:
    return email.policy.default.header_fetch_parse(name, value)


class _SharedHeaders(email.policy.EmailPolicy):
    """The default policy, with each header's parse kept for the next message that has it.

    A batch's messages share most header values (Content-Type, MIME-Version, the sender), and
    ``get_body``/``iter_attachments`` fetch a part's Content-Type many times over: parsing
    1,000 messages took 2.3 s with the default policy and 0.95 s with this one (0.36 s when
    the values were seen before), with the same results. Header objects are immutable.
    """

    def header_fetch_parse(self, name: str, value: Any) -> Any:
        if hasattr(value, "name"):  # already parsed (set by a program, not read from bytes)
            return value
        return _header(name, value)


_POLICY = _SharedHeaders()


def _parse(data: bytes) -> tuple[dict[str, Any], tuple[tuple[str, str, bytes], ...]]:
    message = email.message_from_bytes(data, policy=_POLICY)
    body = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    attachments = tuple(
        (
            part.get_filename() or f"attachment-{number}",
            part.get_content_type(),
            part.get_payload(decode=True) or b"",
        )
        for number, part in enumerate(message.iter_attachments(), 1)
    )
    fields = {
        "from": str(message.get("From", "")),
        "to": str(message.get("To", "")),
        "subject": str(message.get("Subject", "")),
        "text": body.get_content() if body is not None else "",
        "html": html.get_content() if html is not None else None,
    }
    return fields, attachments


_parts = functools.lru_cache(maxsize=4096)(_parse)


def _claim(line: str, where: str) -> Claim:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as error:
        raise ClientFailed(f"{where}: not JSON: {error}") from None
    if not isinstance(data, dict):
        raise ClientFailed(f"{where}: a claim is a JSON object, got {line.strip()[:60]!r}")
    message_id, status = data.get("id"), data.get("status")
    code, text = data.get("code"), data.get("text")
    if not isinstance(message_id, str):
        raise ClientFailed(f"{where}: 'id' must be the message's Message-ID, a string")
    if status not in _STATUSES:
        raise ClientFailed(f"{where}: 'status' is {status!r}; allowed: {', '.join(_STATUSES)}")
    if code is not None and (not isinstance(code, int) or isinstance(code, bool)):
        raise ClientFailed(f"{where}: 'code' must be an integer reply code or null")
    if text is not None and not isinstance(text, str):
        raise ClientFailed(f"{where}: 'text' must be a string or null")
    return Claim(message_id, ClaimStatus(status), code, text)


def _path(command: str) -> str:
    found = re.search(r"<([^>]*)>", command)
    return found.group(1) if found else command.partition(":")[2].strip().split(" ")[0]


def _wait(process: subprocess.Popen[bytes], timeout_s: float) -> tuple[int, float, float, bool]:
    """Wait for `process` to exit, killing its group after `timeout_s`: its exit code, the CPU
    seconds it and its waited-for children used, the seconds its main thread waited for a
    core, and whether it was killed.

    ``os.waitid(WNOWAIT)`` leaves it a zombie whose scheduler statistics can still be read;
    ``os.wait4`` then reaps it with its resource usage (``Popen.wait`` keeps none, and polls
    when given a timeout); a timer thread does the killing.
    """
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    timer = threading.Timer(timeout_s, kill)
    timer.daemon = True
    timer.start()
    try:
        if hasattr(os, "waitid"):
            os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        queued_s = _queued_s(f"/proc/{process.pid}/schedstat")
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        timer.cancel()
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_utime + usage.ru_stime, queued_s, killed.is_set()


def _queued_s(path: str) -> float:
    """Seconds a thread was runnable but waited for a core (Linux schedstat; 0 without it).

    On a shared machine this, not CPU time, is what stretches a run most: at scale k each
    second of it is k SES seconds too.
    """
    try:
        with open(path, encoding="ascii") as stats:
            return int(stats.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def _harness_queued_s() -> float:
    """`_queued_s` summed over this process's threads (the fake server's among them)."""
    tasks = Path("/proc/self/task")
    if not tasks.is_dir():
        return 0.0
    return sum(_queued_s(str(task / "schedstat")) for task in tasks.iterdir())


@dataclass(frozen=True)
class _Moment:
    """What the harness and the client had spent by a moment of a command case."""

    wall_s: float
    harness_cpu_s: float
    harness_queued_s: float
    client_cpu_s: float = 0.0
    client_queued_s: float = 0.0

    @classmethod
    def now(cls, client_cpu_s: float = 0.0, client_queued_s: float = 0.0) -> _Moment:
        return cls(
            time.monotonic(),
            time.process_time(),
            _harness_queued_s(),
            client_cpu_s,
            client_queued_s,
        )


class _FirstContact:
    """A ledger watcher that notes the moment the client first reached the server (a
    connection, or an SES API request), with what the client had spent getting there, and then
    stops watching: the server's later records do not pass through it."""

    def __init__(self) -> None:
        self.pid: int | None = None  # set once the process has started
        self.moment: _Moment | None = None
        self.stop: Callable[[], None] = lambda: None  # set to the ledger's, once watching

    def heard(self, kind: str, record: Any) -> None:
        if self.moment is None and kind in ("session", "message", "fault"):
            pid = self.pid  # None only if it connected before Popen returned: nothing spent
            self.moment = _Moment.now(
                _cpu_s(f"/proc/{pid}/stat") if pid else 0.0,
                _queued_s(f"/proc/{pid}/schedstat") if pid else 0.0,
            )
            self.stop()


def _pace(time_scale: float, start: _Moment, contact: _Moment, end: _Moment) -> Pace:
    """The pace of the run from the client's first contact to its exit (its start-up before
    that is not time SES sees, and at a high scale it would dwarf a short run)."""
    return Pace(
        time_scale,
        wall_s=end.wall_s - contact.wall_s,
        client_cpu_s=max(0.0, end.client_cpu_s - contact.client_cpu_s),
        server_cpu_s=max(0.0, end.harness_cpu_s - contact.harness_cpu_s),
        client_queued_s=max(0.0, end.client_queued_s - contact.client_queued_s),
        server_queued_s=max(0.0, end.harness_queued_s - contact.harness_queued_s),
        start_up_s=contact.wall_s - start.wall_s,
    )


def _cpu_s(path: str) -> float:
    """User + system seconds of a process and its reaped children, from /proc/PID/stat (0
    without procfs, or once it has gone)."""
    try:
        with open(path, encoding="ascii", errors="replace") as stat:
            fields = stat.read().rpartition(")")[2].split()
        return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return 0.0


def _kill_group(process: subprocess.Popen[bytes]) -> tuple[int, int]:
    """SIGKILL `process` and its group, and wait until none of them runs any more.

    A kill is delivered asynchronously, and a process with much memory takes a while to exit, so
    the group is watched until it is empty. A zombie waiting for a parent other than us has
    exited, so it counts as gone. Returns the exit code and how many processes still ran after
    `KILL_WAIT_S` (only one stuck in the kernel can).
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    exit_code = process.wait()
    deadline = time.monotonic() + KILL_WAIT_S
    while (running := _running_in_group(process.pid)) and time.monotonic() < deadline:
        time.sleep(0.002)  # a condition wait: the kernel gives no notice for another's child
    return exit_code, running


def _running_in_group(pgid: int) -> int:
    """How many processes of group `pgid` have not exited (zombies have)."""
    proc = Path("/proc")
    if not proc.is_dir():  # no procfs: a group with only zombies left counts as running
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return 0
        return 1
    running = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it exited while we looked
            continue
        # pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses
        state, _ppid, pgrp = stat[stat.rindex(")") + 2 :].split(" ", 3)[:3]
        if int(pgrp) == pgid and state != "Z":
            running += 1
    return running
