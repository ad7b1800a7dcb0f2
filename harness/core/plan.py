"""Fault plans as data: a rule is a matcher (where and when) and an action (what happens).

Rules load from and dump to flat tables, the same in a scenario file, a `--fault` flag and the
HTTP API::

    [[faults]]
    name = "greylist"
    stage = "RCPT"
    attempts = 2            # the first two attempts of each message...
    action = "reply"
    code = 451
    text = "4.7.1 Greylisted, please try again later"   # ...are refused
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from harness.core import notify_checks, profile_table, schema
from harness.core.errors import PlanError
from harness.core.evidence import Profile
from harness.core.limits import Limits
from harness.core.outcomes import OUTCOMES, Aftermath
from harness.core.profiles import PROFILES


class Stage(enum.StrEnum):
    """Points in an SMTP session, or the SES HTTP API, where a rule can fire."""

    CONNECT = "CONNECT"
    EHLO = "EHLO"  # HELO too
    AUTH = "AUTH"
    MAIL = "MAIL"
    RCPT = "RCPT"
    DATA = "DATA"
    EOM = "EOM"  # end of data: the final "."
    RSET = "RSET"
    NOOP = "NOOP"
    QUIT = "QUIT"
    API = "API"  # a send request to the SES HTTP API (v2 SendEmail/SendBulkEmail, v1 Send*)
    NOTIFY = "NOTIFY"  # an SNS post of an event to a subscriber (each attempt) or the feed


#: The stage of each SMTP verb the engine is asked about (STARTTLS and the rest are not).
STAGES = {
    "HELO": Stage.EHLO,
    "EHLO": Stage.EHLO,
    "AUTH": Stage.AUTH,
    "MAIL": Stage.MAIL,
    "RCPT": Stage.RCPT,
    "DATA": Stage.DATA,
    "RSET": Stage.RSET,
    "NOOP": Stage.NOOP,
    "QUIT": Stage.QUIT,
}


# --- actions: one small type each, one behaviour -------------------------------------------


@dataclass(frozen=True)
class Reply:
    """Answer with `code` and `text` instead of the normal reply.

    `close` hangs up after the reply; left unset, a 421 closes (RFC 5321) and nothing else does.
    At stage API, `code` is the HTTP status, `text` the error message and `error` the error code
    the SDK raises (default: the one SES uses for that status, e.g. 429 TooManyRequestsException).
    """

    kind: ClassVar[str] = "reply"
    code: int
    text: str = ""
    close: bool | None = None
    error: str | None = None  # stage API only: the error code, e.g. "ThrottlingException"

    def __post_init__(self) -> None:
        if not 200 <= self.code <= 599:
            raise PlanError("code", f"{self.code} is not an SMTP reply code", allowed="200-599")
        if "\r" in self.text or "\n" in self.text:
            raise PlanError("text", "must be one line")
        if self.error is not None and not re.fullmatch(r"[A-Za-z][A-Za-z0-9]{0,99}", self.error):
            raise PlanError("error", f"{self.error!r} is not an error code", allowed="a name")

    @property
    def line(self) -> str:
        return f"{self.code} {self.text}".rstrip()


@dataclass(frozen=True)
class Drop:
    """Close the connection without replying."""

    kind: ClassVar[str] = "drop"


@dataclass(frozen=True)
class DropAfterAccept:
    """At end of data (or an API send): record the message, then cut the connection before the
    250 (or the HTTP response).

    The client cannot tell this from a lost message; a resend is a duplicate.
    """

    kind: ClassVar[str] = "drop_after_accept"


@dataclass(frozen=True)
class Delay:
    """Wait `delay_s` on the server's clock, then carry on normally."""

    kind: ClassVar[str] = "delay"
    delay_s: float

    def __post_init__(self) -> None:
        if self.delay_s < 0:
            raise PlanError("delay_s", f"{self.delay_s} is negative", allowed=">= 0")


