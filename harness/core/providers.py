"""Providers beyond SES, as data: their limits and reply lines, each with its evidence.

Sources (short keys; full addresses in docs/providers.md):

- MS-SUBMIT: Microsoft support, "Message storage and concurrent connection throttling for SMTP
  Authenticated Submission" (smtp-submission-improvements.md, 2025); MS-LIMITS: "Exchange Online
  limits" (service description); MicrosoftDocs/OfficeDocs-Support#1150 and PR #1488: the 30 a
  minute delays ("throttled and successively carried over to the following minutes"), only the
  10,000 recipients a day gets the 554.
- G-ERR: support.google.com/a/answer/3726730 (Gmail SMTP errors and codes); G-LIM:
  support.google.com/a/answer/166852 (Workspace sending limits), answer/2956491 (SMTP relay
  limits), support.google.com/mail/answer/22839 (personal Gmail).
- SG-SMTP: SendGrid, "Integrating with the SMTP API" (rate limits: 5k messages a connection,
  10k connections a server); mautic/mautic#8721 (a full SendGrid transcript).
- SP-SMTP: SparkPost/developers.sparkpost.com#468 (100 messages a connection), #411 (idle 60 s),
  SparkPost/support-docs#500 (hard limit 20k then, to be lowered to 100).
- EMAILIT: emailit.com/docs/smtp/troubleshooting (every reply with its stage).

A limit a provider has but whose reply nobody published says a line tagged inferred.
"""

from __future__ import annotations

from harness.core.evidence import DOC, INFER, USER, Cite, Line, Profile, Replies
from harness.core.limits import Limits

MB = 1024 * 1024

# --- Microsoft 365 (Exchange Online), SMTP AUTH client submission, smtp.office365.com:587 ----

M365_REPLIES = Replies(
    host="smtp.office365.com",
    ident="Microsoft ESMTP MAIL Service ready",
    ehlo_last="SMTPUTF8",
    ok=Line(250, "2.1.0 Sender OK", USER, "Exchange transcripts (RCPT: 2.1.5 Recipient OK)"),
    data=Line(354, "Start mail input; end with <CRLF>.<CRLF>", USER, "Exchange transcripts"),
    accepted=Line(250, "2.0.0 OK {} Queued mail for delivery", USER, "Exchange transcripts"),
    quit=Line(221, "2.0.0 Service closing transmission channel", USER, "Exchange transcripts"),
    session_cap=Line(421, "4.3.2 Too many messages in this session", INFER),
    rate_exceeded=Line(
        554,
        "5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException",
        DOC,
        "MS-SUBMIT",
    ),
    daily_quota=Line(
        554,
        "5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException",
        DOC,
        "MS-SUBMIT; OfficeDocs-Support#1150: the recipients a day, not the minute rate",
    ),
    too_many_connections=Line(
        421,
        "4.3.2 The maximum number of concurrent connections has "
        "exceeded a limit, closing transmission channel",
        USER,
        "Ombi-app/Ombi#4429 (Exchange's wording)",
    ),
    idle_timeout=Line(421, "4.4.1 Connection timed out", INFER),
    too_many_recipients=Line(452, "4.5.3 Too many recipients", INFER),
    too_large=Line(
        552, "5.3.4 Message size exceeds fixed maximum message size", USER, "Exchange NDRs"
    ),
    not_verified=Line(
        550,
        "5.7.60 SMTP; Client does not have permissions to send as this sender",
        USER,
        "Exchange Online send-as errors",
    ),
    auth_required=Line(
        530, "5.7.57 Client not authenticated to send mail.", USER, "Exchange Online error 5.7.57"
    ),
    starttls_first=Line(
        504, "5.7.4 Unrecognized authentication type", USER, "Exchange: AUTH before STARTTLS"
    ),
    auth_ok=Line(235, "2.7.0 Authentication successful", USER, "Exchange transcripts"),
    auth_invalid=Line(535, "5.7.3 Authentication unsuccessful", USER, "Exchange Online 5.7.3"),
    sender_repeated=Line(503, "5.5.2 Sender already specified", INFER),
    bad_sender=Line(501, "5.1.7 Invalid address", USER, "Exchange 5.1.7"),
    bad_recipient=Line(501, "5.1.3 Invalid address", USER, "Exchange 5.1.3"),
    advertise_size=True,
    user_connections=Line(
        432,
        "4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending "
        "for more information.",
        DOC,
        "MS-SUBMIT (the first sentence); the rest as clients received it at end of data: "
        "sabuhish/fastapi-mail#75 (SMTPDataError), nodemailer#1613 ('Message failed')",
    ),
)
M365_LIMITS = Limits(
    require_auth=True,
    per_user=True,
    max_connections_per_user=3,
    tarpit_per_minute=30,
    daily_quota=10_000,
    max_recipients=500,
    max_message_bytes=35 * MB,
)
M365_EVIDENCE = {
    "max_connections_per_user": Cite(DOC, "MS-SUBMIT: 3 concurrent connections a mailbox"),
    "tarpit_per_minute": Cite(
        DOC, "MS-SUBMIT, MS-LIMITS: 30 messages a minute; the excess is delayed, not refused"
    ),
    "daily_quota": Cite(DOC, "MS-SUBMIT: 10,000 recipients a day (rolling 24 h: inferred)"),
    "per_user": Cite(DOC, "MS-SUBMIT: the limits are a mailbox's"),
    "max_recipients": Cite(DOC, "MS-LIMITS: 500 recipients a message (default)"),
    "max_message_bytes": Cite(DOC, "MS-LIMITS: 35 MB default send size"),
}

