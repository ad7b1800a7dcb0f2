"""Whether a MAIL FROM or RCPT TO address is one SES would take: a mailbox, RFC 5321 4.1.2.

aiosmtpd parses addresses with the email package's header parser, which reads almost anything:
`<img/src=x/onerror=alert>` (no domain) and `<a b@example.com>` (a space in the local part) were
answered `250 Ok` and stored. SES answers such a command `501 Invalid MAIL FROM address
provided` (or `... RCPT TO ...`). Non-ASCII is allowed (SMTPUTF8, RFC 6531).

>>> is_mailbox("user@example.com"), is_mailbox('"a b"@example.com'), is_mailbox("a b@example.com")
(True, True, False)
"""

from __future__ import annotations

import re

_ATEXT = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\U0010ffff]"
_DOT_STRING = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_QUOTED = r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\U0010ffff]|\\[\x20-\x7e])*"'
_LABEL = (
    r"[A-Za-z0-9\u0080-\U0010ffff](?:[A-Za-z0-9\-\u0080-\U0010ffff]*[A-Za-z0-9\u0080-\U0010ffff])?"
)
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*"
_LITERAL = r"\[[\x21-\x5a\x5e-\x7e]+\]"
_MAILBOX = re.compile(rf"(?:{_DOT_STRING}|{_QUOTED})@(?:{_DOMAIN}|{_LITERAL})")
MAX_PATH = 256  # RFC 5321 4.5.3.1.3, the brackets included


def is_mailbox(address: str) -> bool:
    """`local@domain` as RFC 5321 (with SMTPUTF8) has it; no brackets, no parameters."""
    return len(address) <= MAX_PATH - 2 and _MAILBOX.fullmatch(address) is not None


def lower_shared(text: str) -> str:
    """`text` in lower case: `text` itself when it is already, so that a key kept for each of
    100,000 messages shares the command's string rather than copying it."""
    lowered = text.lower()
    return text if lowered == text else lowered
