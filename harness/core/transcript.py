"""A recorded conversation with a real server, and where a profile differs from it.

A transcript (written by the proxy's `--record`, see `harness.server.relay.recording`) is read
into exchanges: a command and the whole reply it got, per session, with the SMTP stage.
:func:`check_profile` holds a profile against it, stage by stage: the texts of its replies
(greeting, EHLO, the 250s, 354, 221, and each refusal the recording holds that the profile
has a line for) and its behaviour (the session cap, the recipient cap, closing after a 421).
Each difference is said once, with how often it was seen and where first.

>>> text = '{"transcript": "ses-harness", "version": 1, "upstream": "mx:25", "tls": "none"}\\n'
>>> text += '{"session": 1, "stage": "CONNECT", "code": 220, "text": "mx ESMTP", "last": true}'
>>> transcript = parse_transcript(text, source="t.jsonl")
>>> [d.stage for d in check_profile(transcript, PROFILES["ses"])]
['CONNECT']
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from harness.core.errors import PlanError
from harness.core.profiles import PROFILES, Line, Profile, Replies

FORMAT = "ses-harness"
VERSION = 1
STAGES = ("CONNECT", "EHLO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "EOM", "RSET")
STAGES += ("NOOP", "QUIT")


@dataclass
class Exchange:
    """A command (None for the greeting) and the reply it got (`code` None: none came)."""

    session: int
    stage: str
    sent: str | None
    code: int | None = None
    lines: list[str] = field(default_factory=list)
    complete: bool = False
    row: int = 0  # the file's line where it starts (for messages naming it)

    @property
    def text(self) -> str:
        return f"{self.code} {self.lines[-1]}".rstrip() if self.code else " ".join(self.lines)


@dataclass(frozen=True)
class Transcript:
    source: str
    upstream: str
    tls: str
    exchanges: tuple[Exchange, ...]
    recorded: str = ""  # when the recording started (ISO 8601, UTC), if the file says

    def sessions(self) -> dict[int, list[Exchange]]:
        out: dict[int, list[Exchange]] = {}
        for exchange in self.exchanges:
            out.setdefault(exchange.session, []).append(exchange)
        return out


def parse_transcript(text: str, *, source: str) -> Transcript:
    """A transcript's text; a PlanError names the file, the line and what was expected."""
    rows = text.splitlines()
    if not rows:
        raise PlanError("", "empty: not a transcript", source=source)
    head = _row(rows[0], source, 1)
    if head.get("transcript") != FORMAT or head.get("version") != VERSION:
        raise PlanError(
            "line 1",
            "not a transcript (written by ses-harness proxy --record)",
            allowed=f'{{"transcript": "{FORMAT}", "version": {VERSION}, ...}}',
            source=source,
        )
    current: dict[int, Exchange] = {}
    exchanges: list[Exchange] = []
    for number, row in enumerate(rows[1:], start=2):
        if not row.strip():
            continue
        item = _row(row, source, number)
        session, stage = item.get("session"), item.get("stage")
        if not isinstance(session, int) or stage not in STAGES:
            raise PlanError(
                f"line {number}",
                "needs an integer 'session' and a 'stage'",
                allowed=", ".join(STAGES),
                source=source,
            )
        if "sent" in item or session not in current or current[session].complete:
            exchange = Exchange(session, stage, item.get("sent"), row=number)
            exchanges.append(exchange)
            current[session] = exchange
            if "sent" in item:
                continue
        exchange = current[session]
        code = item.get("code")
        if code is not None and not (isinstance(code, int) and 100 <= code <= 599):
            raise PlanError(f"line {number}", f"bad reply code {code!r}", source=source)
        exchange.code = exchange.code or code
        exchange.lines.append(str(item.get("text", "")))
        exchange.complete = code is None or bool(item.get("last", True))
    upstream, tls = str(head.get("upstream", "?")), str(head.get("tls", "none"))
    recorded = str(head.get("recorded", ""))
    return Transcript(source, upstream, tls, tuple(exchanges), recorded)


def _row(row: str, source: str, number: int) -> dict[str, Any]:
    try:
        item = json.loads(row)
    except ValueError as error:
        raise PlanError(f"line {number}", f"not JSON: {error}", source=source) from None
    if not isinstance(item, dict):
        raise PlanError(f"line {number}", "not a JSON object", source=source)
    return item


@dataclass
class Difference:
    """One way the profile differs from the recording, seen `count` times, first at `where`."""

    stage: str
    kind: str  # "text", "code", "behaviour", "extensions"
    recorded: str
    profile: str
    where: str
    count: int = 1

    def __str__(self) -> str:
        seen = f"{self.where}" + (f", and {self.count - 1} more like it" if self.count > 1 else "")
        return (
            f"{self.stage:<8} {self.kind:<10} recorded: {self.recorded}\n"
            f"{'':<19}profile:  {self.profile}   ({seen})"
        )


