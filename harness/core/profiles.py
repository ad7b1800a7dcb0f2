"""Profiles are data: the limits and the exact reply lines of a server we imitate.

Each SES line and limit carries its evidence (see shared ses-smtp-facts.md): documented by AWS,
reported by users, or inferred. When SES changes, this file is the one place to update. Other
providers are in :mod:`harness.core.providers`; the types in :mod:`harness.core.evidence`.
"""

from __future__ import annotations

from harness.core.evidence import DOC, INFER, USER, Cite, Evidence, Line, Profile, Replies
from harness.core.limits import Limits
from harness.core.providers import PROVIDERS

__all__ = ["DOC", "INFER", "PROFILES", "USER", "Cite", "Evidence", "Line", "Profile", "Replies"]

SES_REPLIES = Replies(
    host="email-smtp.amazonaws.com",
    ident="ESMTP SimpleEmailService-d-{instance} {token}",
    ehlo_last="Ok",
    ok=Line(250, "Ok", USER, "TX-2023, TX-2026"),
    data=Line(354, "End data with <CR><LF>.<CR><LF>", USER, "TX-2023, TX-2026"),
    accepted=Line(250, "Ok {}", DOC, "DG-SMTP 'Successful delivery: 250 Ok MessageID'"),
    quit=Line(221, "Bye", USER, "TX-2023, TX-2026"),
    session_cap=Line(
        421,
        "Connection closed by server. Maximum message count per session reached.",
        USER,
        "REPOST-421 (Nov 2024), listmonk#2683; stage (MAIL FROM) inferred",
    ),
    rate_exceeded=Line(454, "Throttling failure: Maximum sending rate exceeded", DOC, "DG-SMTP"),
    daily_quota=Line(454, "Throttling failure: Daily message quota exceeded", DOC, "DG-SMTP"),
    too_many_connections=Line(421, "Too many concurrent SMTP connections", DOC, "DG-SMTP"),
    idle_timeout=Line(
        451, "4.4.2 Timeout waiting for data from client.", USER, "listmonk#81, symfony#43237"
    ),
    too_many_recipients=Line(
        554, "Transaction failed: Recipient count exceeds 50.", USER, "DG-QUOTAS; text from users"
    ),
    too_large=Line(552, "Message is too long.", DOC, "DG-SMTP"),
    not_verified=Line(
        554,
        "Message rejected: Email address is not verified. The following identities failed "
        "the check in region {region}: {}",
        DOC,
        "DG-SMTP; stage inferred",
    ),
    auth_required=Line(530, "Authentication required", DOC, "DG-SMTP"),
    starttls_first=Line(530, "Must issue a STARTTLS command first", USER, "omniwallet#1161"),
    auth_ok=Line(235, "Authentication successful.", USER, "TX-2020, TX-2023"),
    auth_invalid=Line(535, "Authentication Credentials Invalid", DOC, "DG-SMTP"),
    sender_repeated=Line(503, "Sender already specified.", USER, "listmonk#1530"),
    # The 2023 developer guide's table has another wording: 553 <address> Invalid email address.
    bad_sender=Line(501, "Invalid MAIL FROM address provided", DOC, "KC-501; stage inferred"),
    bad_recipient=Line(501, "Invalid RCPT TO address provided", DOC, "KC-501; stage inferred"),
)

PLAIN_REPLIES = Replies(
    host="localhost",
    ident="ESMTP ses-fault-harness",
    ehlo_last="HELP",
    ok=Line(250, "OK", INFER),
    data=Line(354, "End data with <CR><LF>.<CR><LF>", INFER),
    accepted=Line(250, "OK {}", INFER),
    quit=Line(221, "Bye", INFER),
    session_cap=Line(421, "4.7.0 Too many messages in this session", INFER),
    rate_exceeded=Line(454, "4.7.0 Sending rate exceeded", INFER),
    daily_quota=Line(454, "4.7.0 Daily quota exceeded", INFER),
    too_many_connections=Line(421, "4.7.0 Too many concurrent connections", INFER),
    idle_timeout=Line(451, "4.4.2 Timeout waiting for data from client.", INFER),
    too_many_recipients=Line(452, "4.5.3 Too many recipients", INFER),
    too_large=Line(552, "5.3.4 Message too big", INFER),
    not_verified=Line(554, "5.7.1 Not verified: {}", INFER),
    auth_required=Line(530, "5.7.0 Authentication required", INFER),
    starttls_first=Line(530, "5.7.0 Must issue a STARTTLS command first", INFER),
    auth_ok=Line(235, "2.7.0 Authentication successful", INFER),
    auth_invalid=Line(535, "5.7.8 Authentication credentials invalid", INFER),
    sender_repeated=Line(503, "5.5.1 Error: nested MAIL command", INFER),
    bad_sender=Line(553, "5.1.3 Error: malformed address", INFER),  # aiosmtpd's
    bad_recipient=Line(553, "5.1.3 Error: malformed address", INFER),
    advertise_size=True,
)