# --- Gmail and Google Workspace, smtp.gmail.com:587, and the relay smtp-relay.gmail.com -----

GMAIL_REPLIES = Replies(
    host="smtp.gmail.com",
    ident="ESMTP {token} - gsmtp",
    ehlo_last="SMTPUTF8",
    ok=Line(250, "2.1.0 OK - gsmtp", USER, "Gmail transcripts"),
    data=Line(354, "Go ahead - gsmtp", USER, "Gmail transcripts"),
    accepted=Line(250, "2.0.0 OK {} - gsmtp", USER, "Gmail transcripts"),
    quit=Line(221, "2.0.0 closing connection - gsmtp", USER, "Gmail transcripts"),
    session_cap=Line(421, "4.7.0 Try again later, closing connection.", DOC, "G-ERR"),
    rate_exceeded=Line(421, "4.7.0 Try again later, closing connection.", DOC, "G-ERR"),
    daily_quota=Line(
        550,
        "5.4.5 Daily user sending limit exceeded. For more information on Gmail sending limits "
        "go to https://support.google.com/a/answer/166852 - gsmtp",
        USER,
        "woowacourse-teams/2025-ah-madda#635 (2025); older 'Daily user sending quota "
        "exceeded.' (gen-smtp#140, PHPMailer#2113); at DATA: PHPMailer#1370 'DATA command failed'",
    ),
    too_many_connections=Line(421, "4.7.0 Try again later, closing connection.", DOC, "G-ERR"),
    idle_timeout=Line(451, "4.4.2 Timeout - closing connection. - gsmtp", DOC, "G-ERR"),
    too_many_recipients=Line(
        452, "4.5.3 Your message has too many recipients. - gsmtp", DOC, "G-ERR"
    ),
    too_large=Line(
        552, "5.3.4 Your message exceeded Google's message size limits. - gsmtp", DOC, "G-ERR"
    ),
    not_verified=Line(
        553, "5.7.1 Sender address rejected: not owned by user {} - gsmtp", DOC, "G-ERR"
    ),
    auth_required=Line(530, "5.7.0 Authentication Required. - gsmtp", DOC, "G-ERR"),
    starttls_first=Line(530, "5.7.0 Must issue a STARTTLS command first. - gsmtp", DOC, "G-ERR"),
    auth_ok=Line(235, "2.7.0 Accepted", USER, "Gmail transcripts"),
    auth_invalid=Line(
        535,
        "5.7.8 Username and Password not accepted. Learn more at "
        "https://support.google.com/mail/?p=BadCredentials - gsmtp",
        USER,
        "gophish/gophish#1869",
    ),
    sender_repeated=Line(503, "5.5.1 MAIL specified twice - gsmtp", DOC, "G-ERR"),
    bad_sender=Line(555, "5.5.2 Syntax error. - gsmtp", DOC, "G-ERR"),
    bad_recipient=Line(
        553, "5.1.2 The recipient address is not a valid RFC 5321 address. - gsmtp", DOC, "G-ERR"
    ),
    advertise_size=True,
    too_many_logins=Line(
        454,
        "4.7.0 Too many login attempts, please try again later. - gsmtp",
        USER,
        "nodemailer#1388 ('Invalid login'), gophish/gophish#1836, pivorak-web-app#281 (AUTH)",
    ),
)
GMAIL_LIMITS = Limits(
    require_auth=True,
    per_user=True,
    daily_quota=500,
    quota_stage="DATA",
    auth_per_minute=60,
    max_recipients=100,
    max_message_bytes=25 * MB,
)
GMAIL_EVIDENCE = {
    "daily_quota": Cite(DOC, "support.google.com/mail/answer/22839: 500 a day (personal)"),
    "quota_stage": Cite(USER, "PHPMailer#1370: 'DATA command failed: 550 5.4.5'"),
    "per_user": Cite(DOC, "G-LIM: limits are per user account"),
    "auth_per_minute": Cite(
        INFER, "no number published; gophish#1836 met the 454 after 78 logins in a burst"
    ),
    "max_recipients": Cite(INFER, "G-LIM lists 100 recipients a message over SMTP for POP/IMAP"),
    "max_message_bytes": Cite(DOC, "25 MB (G-LIM)"),
}
GMAIL_RELAY_REPLIES = Replies(
    **{
        **GMAIL_REPLIES.__dict__,
        "host": "smtp-relay.gmail.com",
        "daily_quota": Line(
            550, "5.4.5 Daily SMTP relay limit exceeded for user. - gsmtp", DOC, "G-ERR"
        ),
        "rate_exceeded": Line(
            450, "4.2.1 Peak SMTP relay limit exceeded for this customer. - gsmtp", DOC, "G-ERR"
        ),
    }
)