def check_profile(transcript: Transcript, profile: Profile) -> list[Difference]:
    """Where `profile` would have answered otherwise than the recorded server, stage by stage
    (in the order of `STAGES`, then behaviour)."""
    found: dict[tuple[str, str, str, str], Difference] = {}

    def differ(stage: str, kind: str, recorded: str, expected: str, where: str) -> None:
        key = (stage, kind, shape(recorded), expected)  # queue ids and the like vary
        if key in found:
            found[key].count += 1
        else:
            found[key] = Difference(stage, kind, recorded, expected, where)

    replies = profile.replies
    for number, exchanges in transcript.sessions().items():
        accepted = 0
        recipients = 0
        after_421 = False
        for exchange in exchanges:
            where = f"session {number}, message {accepted + 1}"
            if exchange.code is None:
                continue
            if after_421:
                differ(
                    exchange.stage,
                    "behaviour",
                    f"went on after a 421 ({exchange.sent or 'greeting'}: {exchange.text})",
                    "closes the connection with a 421",
                    where,
                )
                after_421 = False
            for kind, recorded, expected in _compare(exchange, replies, profile):
                differ(exchange.stage, kind, recorded, expected, where)
            if exchange.code == 421:
                after_421 = True
            if exchange.stage == "MAIL":
                recipients = 0
                if exchange.code == 421 and _is(replies.session_cap, exchange):
                    for text in _cap(profile.limits.session_limit, accepted):
                        differ("MAIL", "behaviour", f"421 after {accepted} messages", text, where)
            elif exchange.stage == "RCPT" and 200 <= exchange.code < 300:
                recipients += 1
            elif exchange.stage == "RCPT" and exchange.lines[-1][1:6] == ".5.3 ":
                # RFC 3463's X.5.3, "too many recipients": the server's recipient cap. A
                # profile's takes every RCPT TO and refuses the message at the end of its data.
                cap = profile.limits.max_recipients
                said = f"refused recipient {recipients + 1} ({exchange.text})"
                if cap is None:
                    differ("RCPT", "behaviour", said, "has no recipient cap", where)
                elif cap != recipients:
                    differ("RCPT", "behaviour", said, _too_many(cap, replies), where)
                else:
                    said = f"refused recipient {cap + 1} at RCPT TO ({exchange.text})"
                    expected = f"takes it, then {_too_many(cap, replies)}"
                    differ("RCPT", "behaviour", said, expected, where)
            elif exchange.stage == "EOM" and 200 <= exchange.code < 300:
                accepted += 1
                cap = profile.limits.max_recipients
                if cap is not None and recipients > cap:
                    said = f"accepted a message of {recipients} recipients"
                    differ("EOM", "behaviour", said, _too_many(cap, replies), where)
                cap = profile.limits.session_limit
                if cap is not None and accepted == cap + 1:
                    differ(
                        "MAIL",
                        "behaviour",
                        f"accepted message {accepted} in one session",
                        f"refuses message {cap + 1} at MAIL FROM: {replies.session_cap}",
                        where,
                    )
    order = {stage: n for n, stage in enumerate(STAGES)}
    kinds = {"code": 0, "text": 1, "extensions": 2, "behaviour": 3}
    return sorted(found.values(), key=lambda d: (order.get(d.stage, 99), kinds[d.kind]))


def _too_many(cap: int, replies: Replies) -> str:
    line = replies.too_many_recipients
    return f"refuses a message of more than {cap} recipients at the end of its data: {line}"


def _cap(limit: int | None, accepted: int) -> Iterable[str]:
    if limit is None:
        yield "has no session cap"
    elif limit != accepted:
        yield f"421 after {limit} messages"


def _is(line: Line, exchange: Exchange) -> bool:
    return exchange.code == line.code


# What a profile says at each stage when it refuses, and the lines it accepts with.
def _refusals(profile: Profile) -> dict[str, tuple[Line, ...]]:
    replies = profile.replies
    out: dict[str, tuple[Line, ...]] = {
        "CONNECT": (replies.too_many_connections,),
        "EHLO": (),
        "AUTH": (replies.auth_invalid, replies.starttls_first),
        "MAIL": (
            replies.session_cap,
            replies.auth_required,
            replies.starttls_first,
            replies.sender_repeated,
            replies.bad_sender,
            replies.idle_timeout,
        ),
        "RCPT": (replies.too_many_recipients, replies.bad_recipient, replies.idle_timeout),
        "DATA": (replies.idle_timeout,),
        "EOM": (
            replies.too_many_recipients,
            replies.too_large,
            replies.not_verified,
            replies.user_connections,
        ),
    }
    # The rate and the daily quota refuse where the profile says (Limits.quota_stage); at
    # AUTH only the quota does, the rate staying at end of data.
    stage = profile.limits.quota_stage
    rate, quota = (replies.rate_exceeded,), (replies.daily_quota,)
    if stage == "AUTH":
        out["AUTH"] += quota
        out["EOM"] += rate
    else:
        out[stage] += rate + quota
    if profile.limits.auth_per_minute is not None:
        out["AUTH"] += (replies.too_many_logins,)
    return out


