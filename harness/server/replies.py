"""aiosmtpd's reply texts, turned into the profile's and into ledger lines at the door.

aiosmtpd answers some commands itself, with its own fixed wordings; the server says the
profile's instead (SES's "250 Ok", its 552, its AUTH answers). Every line the server sends
becomes a :class:`~harness.base.records.ServerLine` here: this is the one place that reads a
reply's text for its code.
"""

from __future__ import annotations

from harness.base.records import ServerLine
from harness.core.decision import Answer
from harness.core.profiles import Replies

MALFORMED = "553 5.1.3 Error: malformed address"  # aiosmtpd's, for what _getaddr refuses
AUTH_LINE_TOO_LONG = "500 5.5.6 Authentication Exchange line is too long"  # RFC 4954 section 4


class Wording:
    """aiosmtpd's fixed reply texts mapped onto a profile's lines."""

    def __init__(self, replies: Replies) -> None:
        self._lines = {
            "250 OK": str(replies.ok),
            "354 End data with <CR><LF>.<CR><LF>": str(replies.data),
            "221 Bye": str(replies.quit),
            "503 Error: nested MAIL command": str(replies.sender_repeated),
            "235 2.7.0 Authentication successful": str(replies.auth_ok),
            "535 5.7.8 Authentication credentials invalid": str(replies.auth_invalid),
        }
        # aiosmtpd says one thing for a malformed sender and recipient; SES two.
        self._malformed = {"MAIL": str(replies.bad_sender), "RCPT": str(replies.bad_recipient)}

    def line(self, text: str, *, verb: str, at: float) -> ServerLine:
        """The line to send for aiosmtpd's `text`, in answer to `verb`."""
        if text == MALFORMED:
            text = self._malformed.get(verb, self._malformed["RCPT"])
        return parse_line(self._lines.get(text, text), at)


def parse_line(text: str, at: float, decided_by: str | None = None) -> ServerLine:
    """A reply line as sent ("250-SIZE 100", "354 End data", ...) as a ledger record."""
    head, separator, message = text[:3], text[3:4], text[4:]
    if not head.isdigit() or separator not in ("", " ", "-"):
        return ServerLine(at, None, text, decided_by=decided_by)
    return ServerLine(at, int(head), message, decided_by=decided_by, last=separator != "-")


def answer_line(answer: Answer, at: float, decided_by: str | None) -> ServerLine:
    """The engine's reply, already in parts, as a ledger record."""
    return ServerLine(at, answer.code, answer.text, decided_by=decided_by)
