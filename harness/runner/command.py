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
``HARNESS_TIME_SCALE``   the time scale below, for clients that pace or back off themselves
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
- ``time_scale`` (default 1): a client in another process cannot share the harness's virtual
  clock, so command cases run on the real clock, and ``time_scale = k`` makes SES's time-based
  limits k times faster so throttling scenarios finish quickly. Exactly this is scaled:
  ``rate_per_s`` is multiplied by k (the bucket keeps its unscaled size, one second of SES's
  rate, unless the plan sets ``burst``), ``idle_timeout_s`` and the ``delay_s``/``stall_s`` of
  fault rules are divided by k. Not scaled: message, recipient, size and connection caps, the
  daily quota's count and its 24-hour window, and the client's own timeouts and waits.

The scenario's modelled round trip (`latency_s`) is kept, scaled the same way: the server
takes ``latency_s / k`` real seconds over each command before it answers (one command at a time,
as the virtual clock counts it), so a scenario paces clients as it was written to. The real
time the client and the server take comes on top of it, so the higher the scale, the slower a
client looks in SES's terms: whether it hits a rate limit depends on the machine it runs on.
In command cases every time in the report is in real seconds, and the whole batch is available
when the process starts (burst arrival times are not modelled).
"""

from __future__ import annotations

import contextlib
import dataclasses
import email
import email.policy
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from harness.core.errors import PlanError
from harness.core.plan import Delay, Plan, Stall
from harness.runner.strategy import Claim, ClaimStatus, OutgoingMessage
from harness.server.clock import Clock, RealClock
from harness.server.endpoint import Endpoint
from harness.server.ledger import Ledger

PREFIX = "cmd"
DEFAULT_TIMEOUT_S = 300.0
KILL_WAIT_S = 10.0  # how long a killed process group may take to exit
#: What a case keeps of the client's stdout and stderr: the end of each, whatever the exit.
OUTPUT_TAIL_CHARS = 4000
_SPEC = re.compile(r"^cmd(?:\[(?P<options>[^\]]*)\])?:(?P<command>.*)$", re.DOTALL)
_OPTIONS = ("time_scale", "timeout_s")
_STATUSES = tuple(s.value for s in ClaimStatus)


def is_command_spec(spec: str) -> bool:
    """True for ``cmd:...`` and ``cmd[...]:...``."""
    return spec.startswith((f"{PREFIX}:", f"{PREFIX}["))


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
        time_scale: float = 1.0,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if not argv:
            raise PlanError("strategy", "cmd: needs a command", allowed="cmd:PROGRAM [ARGS...]")
        self.argv = tuple(argv)
        self.time_scale = time_scale
        self.timeout_s = timeout_s
        self.exit_code: int | None = None
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
            failure = self._run(endpoint, root / "messages", manifest, claims_path, root)
            yield from read_claims(claims_path)
        if failure:
            raise ClientFailed(failure)

    def _run(
        self, endpoint: Endpoint, folder: Path, manifest: Path, claims: Path, root: Path
    ) -> str | None:
        """Run the process to the end or the timeout; a reason when it failed, else None.

        Its stdout and stderr go to files, not pipes (a chatty client never blocks on a full
        pipe, and memory stays flat); the end of each is kept for the report.
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
        stdout_path, stderr_path = root / "stdout.txt", root / "stderr.txt"
        with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
            try:
                process = subprocess.Popen(
                    _argv(self.argv),
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,  # in a file: on the terminal it would garble the progress
                    stderr=stderr,
                    start_new_session=True,  # its own process group: a timeout kills children too
                )
            except OSError as error:
                return f"cannot start {shlex.join(self.argv)}: {error.strerror or error}"
            try:
                self.exit_code = process.wait(timeout=self.timeout_s)
                failure = None
                if self.exit_code != 0:
                    failure = f"{shlex.join(self.argv)} exited with status {self.exit_code}"
            except subprocess.TimeoutExpired:
                self.exit_code, survivors = _kill_group(process)
                failure = (
                    f"{shlex.join(self.argv)} still running after {self.timeout_s:g} s; killed"
                )
                if survivors:
                    failure += (
                        f" ({survivors} of its processes had not exited {KILL_WAIT_S:g} s later)"
                    )
        self.stdout_tail, self.stderr_tail = _tail(stdout_path), _tail(stderr_path)
        if failure and self.stderr_tail:  # its last line; the report shows the whole tail
            failure += f"; stderr ends: {self.stderr_tail.splitlines()[-1]}"
        return failure

    # --- what run_case asks of an out-of-process client ----------------------------------------

    def scaled(self, plan: Plan) -> Plan:
        """`plan` with its time-based limits and waits made `time_scale` times faster."""
        k = self.time_scale
        if k == 1:
            return plan
        limits = plan.resolved_limits()
        overrides: dict[str, Any] = {}
        if limits.rate_per_s is not None:
            overrides["rate_per_s"] = limits.rate_per_s * k
            overrides["burst"] = limits.burst if limits.burst is not None else limits.rate_per_s
        if limits.idle_timeout_s is not None:
            overrides["idle_timeout_s"] = limits.idle_timeout_s / k
        rules = []
        for rule in plan.faults:
            action = rule.action
            if isinstance(action, Delay):
                action = dataclasses.replace(action, delay_s=action.delay_s / k)
            elif isinstance(action, Stall) and action.stall_s is not None:
                action = dataclasses.replace(action, stall_s=action.stall_s / k)
            rules.append(dataclasses.replace(rule, action=action))
        return dataclasses.replace(plan.with_limits(**overrides), faults=tuple(rules))

    def clock(self, latency_s: float) -> PacedClock:
        """The real clock for a case whose scenario models `latency_s` per command."""
        return PacedClock(latency_s / self.time_scale)

    def record(self, claims_from: str) -> dict[str, Any]:
        """The ``command`` entry of the case: what ran, how it ended, whose claims were scored."""
        return {
            "argv": list(self.argv),
            "time_scale": self.time_scale,
            "timeout_s": self.timeout_s,
            "claims": claims_from,
            "exit_code": self.exit_code,
            "stdout_tail": self.stdout_tail,
            "stderr_tail": self.stderr_tail,
        }


class PacedClock(RealClock):
    """Real time, where the server spends `latency_s` on each command before it answers.

    The wait blocks the server's loop, so concurrent connections queue for it: the same model
    as :class:`harness.server.clock.VirtualClock`, where concurrent waits add up.
    """

    def __init__(self, latency_s: float) -> None:
        self.latency_s = latency_s

    def network_delay(self) -> None:
        if self.latency_s > 0:
            time.sleep(self.latency_s)

    def __repr__(self) -> str:
        return f"PacedClock(latency_s={self.latency_s})"


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
    message = email.message_from_bytes(data, policy=email.policy.default)
    body = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    attachments = []
    for number, part in enumerate(message.iter_attachments(), 1):
        stem.parent.mkdir(exist_ok=True)
        path = stem.with_name(f"{stem.name}.{number}.bin")
        path.write_bytes(part.get_payload(decode=True) or b"")
        attachments.append(
            {
                "filename": part.get_filename() or f"attachment-{number}",
                "content_type": part.get_content_type(),
                "file": str(path),
            }
        )
    return {
        "from": str(message.get("From", "")),
        "to": str(message.get("To", "")),
        "subject": str(message.get("Subject", "")),
        "text": body.get_content() if body is not None else "",
        "html": html.get_content() if html is not None else None,
        "attachments": attachments,
    }


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
