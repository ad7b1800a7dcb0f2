"""What `ses-harness serve` prints: the banner, one line per session, message and fault, and the
summary at exit. Credentials never appear in the live log.
"""

from __future__ import annotations

import collections
import time
from typing import TextIO

from harness.base.ledger import FaultRecord, MessageRecord, SessionRecord
from harness.core.evidence import Replies
from harness.core.limits import Limits
from harness.core.plan import Rule
from harness.core.profiles import SES_REPLIES


class LiveLog:
    """A LedgerSink that prints one line per closed session, accepted message and fired fault,
    and counts them for the summary (resets of the ledger do not reset these counts).

    It is called while a message is being accepted, so writing a line must never fail or wait:
    `serve` hands it a `harness.console.printer.Printer`."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.sessions = 0
        self.messages = 0
        self.unacknowledged = 0
        self.faults: collections.Counter[str] = collections.Counter()

    def summary(self, restored: int = 0) -> list[str]:
        """The lines printed at exit; `restored`: messages loaded from the store at start."""
        messages = f"messages: {self.messages} accepted"
        if self.unacknowledged:
            messages += f" ({self.unacknowledged} without a 250: connection cut)"
        if restored:
            messages += f", {restored} more from earlier runs in the store"
        lines = [f"sessions: {self.sessions}", messages, f"faults: {self.faults.total()}"]
        lines.extend(f"  {name}: {count}" for name, count in self.faults.most_common())
        return lines

    def session(self, record: SessionRecord) -> None:
        self.sessions += 1
        closed = f"closed by {record.closed_by} ({record.close_reason})"
        extras = [f"{record.accepted} message{'s' if record.accepted != 1 else ''}"]
        if record.tls:
            extras.append("TLS")
        if record.user is not None:
            extras.append("authenticated")
        if record.commands_after_421:
            extras.append(f"{record.commands_after_421} commands after a 421")
        self._line(f"session {record.number} from {record.peer} {closed}: {', '.join(extras)}")

    def message(self, record: MessageRecord, data: bytes) -> None:
        self.messages += 1
        self.unacknowledged += not record.acknowledged
        outcome = "250" if record.acknowledged else "accepted, connection cut before the 250"
        recipients = ", ".join(record.rcpt_tos)
        self._line(
            f"message #{record.sequence} in session {record.session}: {record.mail_from} -> "
            f"{recipients}, {record.size} bytes, Message-ID {record.message_id or '(none)'}, "
            f"{outcome} {record.ses_id}"
        )

    def fault(self, record: FaultRecord) -> None:
        self.faults[f"{record.source}:{record.name}"] += 1
        reply = f": {record.reply}" if record.reply else ""
        self._line(
            f"fault {record.source}:{record.name} in session {record.session} at "
            f"{record.stage} (command {record.command}), {record.action}{reply}"
        )

    def note(self, text: str) -> None:
        """A line about the server itself (a plan change, a reset), stamped like the others."""
        self._line(text)

    def say(self, text: str) -> None:
        """Lines as they are, without a time (the banner, the summary)."""
        self._write(text + "\n")

    def _line(self, text: str) -> None:
        self._write(f"{time.strftime('%H:%M:%S')} {text}\n")

    def _write(self, text: str) -> None:
        try:  # `serve` gives a Printer, which never raises; any other stream may
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a log line is lost; the message it was about is not


def describe_limits(limits: Limits, replies: Replies = SES_REPLIES) -> list[str]:
    """The behaviours a set of limits switches on, as a person reads them, with the codes of
    the profile's `replies` (SES's by default)."""
    stage = {"EOM": "end of data", "DATA": "DATA", "MAIL": "MAIL FROM", "AUTH": "AUTH"}
    at = stage[limits.quota_stage]
    per = " per user" if limits.per_user else ""
    parts = []
    if limits.session_limit is not None:
        parts.append(
            f"session cap {limits.session_limit} ({replies.session_cap.code} at MAIL FROM)"
        )
    if limits.rate_per_s is not None:
        burst = f", burst {limits.burst:g}" if limits.burst is not None else ""
        code = replies.rate_exceeded.code
        parts.append(f"rate {limits.rate_per_s:g}/s{burst}{per} ({code} at {at})")
    if limits.daily_quota is not None:
        code = replies.daily_quota.code
        parts.append(f"daily quota {limits.daily_quota:,}{per} per rolling 24 h ({code} at {at})")
    if limits.tarpit_per_minute is not None:
        parts.append(f"{limits.tarpit_per_minute} messages a minute{per} (more are delayed)")
    if limits.max_connections is not None:
        code = replies.too_many_connections.code
        parts.append(f"{limits.max_connections} concurrent connections ({code} at connect)")
    if limits.max_connections_per_user is not None:
        code = replies.user_connections.code
        parts.append(
            f"{limits.max_connections_per_user} connections a user ({code} at end of data)"
        )
    if limits.auth_per_minute is not None:
        code = replies.too_many_logins.code
        parts.append(f"{limits.auth_per_minute} logins a minute ({code} at AUTH)")
    if limits.idle_timeout_s is not None:
        top = limits.idle_timeout_max_s
        span = f"{limits.idle_timeout_s:g}-{top:g}" if top else f"{limits.idle_timeout_s:g}"
        parts.append(f"idle timeout {span} s ({replies.idle_timeout.code} and close)")
    if limits.max_recipients is not None:
        parts.append(f"{limits.max_recipients} recipients per message")
    if limits.max_message_bytes is not None:
        parts.append(f"{_size(limits.max_message_bytes)} per message")
    if limits.require_auth:
        parts.append(f"AUTH required ({replies.auth_required.code} at MAIL FROM)")
    if limits.verified is not None:
        code = replies.not_verified.code
        parts.append(f"only verified identities: {', '.join(limits.verified)} ({code})")
    return parts or ["no limits"]


def describe_rule(rule: Rule) -> str:
    """A rule in the `--fault` flag form, so it can be copied back onto a command line."""
    spec = ",".join(f"{key}={value}" for key, value in rule.to_dict().items() if key != "name")
    return f"{rule.label}: {spec}"


def _size(size: int) -> str:
    for unit, factor in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"


_MEETS = {
    "rate_per_s": ("the send rate", "within a second gets 454"),
    "session_limit": ("the session cap", "on one connection gets 421"),
    "daily_quota": ("the daily quota", "within 24 h gets 454"),
}


def first_limit(limits: Limits) -> str | None:
    """Which limit a sender that sends as fast as it can meets first, and how to switch it off:
    with the ses profile's settings, the rate (the 15th message in a second), not the cap."""
    met = limits.first_met()
    if met is None:
        return None
    name, message = met
    limit, how = _MEETS[name]
    return (
        f"a fast sender meets {limit} first: message {message:,} {how} "
        f"(--limit {name}=none switches it off)"
    )