@dataclass(frozen=True)
class Stall:
    """Never answer; hang up after `stall_s` real seconds (None: when the client does)."""

    kind: ClassVar[str] = "stall"
    stall_s: float | None = None

    def __post_init__(self) -> None:
        if self.stall_s is not None and self.stall_s < 0:
            raise PlanError("stall_s", f"{self.stall_s} is negative", allowed=">= 0")


@dataclass(frozen=True)
class Duplicate:
    """At stage NOTIFY: SNS posts the notification again, same MessageId (at least once)."""

    kind: ClassVar[str] = "duplicate"


Action = Reply | Drop | DropAfterAccept | Delay | Stall | Duplicate | Aftermath
_ALL = (Reply, Drop, DropAfterAccept, Delay, Stall, Duplicate, *OUTCOMES)
ACTIONS: dict[str, type[Action]] = {a.kind: a for a in _ALL}


# --- matcher --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Matcher:
    """Which commands a rule applies to. Every given condition must hold.

    Occurrences (`nth`, `first`, `every`, `after`) count the commands that pass the other filters
    (stage, session, sender, recipient, attempt), across all sessions of the server.
    """

    stage: Stage
    nth: int | None = None  # only the nth occurrence (1-based)
    first: int | None = None  # the first k occurrences
    every: int | None = None  # every kth occurrence: k, 2k, 3k...
    after: int | None = None  # every occurrence after the kth
    probability: float | None = None  # seeded: same seed, same choices
    session: int | None = None  # only in this session (1-based, in order of connection)
    sender: str | None = None  # glob on MAIL FROM, e.g. "*@example.com"
    recipient: str | None = None  # glob; at RCPT the address, later any recipient
    tenant: str | None = None  # glob on the SES tenant (X-SES-TENANT, TenantName): EOM, API
    attempt: int | None = None  # only this attempt of a logical message (1-based)
    attempts: int | None = None  # the first k attempts of each logical message (greylisting)
    # Time-based greylisting: while the message's first attempt is younger than this many
    # seconds on the server's clock (so a virtual clock keeps it fast), as real greylists do.
    greylist_s: float | None = None
    kind: str | None = None  # stage NOTIFY: the event's kind, e.g. "Delivery"

    def __post_init__(self) -> None:
        for name in ("nth", "first", "every", "after", "session", "attempt", "attempts"):
            value = getattr(self, name)
            if value is not None and value < (0 if name == "after" else 1):
                raise PlanError(name, f"{value} is too small", allowed=">= 1")
        if self.probability is not None and not 0.0 <= self.probability <= 1.0:
            raise PlanError("probability", f"{self.probability} is out of range", allowed="0.0-1.0")
        if self.greylist_s is not None and not self.greylist_s > 0:
            raise PlanError("greylist_s", f"{self.greylist_s} is too small", allowed="> 0")
        notify_checks.check_matcher(self.stage is Stage.NOTIFY, self.kind, self.session)
        counted = [n for n in ("attempt", "attempts", "greylist_s") if getattr(self, n) is not None]
        if counted and self.stage not in (Stage.RCPT, Stage.EOM, Stage.API, Stage.NOTIFY):
            raise PlanError(
                counted[0],
                f"attempts of a message are counted at RCPT (by sender and recipient), EOM and "
                f"API (by Message-ID), NOTIFY (SNS's), not at {self.stage.value}",
                allowed="stage = RCPT, EOM, API or NOTIFY",
            )
        if self.tenant is not None and self.stage not in (Stage.EOM, Stage.API):
            raise PlanError(
                "tenant",
                f"a message names its tenant in a header or TenantName, not at {self.stage.value}",
                allowed="stage = EOM or API",
            )
        if (self.sender or self.recipient) and self.stage in (
            Stage.CONNECT,
            Stage.EHLO,
            Stage.AUTH,
        ):
            raise PlanError(
                "sender" if self.sender else "recipient",
                f"no envelope is known at {self.stage.value}",
                allowed="stage = MAIL, RCPT, DATA, EOM, RSET, NOOP, QUIT or API",
            )