SES_LIMITS = Limits(
    session_limit=350,  # user-reported (REPOST-421)
    # The rate and the daily quota are each account's own settings (the console, GetAccount):
    # these are example values. AWS documents no default but the sandbox's (1/s, 200 a day).
    rate_per_s=14.0,  # an example account's; set your own
    daily_quota=50_000,  # an example account's, rolling 24 h (documented: the window)
    max_connections=50,  # inferred: SES documents the 421 but no number
    idle_timeout_s=10.0,  # documented, "about 10 seconds"
    max_recipients=50,  # documented
    max_message_bytes=40 * 1024 * 1024,  # documented, after encoding
)

SES_EVIDENCE = {
    "session_limit": Cite(USER, "REPOST-421 (Nov 2024): 'received after 350 emails'"),
    "rate_per_s": Cite(INFER, "an example account's; AWS documents only the sandbox's 1/s"),
    "daily_quota": Cite(
        INFER, "an example account's; the rolling 24 h window is documented (DG-QUOTAS)"
    ),
    "max_connections": Cite(INFER, "DG-SMTP documents the 421, no number"),
    "idle_timeout_s": Cite(
        DOC,
        "DG-CLI: 'about 10 seconds'; flarum/framework#4641 (2026-05) measured 30-90 s: "
        "profile ses-observed-idle",
    ),
    "max_recipients": Cite(DOC, "DG-QUOTAS: 50 recipients a message"),
    "max_message_bytes": Cite(DOC, "DG-QUOTAS: 40 MB after encoding (SMTP and API v2)"),
}
SANDBOX_EVIDENCE = {
    **SES_EVIDENCE,
    "rate_per_s": Cite(DOC, "DG-QUOTAS: the sandbox sends 1 message a second"),
    "daily_quota": Cite(DOC, "DG-QUOTAS: the sandbox sends 200 messages in 24 hours"),
    "verified": Cite(DOC, "DG-QUOTAS: sandbox recipients must be verified or the simulator"),
}

PROFILES: dict[str, Profile] = {
    "ses": Profile(
        "ses",
        "Amazon SES SMTP in production: 350 messages a session; 14/s and 50,000 a day as an "
        "example account's settings",
        SES_LIMITS,
        SES_REPLIES,
        SES_EVIDENCE,
        unknown=("a documented number of messages a session", "a documented connection cap"),
    ),
    "ses-sandbox": Profile(
        "ses-sandbox",
        "Amazon SES sandbox: 1/s, 200 a day, only verified identities",
        SES_LIMITS.updated(
            rate_per_s=1.0, daily_quota=200, verified=("@example.com", "@simulator.amazonses.com")
        ),
        SES_REPLIES,
        SANDBOX_EVIDENCE,
    ),
    "ses-observed-idle": Profile(
        "ses-observed-idle",
        "Amazon SES as a 2026 report measured it: idle sessions dropped after 30 to 90 s "
        "(drawn per session), where AWS documents about 10 s",
        SES_LIMITS.updated(idle_timeout_s=30.0, idle_timeout_max_s=90.0),
        SES_REPLIES,
        {
            **SES_EVIDENCE,
            "idle_timeout_s": Cite(
                USER, "flarum/framework#4641 (2026-05): idle connections closed in 30-90 s"
            ),
            "idle_timeout_max_s": Cite(USER, "flarum/framework#4641 (2026-05)"),
        },
    ),
    "plain": Profile("plain", "A plain SMTP sink with no limits", Limits(), PLAIN_REPLIES),
    **PROVIDERS,
}