# --- SendGrid, smtp.sendgrid.net:587 ------------------------------------------------------

SENDGRID_REPLIES = Replies(
    host="smtp.sendgrid.net",
    ident="ESMTP service ready at ismtpd{instance}.sendgrid.net",
    ehlo_last="AUTH=PLAIN LOGIN",
    ok=Line(250, "Sender address accepted", INFER),
    data=Line(354, "Continue", INFER),
    accepted=Line(250, "Ok: queued as {}", USER, "SendGrid delivery logs"),
    quit=Line(221, "See you later", INFER),
    session_cap=Line(421, "4.7.0 Too many messages for this connection", INFER),
    rate_exceeded=Line(421, "temporarily deferred", USER, "kobotoolbox/kpi mailer.py signatures"),
    daily_quota=Line(
        451,
        "Authentication failed: Maximum credits exceeded",
        USER,
        "mautic/mautic#8721 (transcript: the reply to the AUTH password)",
    ),
    # kpi's signatures also have "450 too frequent connects": a connection rate, not this cap.
    too_many_connections=Line(421, "4.7.0 Too many connections", INFER),
    idle_timeout=Line(421, "4.4.2 Timeout", INFER),
    too_many_recipients=Line(
        452,
        "Too many recipients received this hour",
        USER,
        "kobotoolbox/kpi mailer.py (an hourly limit there)",
    ),
    too_large=Line(552, "5.3.4 Message size exceeds fixed limit", INFER),
    not_verified=Line(
        550,
        "The from address does not match a verified Sender Identity. {}",
        USER,
        "SendGrid sender identity errors",
    ),
    auth_required=Line(530, "5.7.0 Authentication required", INFER),
    starttls_first=Line(530, "5.7.0 Must issue a STARTTLS command first", INFER),
    auth_ok=Line(235, "Authentication successful", USER, "SendGrid transcripts"),
    auth_invalid=Line(
        535,
        "Authentication failed: Bad username / password",
        USER,
        "SendGrid support pages and issue logs",
    ),
    sender_repeated=Line(503, "5.5.1 Error: nested MAIL command", INFER),
    bad_sender=Line(501, "5.1.7 Bad sender address syntax", INFER),
    bad_recipient=Line(501, "5.1.3 Bad recipient address syntax", INFER),
    advertise_size=True,
)
SENDGRID_LIMITS = Limits(
    require_auth=True,
    session_limit=5_000,
    max_connections=10_000,
    daily_quota=100,
    quota_stage="AUTH",
    max_message_bytes=30 * MB,
)
SENDGRID_EVIDENCE = {
    "session_limit": Cite(DOC, "SG-SMTP: 'up to 5k messages per SMTP connection'"),
    "max_connections": Cite(DOC, "SG-SMTP: 'up to 10k concurrent connections from a server'"),
    "daily_quota": Cite(INFER, "the free plan's 100 a day as an example; credits are a plan's"),
    "quota_stage": Cite(USER, "mautic#8721: credits refused at AUTH"),
    "max_message_bytes": Cite(USER, "mautic#8721 EHLO: SIZE 31457280 (30 MB)"),
}

# --- SparkPost, smtp.sparkpostmail.com:587 -------------------------------------------------

SPARKPOST_REPLIES = Replies(
    **{
        **SENDGRID_REPLIES.__dict__,
        "host": "smtp.sparkpostmail.com",
        "ident": "ESMTP",
        "ehlo_last": "8BITMIME",
        "ok": Line(250, "2.0.0 Ok", INFER),
        "accepted": Line(250, "2.0.0 Ok: queued as {}", INFER),
        "quit": Line(221, "2.0.0 Bye", INFER),
        "session_cap": Line(421, "4.7.0 Too many messages on this connection", INFER),
        "rate_exceeded": Line(421, "4.7.0 Sending rate exceeded", INFER),
        "daily_quota": Line(550, "5.4.0 Sending limit exceeded", INFER),
        "too_many_connections": Line(421, "4.7.0 Too many connections", INFER),
        "idle_timeout": Line(421, "4.4.2 Idle timeout, closing connection", INFER),
        "auth_ok": Line(235, "2.0.0 OK", INFER),
        "auth_invalid": Line(535, "5.7.8 Authentication credentials invalid", INFER),
        "too_many_recipients": Line(452, "4.5.3 Too many recipients", INFER),
        "not_verified": Line(
            550, "5.7.1 Unconfigured Sending Domain <{}>", USER, "SparkPost sending-domain errors"
        ),
    }
)
SPARKPOST_LIMITS = Limits(require_auth=True, session_limit=100, idle_timeout_s=60.0)
SPARKPOST_EVIDENCE = {
    "session_limit": Cite(
        DOC, "SP-SMTP #468: reconnect after 100 messages; the enforced limit was 20k (#500)"
    ),
    "idle_timeout_s": Cite(DOC, "SP-SMTP #411, #468: idle connections closed after 1 minute"),
}