# --- rule -----------------------------------------------------------------------------------


_ACTION_KEYS = {
    name for cls in ACTIONS.values() for name in (f.name for f in dataclasses.fields(cls))
}
_MATCHER_KEYS = {f.name for f in dataclasses.fields(Matcher)}
LIMIT_KEYS = [f.name for f in dataclasses.fields(Limits)]


@dataclass(frozen=True)
class Rule:
    """A matcher and an action, with an optional name for reports."""

    match: Matcher
    action: Action
    name: str = ""

    def __post_init__(self) -> None:
        at_api = self.match.stage is Stage.API
        notify_checks.check_action(self.match.stage is Stage.NOTIFY, self.action.kind)
        if isinstance(self.action, (DropAfterAccept, *OUTCOMES)) and self.match.stage not in (
            Stage.EOM,
            Stage.API,
        ):
            raise PlanError(
                "action",
                f"{self.action.kind} only happens at end of data or an API send",
                allowed="stage = EOM or API",
            )
        if isinstance(self.action, Reply):
            if at_api and not 400 <= self.action.code <= 599:
                raise PlanError(
                    "code", f"{self.action.code} is not an HTTP error status", allowed="400-599"
                )
            if not at_api and self.action.error is not None:
                raise PlanError("error", "only applies at stage API", allowed="stage = API")

    @property
    def label(self) -> str:
        return self.name or f"{self.match.stage.value}:{self.action.kind}"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rule:
        """Build a rule from its flat table form (see the module docstring)."""
        if not isinstance(data, Mapping):
            raise PlanError("", f"a fault rule is a table of keys, got {data!r}")
        allowed = sorted(_MATCHER_KEYS | _ACTION_KEYS | {"action", "name"})
        unknown = sorted(set(data) - set(allowed), key=str)
        if unknown:
            raise PlanError(unknown[0], "unknown key", allowed=allowed)
        if "stage" not in data:
            raise PlanError("stage", "is required", allowed=[s.value for s in Stage])
        if "action" not in data:
            raise PlanError("action", "is required", allowed=list(ACTIONS))
        kind = data["action"]
        # Checked as a string first: a table or a list is not hashable, and `in` would raise.
        if not isinstance(kind, str) or kind not in ACTIONS:
            raise PlanError("action", f"{kind!r} is not an action", allowed=list(ACTIONS))
        action_cls = ACTIONS[kind]
        action_fields = {f.name for f in dataclasses.fields(action_cls)}
        stray = sorted(set(data) & (_ACTION_KEYS - action_fields))
        if stray:
            raise PlanError(
                stray[0],
                f"does not apply to action {kind!r}",
                allowed=sorted(action_fields) or "none",
            )
        match = schema.load(Matcher, {k: v for k, v in data.items() if k in _MATCHER_KEYS})
        action = schema.load(action_cls, {k: v for k, v in data.items() if k in action_fields})
        name = schema.coerce(data.get("name", ""), str, "name")
        return cls(match=match, action=action, name=name)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name} if self.name else {}
        out.update(schema.dump(self.match))
        out["stage"] = self.match.stage.value
        out["action"] = self.action.kind
        out.update(schema.dump(self.action))
        return out

    @classmethod
    def from_spec(cls, spec: str) -> Rule:
        """Parse the one-line flag form: ``stage=RCPT,first=2,action=reply,code=451,text=Later``.

        Values are TOML-like: integers, numbers, true/false, else strings. A value may contain
        commas; a new pair starts only at ``,key=``.
        """
        pairs = re.split(r",(?=\s*[a-z_]+=)", spec.strip())
        data: dict[str, Any] = {}
        for pair in pairs:
            key, sep, raw = pair.partition("=")
            if not sep:
                raise PlanError(
                    pair.strip(),
                    "expected key=value",
                    allowed=", ".join(sorted(_MATCHER_KEYS | _ACTION_KEYS | {"action", "name"})),
                )
            data[key.strip()] = _scalar(raw.strip())
        return cls.from_dict(data)