def _accepts(replies: Replies) -> dict[str, Line]:
    return {
        "MAIL": replies.ok,
        "RCPT": replies.ok,
        "RSET": replies.ok,
        "NOOP": replies.ok,
        "DATA": replies.data,
        "EOM": replies.accepted,
        "QUIT": replies.quit,
        "AUTH": replies.auth_ok,
    }


def _compare(
    exchange: Exchange, replies: Replies, profile: Profile
) -> Iterable[tuple[str, str, str]]:
    """(kind, recorded, profile's) for each way the profile's answer here differs."""
    assert exchange.code is not None
    stage, code = exchange.stage, exchange.code
    if stage == "CONNECT" and code == 220:
        expected = f"220 {replies.host} {replies.ident}"
        if not _matches(expected, exchange.text):
            yield "text", exchange.text, _shown(expected)
        return
    if stage == "EHLO" and code == 250 and exchange.sent and exchange.sent.startswith("EHLO"):
        yield from _ehlo(exchange, replies, profile)
        return
    if stage == "AUTH" and code == 334:
        return
    accept = _accepts(replies).get(stage)
    if accept is not None and code < 400 and (stage != "AUTH" or code == 235):
        if accept.code != code:
            yield "code", exchange.text, str(accept)
        elif not _matches(str(accept), exchange.text):
            yield "text", exchange.text, _shown(str(accept))
        return
    if code < 400:
        return
    refusals = _refusals(profile).get(stage, ())
    candidates = [line for line in refusals if line.code == code]
    if not candidates:
        said = {line.code for line in refusals}
        codes = ", ".join(str(c) for c in sorted(said)) or "none"
        yield "code", exchange.text, f"never answers {stage} with {code} (its refusals: {codes})"
    elif not any(_matches(str(line), exchange.text) for line in candidates):
        yield "text", exchange.text, " or ".join(_shown(str(line)) for line in candidates)


def _ehlo(exchange: Exchange, replies: Replies, profile: Profile) -> Iterable[tuple[str, str, str]]:
    first, last = exchange.lines[0], exchange.lines[-1]
    if len(exchange.lines) > 1 and last != replies.ehlo_last:
        yield "text", f"last line 250 {last}", f"last line 250 {replies.ehlo_last}"
    if first.split(" ")[0] != replies.host:
        yield "text", f"first line 250 {first}", f"first line 250 {replies.host}"
    listed = exchange.lines[1:] if last != replies.ehlo_last else exchange.lines[1:-1]
    recorded = {line.split(" ")[0].upper(): line for line in listed}
    # STARTTLS depends on the port and on whether TLS is on; the last line is checked above.
    recorded.pop("STARTTLS", None)
    expected = {"8BITMIME": "8BITMIME", "AUTH": "AUTH PLAIN LOGIN"}
    if replies.advertise_size:
        size = profile.limits.max_message_bytes
        expected["SIZE"] = f"SIZE {size}" if size else "SIZE"
    extra = sorted(set(recorded) - set(expected))
    missing = sorted(set(expected) - set(recorded))
    if extra or missing:
        yield (
            "extensions",
            ", ".join(recorded[k] for k in sorted(recorded)) or "none",
            ", ".join(expected[k] for k in sorted(expected))
            + (f" (not: {', '.join(extra)})" if extra else ""),
        )
    elif "SIZE" in recorded and recorded["SIZE"] != expected["SIZE"]:
        yield "text", recorded["SIZE"], expected["SIZE"]


def shape(text: str) -> str:
    """`text` with the words that vary from reply to reply (a queue id, a number, a random
    token: any word with a digit, or with a capital after a small letter) as "…"."""
    words = text.split(" ")
    return " ".join(
        words[:1] + ["…" if re.search(r"\d|[a-z][A-Z]", word) else word for word in words[1:]]
    )


def _matches(template: str, text: str) -> bool:
    """`text` fits `template`, whose `{}` and `{name}` stand for any text."""
    pattern = re.escape(template)
    pattern = re.sub(r"\\\{[a-z_]*\\\}", ".+", pattern)
    return re.fullmatch(pattern, text, flags=re.DOTALL) is not None


def _shown(template: str) -> str:
    return re.sub(r"\{[a-z_]*\}", "…", template)


__all__ = [
    "PROFILES",
    "Difference",
    "Exchange",
    "Transcript",
    "check_profile",
    "parse_transcript",
    "shape",
]
