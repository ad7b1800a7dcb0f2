"""A provider profile seeded from a recording of a real server (`profile-check --write-profile`).

What the recording shows (:mod:`harness.core.seed_reader`) becomes the profile's, tagged
user-reported, with a source naming the recording, its upstream, its date and where in it:
the greeting and EHLO, the lines the server accepted with, each refusal a profile line can
hold, and the limits its behaviour shows (messages a session before its 421 at MAIL FROM,
recipients a message before its "too many recipients", the stage of a rate refusal). What is
guessed from it is inferred; what it does not show, the base profile fills in. Where the
profile cannot say what the server said, a :class:`Gap` says why, so a check of the recording
against the new profile lists only differences it explains.

>>> from harness.core.transcript import parse_transcript
>>> head = '{"transcript": "ses-harness", "version": 1, "upstream": "mx:25"}\\n'
>>> rows = [("CONNECT", None, 220, "mx.example ESMTP"), ("MAIL", "MAIL FROM:<a@x>", 250, "Ok")]
>>> rows += [("EOM", ".", 250, "Ok: queued as 4F2A9C1"), ("MAIL", "MAIL FROM:<a@x>", 421, "Bye")]
>>> text = head + "".join(
...     (f'{{"session": 1, "stage": "{stage}", "sent": "{sent}"}}\\n' if sent else "")
...     + f'{{"session": 1, "stage": "{stage}", "code": {code}, "text": "{said}"}}\\n'
...     for stage, sent, code, said in rows
... )
>>> seeded = seed_profile(parse_transcript(text, source="mx.jsonl"), name="mx")
>>> seeded.table["limits"], seeded.table["replies"]["accepted"]["text"]
({'session_limit': 1}, 'Ok: queued as {}')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.core import profile_table, schema, seed_file
from harness.core.errors import PlanError
from harness.core.evidence import LINE_FIELDS, Profile
from harness.core.profiles import PROFILES
from harness.core.seed_reader import Limit, Reading, Seen, template
from harness.core.transcript import Difference, Transcript, shape

USER, INFER = "user-reported", "inferred"


@dataclass(frozen=True)
class Gap:
    """A difference `profile-check` lists between a recording and the profile seeded from it,
    and why the profile cannot say otherwise. `recorded` (by shape) narrows it; None: any."""

    stage: str
    kinds: tuple[str, ...]
    recorded: str | None
    why: str

    def explains(self, difference: Difference) -> bool:
        if difference.stage != self.stage or difference.kind not in self.kinds:
            return False
        return self.recorded is None or shape(self.recorded) == shape(difference.recorded)


@dataclass
class Seeded:
    """A seeded profile: `table` in profile_table's form, `profile` read from it, `text` the
    TOML file (with what the base fills in and the gaps as comments)."""

    table: dict[str, Any]
    profile: Profile
    text: str
    gaps: list[Gap] = field(default_factory=list)
    #: Where the fake answers otherwise in ways profile-check does not list, and the guesses.
    notes: list[str] = field(default_factory=list)
    #: The lines and limits the base fills in, the recording not showing them.
    from_base: list[str] = field(default_factory=list)

    def explain(self, difference: Difference) -> str | None:
        """Why `difference` remains, if the seeding expected it; None if it did not."""
        return next((gap.why for gap in self.gaps if gap.explains(difference)), None)


def seed_profile(
    transcript: Transcript, *, name: str, base: str = "plain", recorded: str = ""
) -> Seeded:
    """The profile `transcript` shows, over the built-in `base`. `recorded`: the recording's
    date, when its file does not say (older recordings)."""
    if base not in PROFILES:
        raise PlanError("base", f"{base!r} is not a built-in profile", allowed=list(PROFILES))
    if not transcript.sessions():
        problem = "holds no sessions: nothing to seed a profile from"
        raise PlanError("", problem, source=transcript.source)
    date = transcript.recorded or recorded
    origin = f"{transcript.source}, recorded from {transcript.upstream}"
    origin += f" on {date}" if date else ""
    # Each line's and limit's source: the file's name, the upstream, the day; then where.
    cite = f"{transcript.source.replace(chr(92), '/').rsplit('/', 1)[-1]} recorded from "
    cite += transcript.upstream + (f" on {date[:10]}" if date else "")
    builder = _Builder(Reading(transcript), PROFILES[base], cite)
    builder.build()
    description = f"Seeded from {transcript.upstream} as recorded"
    description += f" on {date[:10]}" if date else ""
    table: dict[str, Any] = {"name": name, "description": description, "base": base}
    if builder.unknown:
        table["unknown"] = builder.unknown
    table |= {"limits": builder.limits, "replies": builder.replies, "evidence": builder.evidence}
    profile = profile_table.from_table(table, PROFILES)  # a PlanError names a bad --name
    sessions = len(transcript.sessions())
    head = [
        "A provider profile seeded from a recording (ses-harness profile-check --write-profile).",
        f"Recording: {origin}; {sessions} sessions, {len(transcript.exchanges)} exchanges.",
        "What it showed is user-reported, each source saying where in it; what was guessed",
        f'from it is inferred. The base profile "{base}" fills in the rest (listed at the end).',
    ]
    text = seed_file.render(
        table,
        head,
        builder.comments,
        builder.from_base,
        [g.why for g in builder.gaps],
        builder.notes,
    )
    return Seeded(table, profile, text, builder.gaps, builder.notes, builder.from_base)


class _Builder:
    """The table's limits, replies and evidence from a Reading, with gaps, notes, comments."""

    def __init__(self, reading: Reading, base: Profile, origin: str) -> None:
        self.reading, self.base, self.origin = reading, base, origin
        self.limits: dict[str, Any] = {}
        self.replies: dict[str, Any] = {}
        self.evidence: dict[str, dict[str, str]] = {}
        self.comments: dict[str, str] = {}  # a key of limits or replies: why its value
        self.gaps: list[Gap] = []
        self.notes: list[str] = []
        self.from_base: list[str] = []
        self.unknown: list[str] = []

    def build(self) -> None:
        self._greeting()
        self._ehlo()
        for name, seen in self.reading.lines.items():
            self._line(name, seen)
        self._session_cap()
        self._recipient_cap()
        self._quotas()
        if self.reading.require_auth:
            where = self.reading.require_auth
            self._limit("require_auth", True, USER, f"530 at MAIL FROM before AUTH ({where})")
        for exchange in self.reading.unmapped:
            code, stage = exchange.code, exchange.stage
            rule = f"--fault 'stage={stage},action=reply,code={code},text=...'"
            why = f"no profile line says {code} at {stage}; a fault rule can ({rule})"
            self.gaps.append(Gap(stage, ("code", "text"), exchange.text, why))
        for exchange in self.reading.after_421:
            said = f"went on after a 421 ({exchange.sent or 'greeting'}: {exchange.text})"
            why = "the recorded server went on after its 421; a profile's 421 closes"
            self.gaps.append(Gap(exchange.stage, ("behaviour",), said, why))
        lines = [n for n in LINE_FIELDS if n not in self.replies]
        self.from_base.append("lines: " + ", ".join(lines))
        kept = [k for k, v in _limits(self.base).items() if k not in self.limits]
        if kept:
            self.from_base.append("limits: " + ", ".join(kept))

    def _cite(self, what: str) -> str:
        return f"{self.origin}: {what}"

    def _greeting(self) -> None:
        greetings = list(dict.fromkeys(self.reading.greetings))
        if not greetings:
            return
        hosts = list(dict.fromkeys(g.split(" ")[0] for g in greetings))
        if hosts[0]:
            self.replies["host"] = hosts[0]
        rests = [g.partition(" ")[2] for g in greetings if g.split(" ")[0] == hosts[0]]
        ident, fits = template(list(dict.fromkeys(rests)), "{token}")
        if ident:
            self.replies["ident"] = ident
            if "{token}" in ident:
                self.comments["replies.ident"] = "the words that varied from session to session"
        if len(hosts) > 1 or not fits or not ident:
            why = (
                "the greeting varied in a way one line cannot hold"
                if ident
                else ("a greeting of the host alone: a profile's says something after it")
            )
            self.gaps.append(Gap("CONNECT", ("text",), None, why))

    def _ehlo(self) -> None:
        if not self.reading.ehlo:
            return
        lines = self.reading.ehlo[0]
        host = lines[0].split(" ")[0]
        if host:
            self.replies.setdefault("host", host)
        if host != self.replies.get("host", host):
            why = f"the EHLO names {host}, the greeting {self.replies['host']}: a profile, one"
            self.gaps.append(Gap("EHLO", ("text",), f"first line 250 {lines[0]}", why))
        if len(lines) > 1:
            self.replies["ehlo_last"] = lines[-1]
        for other in self.reading.ehlo[1:]:
            if len(other) > 1 and other[-1] != lines[-1]:
                why = "EHLO's last line varied (after STARTTLS?); the profile has the first"
                self.gaps.append(Gap("EHLO", ("text",), f"last line 250 {other[-1]}", why))
        listed = [line.split(" ") for line in lines[1:]]
        size = next((words for words in listed if words[0].upper() == "SIZE"), None)
        self.replies["advertise_size"] = size is not None
        if size is not None and len(size) > 1 and size[1].isdigit() and int(size[1]) > 0:
            self._limit("max_message_bytes", int(size[1]), USER, f"EHLO's {' '.join(size)}")
        elif size is not None:
            why = "EHLO's SIZE names no limit; the fake's names its own or none"
            self.gaps.append(Gap("EHLO", ("text",), " ".join(size), why))
        why = "a profile cannot list EHLO extensions: the fake announces its own"
        self.gaps.append(Gap("EHLO", ("extensions",), None, why))

    def _line(self, name: str, seen: Seen) -> None:
        texts = list(seen.texts)
        if name == "accepted":
            text, fits = template(texts, "{}", guess=True)
        else:
            text, fits = texts[0], len(texts) == 1
        where = f"{seen.count} seen, first at {seen.where}"
        if "{}" in text:
            where += "; the word that varies (an id) as {}"
        self.replies[name] = {"code": seen.code, "text": text, "evidence": USER}
        self.replies[name]["source"] = self._cite(where)
        if fits:
            return
        for other, stage in list(seen.texts.items())[1:]:
            recorded = f"{seen.code} {other}"
            if name == "ok":
                why = "one ok line answers MAIL, RCPT, RSET and NOOP: the profile holds "
                why += f"{seen.stage}'s ({seen.code} {texts[0]})"
            elif shape(other) == shape(texts[0]):
                why = f"{name}'s text varies from reply to reply; the profile holds the first"
            else:
                why = f"{name} was seen with {len(texts)} texts; the profile holds the first"
            self.gaps.append(Gap(stage, ("text", "code"), recorded, why))

    def _limit(self, key: str, value: Any, evidence: str, what: str) -> None:
        self.limits[key] = value
        self.evidence[key] = {"evidence": evidence, "source": self._cite(what)}
        self.comments[f"limits.{key}"] = what

    def _session_cap(self) -> None:
        caps, reading = self.reading.caps, self.reading
        most = max(reading.accepted.values(), default=0)
        if not caps:
            limit = self.base.limits.session_limit
            if limit is not None and most > limit:
                why = f"{most} messages a session and no 421, where the base caps {limit}: "
                why += "a profile file cannot switch a base's limit off (seed over plain)"
                said = f"accepted message {limit + 1} in one session"
                self.gaps.append(Gap("MAIL", ("behaviour",), said, why))
            self.unknown.append(f"a cap on messages a session (none in {most})")
            return
        values = sorted({cap.before for cap in caps})
        closing = "closing" if all(cap.closed for cap in caps) else "not always closing"
        what = f"421 at MAIL FROM after {values[0]} messages, {closing}; first at {caps[0].where}"
        if len(values) == 1:
            self._limit("session_limit", values[0], USER, what + f"; {len(caps)} sessions")
        else:
            what += f"; sessions disagree ({', '.join(map(str, values))}): the least taken"
            self._limit("session_limit", values[0], INFER, what)
            for value in values[1:]:
                why = "the recorded sessions met their 421 after different counts"
                self.gaps.append(Gap("MAIL", ("behaviour",), f"421 after {value} messages", why))
                said = f"accepted message {values[0] + 1} in one session"
                self.gaps.append(Gap("MAIL", ("behaviour",), said, why))
        if most > values[0]:
            self.notes.append(f"a session took {most} messages, more than the cap of {values[0]}")

    def _recipient_cap(self) -> None:
        caps, most = self.reading.recipient_caps, self.reading.most_recipients
        why = "a profile's recipient cap takes every RCPT TO and refuses the message at the end "
        why += "of its data (with the recorded line)"
        if not caps:
            limit = self.base.limits.max_recipients
            if limit is not None and most > limit:
                said = f"accepted a message of {most} recipients"
                why = f"a message of {most} recipients was accepted, where the base caps {limit}"
                self.gaps.append(Gap("EOM", ("behaviour",), said, why))
            self.unknown.append(f"a cap on recipients a message (none in {most})")
            return
        values = sorted({cap.before for cap in caps})
        first = caps[0]
        what = f"recipient {values[0] + 1} refused at {first.stage}; first at {first.where}"
        if first.stage == "EOM":
            what += f" (a message of {values[0] + 1}: the cap may be lower)"
        evidence = USER if len(values) == 1 and first.stage == "RCPT" else INFER
        self._limit("max_recipients", values[0], evidence, what)
        for cap in caps:
            if cap.stage == "RCPT" and cap.before == values[0]:
                said = f"refused recipient {cap.before + 1} at RCPT TO ({cap.said})"
                self.gaps.append(Gap("RCPT", ("behaviour",), said, why))
            elif cap.stage == "RCPT":
                said = f"refused recipient {cap.before + 1} ({cap.said})"
                why = "the recorded refusals of too many recipients came at different counts"
                self.gaps.append(Gap("RCPT", ("behaviour",), said, why))
        if most > values[0]:
            said = f"accepted a message of {most} recipients"
            why = f"a message of {most} recipients was accepted though another was refused"
            self.gaps.append(Gap("EOM", ("behaviour",), said, why))

    def _quotas(self) -> None:
        quotas: dict[str, Limit] = self.reading.quotas
        if not quotas:
            self.unknown.append("a rate or a daily quota (no refusal for one)")
            return
        stage = next(iter(quotas.values())).stage
        first = next(iter(quotas))
        said = self.reading.lines[first]
        what = f"the {first} refusal ({said.code} {next(iter(said.texts))}) came at {stage}"
        self._limit("quota_stage", stage, USER, what)
        unit = "MAIL FROMs" if stage == "MAIL" else "recipients"
        for name, limit in quotas.items():
            key = "rate_per_s" if name == "rate_exceeded" else "daily_quota"
            if limit.closed:
                self.notes.append(
                    f"the recorded server closed the connection with its {name}; "
                    "the fake's keeps it open"
                )
            if limit.before < 1:
                self.notes.append(f"{name} came before anything was taken: no limit to infer")
                continue
            what = f"{limit.before} {unit} taken before the first refusal ({limit.where})"
            if key == "daily_quota":
                self._limit(key, limit.before, INFER, what + "; counted as a day's")
                continue
            guess = "; a recording holds no times: that many a minute is a guess"
            self._limit("rate_per_s", round(limit.before / 60.0, 6), INFER, what + guess)
            self.notes.append(
                f"rate_per_s is a guess ({limit.before} a minute): a recording holds no times; "
                "set it from the provider's documents"
            )
            self._limit("burst", float(limit.before), INFER, what)


def _limits(profile: Profile) -> dict[str, Any]:
    return schema.dump(profile.limits)
