"""The command strategy: a client process, run once per case, as a strategy (see
:mod:`harness.runner.command` for what it is handed and what it writes back)."""

from __future__ import annotations

import dataclasses
import shlex
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from harness.base.clock import Clock, ScaledClock
from harness.base.endpoint import Endpoint
from harness.base.ledger import Ledger
from harness.base.progress import ProgressClock
from harness.core.errors import PlanError
from harness.runner import faketime, scale
from harness.runner.command import process
from harness.runner.command.batch import client_environment, write_batch
from harness.runner.command.claims import ClientFailed, read_claims
from harness.runner.command.inferred import claims_from_ledger
from harness.runner.command.spec import DEFAULT_TIME_SCALE, DEFAULT_TIMEOUT_S, parse_spec
from harness.runner.pace import Pace
from harness.runner.strategy import CaseHooks, Claim, OutgoingMessage


class CommandStrategy(CaseHooks):
    """A client process as a strategy; build it from a spec with :meth:`from_spec`.

    Its case hooks (:class:`harness.runner.strategy.CaseHooks`) say what a client in another
    process needs: a scaled real clock it shares through libfaketime, the whole batch at once,
    no pinning, its elapsed time from its start, claims read from the server when it wrote
    none, and the ``command`` record of the case.

    >>> CommandStrategy.from_spec("cmd[time_scale=10]:node send.js").argv
    ('node', 'send.js')
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        time_scale: float | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if not argv:
            raise PlanError("strategy", "cmd: needs a command", allowed="cmd:PROGRAM [ARGS...]")
        self.argv = tuple(argv)
        #: Whether the spec named a scale; if not, a scenario may give its own (runner.scale).
        self.time_scale_given = time_scale is not None
        self.use_time_scale(time_scale, "strategy" if time_scale is not None else "default")
        self.timeout_s = timeout_s
        self.exit_code: int | None = None
        self.timed_out = False  # ended at its timeout_s, not by itself
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
        argv, options = parse_spec(spec)
        return cls(argv, **options)

    def use_time_scale(self, time_scale: float | None, source: str = "scenario") -> None:
        """Run at `time_scale` (None: :data:`DEFAULT_TIME_SCALE`), when libfaketime can give it
        to the client (else at 1); `source` says whose scale it is, for the record."""
        asked = DEFAULT_TIME_SCALE if time_scale is None else time_scale
        self.time_scale_asked = asked
        self.time_scale_from = source if time_scale is not None else "default"
        self.library = faketime.find_library() if asked != 1 else None
        # What the case runs at: the scale asked for, when libfaketime can give it to the client.
        self.time_scale = asked if self.library is not None else 1.0

    # --- the run -----------------------------------------------------------------------------

    def __call__(
        self, messages: Sequence[OutgoingMessage], endpoint: Endpoint, clock: Clock
    ) -> Iterator[Claim]:
        """Write the batch, run the process, and yield its claims (then raise if it failed)."""
        with tempfile.TemporaryDirectory(prefix="ses-harness-cmd-") as folder:
            root = Path(folder)
            manifest, claims_path = write_batch(messages, root)
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
        env = client_environment(endpoint, folder, manifest, claims, self.time_scale)
        self.pace = None
        stdout_path, stderr_path = root / "stdout.txt", root / "stderr.txt"
        with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
            start = process.Moment.now()
            self.started_at_s = clock.now()  # the last moment: the client's clock starts here
            env = scale.client_environment(
                clock, env, self.library, self.started_at_s, self.time_scale
            )
            contact = process.FirstContact(clock)  # watching before the start: none slips by
            if self._ledger is not None:
                contact.stop = self._ledger.watch(contact.heard)
            try:
                try:
                    client = process.start(self.argv, env, stdout, stderr)
                except OSError as error:
                    return f"cannot start {shlex.join(self.argv)}: {error.strerror or error}"
                contact.pid = client.pid
                if client.pid is not None:
                    scale.follow(clock, client.pid)
                exited = None
                try:
                    exited = client.wait(self.timeout_s)
                    end = (
                        process.Moment.now(exited.cpu_s, exited.queued_s, clock) if exited else None
                    )
                finally:  # whatever happened, nothing it started outlives the case
                    ended, survivors = client.end()
                    if exited is None and self.library is not None and client.pid:
                        faketime.clean_up(client.pid)
            finally:
                contact.stop()
                scale.unfollow(clock)
            self.exit_code = ended.code
            failure = None
            if exited is not None:
                assert end is not None
                self.pace = process.pace_between(
                    self.time_scale, start, contact.moment or start, end
                )
                if isinstance(clock, ProgressClock):  # it counts no work: nothing to stretch
                    self.pace = dataclasses.replace(self.pace, free_work=True)
                if self.exit_code is None:
                    failure = f"{shlex.join(self.argv)} ended when its keeper process was killed"
                elif self.exit_code != 0:
                    failure = f"{shlex.join(self.argv)} exited with status {self.exit_code}"
            else:
                self.timed_out = True
                failure = (
                    f"{shlex.join(self.argv)} still running after {self.timeout_s:g} s; killed"
                )
                if self.time_scale != 1:  # see harness.runner.faketime for what hangs there
                    failure += (
                        f" (at time_scale {self.time_scale:g}: if it waits on a thread with a "
                        "timeout, or is a Go program, run it with time_scale=1)"
                    )
            if survivors:
                failure = (failure or f"{shlex.join(self.argv)} exited") + (
                    f" ({survivors} of its processes had not exited "
                    f"{process.KILL_WAIT_S:g} s after SIGKILL)"
                )
        self.stdout_tail = process.tail(stdout_path)
        self.stderr_tail = process.tail(stderr_path)
        if failure and self.stderr_tail:  # its last line; the report shows the whole tail
            failure += f"; stderr ends: {self.stderr_tail.splitlines()[-1]}"
        return failure

    # --- its case hooks: what run_case asks of a client in another process ---------------------

    pinned = False  # the client's own process is left to the scheduler

    def clock(self, latency_s: float) -> ScaledClock:
        """The case's clock: this strategy's scale, `latency_s` SES seconds per command.

        A client in another process cannot share a virtual clock: one fast real clock for the
        server and (through libfaketime) the client, the plan as it is, times in SES seconds,
        blind to the machine's load where it can be (see :mod:`harness.runner.scale`).
        """
        return scale.case_clock(self.time_scale, latency_s, self.library)

    def for_scenario(self, command_time_scale: float | None) -> None:
        """The scenario's scale for its command clients, unless the spec named one."""
        scale.use_scenario_scale(self, command_time_scale)

    def arrivals_s(self, planned_s: Sequence[float]) -> list[float]:
        """All at once: the whole batch is in the files when the process starts."""
        return [0.0] * len(planned_s)

    def watch(self, ledger: Ledger) -> None:
        """Read the case's `ledger` to see when the client first reached the server: the pace
        check counts from there (a client's start-up is no time SES sees)."""
        self._ledger = ledger

    def start_s(self, case_start_s: float) -> float:
        """When the process started: writing the batch files is not the client's time."""
        return case_start_s if self.started_at_s is None else self.started_at_s

    def claims_when_silent(
        self, messages: Sequence[OutgoingMessage], ledger: Ledger
    ) -> list[Claim]:
        """What the server told the client about each message (see
        :func:`harness.runner.command.inferred.claims_from_ledger`)."""
        return claims_from_ledger(messages, ledger)

    def case_record(self, claims_from: str) -> dict[str, Any]:
        """The ``command`` entry of the case."""
        return {"command": self.record(claims_from)}

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
            "time_scale_from": self.time_scale_from,
            "clock": "libfaketime" if self.library is not None else "real",
            "pace": self.pace.to_dict() if self.pace is not None else None,
            "note": self.note(),
            "timeout_s": self.timeout_s,
            "claims": claims_from,
            "exit_code": self.exit_code,
            "timed_out": self.timed_out,
            "stdout_tail": self.stdout_tail,
            "stderr_tail": self.stderr_tail,
        }