# --- Emailit: a small provider that documents every reply and its stage ---------------------

EMAILIT_REPLIES = Replies(
    **{
        **SENDGRID_REPLIES.__dict__,
        "host": "smtp.emailit.com",
        "ident": "ESMTP",
        "ehlo_last": "8BITMIME",
        "ok": Line(250, "OK", INFER),
        "accepted": Line(250, "OK {}", INFER),
        "rate_exceeded": Line(452, "4.4.5 Messages per second limit exceeded", DOC, "EMAILIT"),
        "daily_quota": Line(452, "4.5.3 Daily message limit exceeded", DOC, "EMAILIT"),
        "auth_invalid": Line(535, "Authentication failed", DOC, "EMAILIT"),
        "auth_ok": Line(235, "Authentication successful", INFER),
    }
)
EMAILIT_LIMITS = Limits(require_auth=True, rate_per_s=2.0, daily_quota=5_000, quota_stage="MAIL")
EMAILIT_EVIDENCE = {
    "rate_per_s": Cite(DOC, "EMAILIT: 2 messages a second"),
    "daily_quota": Cite(DOC, "EMAILIT: 5,000 messages a day"),
    "quota_stage": Cite(DOC, "EMAILIT: both refused at MAIL FROM"),
}

PROVIDERS: dict[str, Profile] = {
    "microsoft365": Profile(
        "microsoft365",
        "Microsoft 365 SMTP AUTH submission: 3 connections a mailbox, 30 messages a minute "
        "(the excess delayed), 10,000 recipients a day",
        M365_LIMITS,
        M365_REPLIES,
        M365_EVIDENCE,
        unknown=("the reply to an idle session", "a per-session message cap"),
    ),
    "gmail": Profile(
        "gmail",
        "Gmail (personal) submission: 500 a day refused at DATA, too many logins refused at AUTH",
        GMAIL_LIMITS,
        GMAIL_REPLIES,
        GMAIL_EVIDENCE,
        unknown=("how many logins a minute Google allows", "a per-session message cap"),
    ),
    "gmail-workspace": Profile(
        "gmail-workspace",
        "Google Workspace submission: as gmail, 2,000 a day a user",
        GMAIL_LIMITS.updated(daily_quota=2_000),
        GMAIL_REPLIES,
        {**GMAIL_EVIDENCE, "daily_quota": Cite(DOC, "G-LIM: 2,000 messages a day a user")},
    ),
    "gmail-relay": Profile(
        "gmail-relay",
        "Google Workspace SMTP relay (smtp-relay.gmail.com): 10,000 recipients a day a user",
        GMAIL_LIMITS.updated(daily_quota=10_000, quota_stage="EOM", auth_per_minute=None),
        GMAIL_RELAY_REPLIES,
        {
            **GMAIL_EVIDENCE,
            "daily_quota": Cite(DOC, "answer/2956491: 10,000 recipients a day a user"),
            "quota_stage": Cite(INFER, "not reported; end of data assumed"),
        },
        unknown=("the number behind 'Peak SMTP relay limit exceeded'",),
    ),
    "sendgrid": Profile(
        "sendgrid",
        "SendGrid SMTP: 5,000 messages a connection; spent credits refused at AUTH",
        SENDGRID_LIMITS,
        SENDGRID_REPLIES,
        SENDGRID_EVIDENCE,
        unknown=("the reply at the 5,001st message of a connection", "the hourly limit's number"),
    ),
    "sparkpost": Profile(
        "sparkpost",
        "SparkPost SMTP: 100 messages a connection, idle connections closed after a minute",
        SPARKPOST_LIMITS,
        SPARKPOST_REPLIES,
        SPARKPOST_EVIDENCE,
        unknown=("any reply text for its limits",),
    ),
    "emailit": Profile(
        "emailit",
        "Emailit SMTP relay: 2 a second and 5,000 a day, both refused at MAIL FROM",
        EMAILIT_LIMITS,
        EMAILIT_REPLIES,
        EMAILIT_EVIDENCE,
    ),
}
