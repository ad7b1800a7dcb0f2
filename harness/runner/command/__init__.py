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
``SES_EVENTS_URL``       the events SES has published so far (JSON, docs/events.md), in a
                         scenario with ``events = true``; empty otherwise
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

- ``timeout_s`` (default 300): wall seconds the process may run; then it and every process it
  started are ended and the case reports an error with the tail of its stderr (kept whenever
  it fails). Nothing the client starts outlives its case, grandchildren, daemons and processes
  that ignore SIGTERM included: a keeper process (:mod:`harness.runner.keeper`) starts it,
  adopts its orphans, and ends them all (SIGTERM, a second's grace, SIGKILL) when it exits,
  times out, or the run is stopped or dies.
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

The parts, one job each: :mod:`~harness.runner.command.spec` (the ``cmd:`` spec and its
defaults), :mod:`~harness.runner.command.batch` (the files and environment handed to the
client), :mod:`~harness.runner.command.process` (starting it through its keeper, waiting,
ending, /proc reads), :mod:`~harness.runner.command.claims` (reading its claims),
:mod:`~harness.runner.command.inferred` (claims for a client that wrote none) and
:mod:`~harness.runner.command.strategy` (the strategy that runs them for a case).
"""

from harness.runner.command.claims import ClientFailed, read_claims
from harness.runner.command.inferred import claims_from_ledger
from harness.runner.command.process import OUTPUT_TAIL_CHARS
from harness.runner.command.spec import DEFAULT_TIME_SCALE, DEFAULT_TIMEOUT_S, PREFIX
from harness.runner.command.strategy import CommandStrategy

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "DEFAULT_TIME_SCALE",
    "OUTPUT_TAIL_CHARS",
    "PREFIX",
    "ClientFailed",
    "CommandStrategy",
    "claims_from_ledger",
    "read_claims",
]