def _scalar(raw: str) -> Any:
    if raw in ("true", "false"):
        return raw == "true"
    for parse in (int, float):
        try:
            return parse(raw)
        except ValueError:
            pass
    return raw


# --- limits and the plan ---------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Everything that decides the server's behaviour: profile, limit overrides, faults, seed.

    `profile` is a built-in's name (``harness.PROFILES``) or a :class:`Profile` of the user's
    own (from a table: ``harness.core.profile_table``, or a TOML file).
    """

    profile: str | Profile = "ses"
    seed: int = 0
    limits: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    faults: tuple[Rule, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.profile, Profile) and self.profile not in PROFILES:
            name = self.profile  # cut here: the list of what is allowed is long already
            name = name if len(name) <= 60 else f"{name[:24]}...({len(name):,} characters)"
            raise PlanError(
                "profile",
                f"{name!r} is not a profile",
                allowed=[*PROFILES, "a profile table", "a .toml profile file"],
            )
        try:
            self.resolved_limits()
        except PlanError as error:
            raise error.within(prefix="limits") from None

    @property
    def profile_name(self) -> str:
        return self.profile.name if isinstance(self.profile, Profile) else self.profile

    def resolved_profile(self) -> Profile:
        """The profile itself: the built-in named, or the user's own."""
        return self.profile if isinstance(self.profile, Profile) else PROFILES[self.profile]

    def resolved_limits(self) -> Limits:
        """The profile's limits with this plan's overrides (worked out once per plan)."""
        return self._resolved_limits

    @functools.cached_property
    def _resolved_limits(self) -> Limits:
        return self.resolved_profile().limits.updated(**dict(self.limits))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | None = None) -> Plan:
        """Load a plan (keys: profile, seed, limits, faults); errors name `source`."""
        try:
            if not isinstance(data, Mapping):
                raise PlanError("", f"a plan is a table of keys, got {data!r}")
            allowed = ["profile", "seed", "limits", "faults"]
            unknown = sorted(set(data) - set(allowed), key=str)
            if unknown:
                raise PlanError(unknown[0], "unknown key", allowed=allowed)
            faults = data.get("faults", [])
            if not isinstance(faults, list | tuple):
                raise PlanError("faults", "must be a list of tables")
            rules = []
            for index, item in enumerate(faults):
                try:
                    rules.append(Rule.from_dict(item))
                except PlanError as error:
                    raise error.within(prefix=f"faults[{index}]") from None
            limits = data.get("limits", {})
            if not isinstance(limits, Mapping):
                raise PlanError("limits", "must be a table of keys")
            for key in limits:
                if not isinstance(key, str):
                    raise PlanError(f"limits.{key!r}", "unknown key", allowed=LIMIT_KEYS)
            profile = data.get("profile", "ses")
            if isinstance(profile, Mapping):
                try:
                    profile = profile_table.from_table(profile, PROFILES)
                except PlanError as error:
                    raise error.within(prefix="profile") from None
            elif not isinstance(profile, Profile):
                profile = schema.coerce(profile, str, "profile")
            return cls(
                profile=profile,
                seed=schema.coerce(data.get("seed", 0), int, "seed"),
                limits=dict(limits),
                faults=tuple(rules),
            )
        except PlanError as error:
            raise error.within(source=source) from None

    def to_dict(self) -> dict[str, Any]:
        profile = self.profile
        out: dict[str, Any] = {
            "profile": profile_table.to_table(profile) if isinstance(profile, Profile) else profile,
            "seed": self.seed,
        }
        if self.limits:
            out["limits"] = {
                k: list(v) if isinstance(v, tuple) else v for k, v in self.limits.items()
            }
        if self.faults:
            out["faults"] = [rule.to_dict() for rule in self.faults]
        return out

    def with_limits(self, **overrides: Any) -> Plan:
        return dataclasses.replace(self, limits={**self.limits, **overrides})

    def with_faults(self, *rules: Rule) -> Plan:
        return dataclasses.replace(self, faults=self.faults + rules)
