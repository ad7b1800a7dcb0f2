"""What a profile is made of: reply lines and limits, each with the evidence behind it.

A provider's profile (``harness.core.profiles`` for SES, ``harness.core.providers`` for the
others, a user's TOML file through ``harness.core.profile_table``) is a :class:`Profile`: its
limits, the exact lines it says, and for every line and limit whether its owner documents it,
users reported it, or we inferred it, with the source.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from harness.core.limits import Limits


class Evidence(enum.StrEnum):
    DOCUMENTED = "documented"
    USER_REPORTED = "user-reported"
    INFERRED = "inferred"


DOC, USER, INFER = Evidence.DOCUMENTED, Evidence.USER_REPORTED, Evidence.INFERRED


@dataclass(frozen=True)
class Line:
    """One reply line and why we believe it."""

    code: int
    text: str
    evidence: Evidence
    source: str = ""

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


@dataclass(frozen=True)
class Cite:
    """Why we believe a limit's value: its evidence and source."""

    evidence: Evidence
    source: str = ""

    def __str__(self) -> str:
        return f"{self.evidence.value}: {self.source}" if self.source else self.evidence.value


@dataclass(frozen=True)
class Replies:
    """What the server says. `{}` in `accepted` is the message id; in `not_verified`, the ids,
    and `{region}` the server's region as SES writes it (``US-WEST-2``)."""

    host: str  # greeting host and first EHLO line
    ident: str  # after the host in the 220; `{instance}` and `{token}` are seeded
    ehlo_last: str  # the final EHLO line ("Ok" at SES)
    ok: Line
    data: Line
    accepted: Line
    quit: Line
    session_cap: Line
    rate_exceeded: Line
    daily_quota: Line
    too_many_connections: Line
    idle_timeout: Line
    too_many_recipients: Line
    too_large: Line
    not_verified: Line
    auth_required: Line
    starttls_first: Line
    auth_ok: Line
    auth_invalid: Line
    sender_repeated: Line
    bad_sender: Line  # MAIL FROM with an address that is not a mailbox (harness.core.address)
    bad_recipient: Line  # RCPT TO, the same
    advertise_size: bool = False  # SES dropped "250-SIZE" from its EHLO around 2020
    # The lines of limits SES does not have (harness.core.limits: max_connections_per_user,
    # auth_per_minute); a provider that has the limit says them in its own words.
    user_connections: Line = Line(421, "4.7.0 Too many concurrent connections for this user", INFER)
    too_many_logins: Line = Line(
        454, "4.7.0 Too many login attempts, please try again later", INFER
    )


#: Every line of a Replies, by field name (what a profile file may set).
LINE_FIELDS = tuple(
    name for name, kind in Replies.__annotations__.items() if kind in ("Line", Line)
)
TEXT_FIELDS = ("host", "ident", "ehlo_last")


@dataclass(frozen=True)
class Profile:
    """A server we imitate: its limits, its lines, and the evidence for each limit.

    `evidence` maps a limit's field name (``session_limit``) to its :class:`Cite`; a limit
    without one is one we set for the harness (switched off, or a safety bound).
    """

    name: str
    description: str
    limits: Limits
    replies: Replies
    evidence: Mapping[str, Cite] = field(default_factory=dict)
    #: What we looked for and could not find (shown by ``ses-harness profiles``, docs).
    unknown: tuple[str, ...] = ()
