"""Addresses in MAIL FROM and RCPT TO, read once, where the commands arrive."""

from __future__ import annotations

import functools
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError

from harness.core.address import is_mailbox


def path_of(arg: str | None) -> str | None:
    """The path of a MAIL FROM or RCPT TO argument: inside the angle brackets, else the first
    word after the colon (the engine and the ledger use it even where aiosmtpd refuses it)."""
    if not arg:
        return None
    inside, angled, _ = arg.partition("<")[2].partition(">")
    if angled:
        return inside
    _, _, rest = arg.partition(":")
    return rest.strip().split(" ")[0] or None


@functools.lru_cache(maxsize=4096)
def parsed_address(arg: str) -> tuple[str | None, str | None]:
    """aiosmtpd's `SMTP._getaddr`, without its per-call class definition, memoised.

    A batch sender repeats the same few addresses; parsing each with the email package's
    header parser was a quarter of the server's time per message.
    """
    try:
        if arg.lstrip().startswith("<"):
            address, rest = get_angle_addr(arg)
        else:
            address, rest = get_addr_spec(arg)
    except HeaderParseError:
        return None, None
    spec = address.addr_spec
    if spec == "<>":  # the null sender of a bounce
        return spec, rest
    # The parser reads past what SMTP allows (comments, spaces): the address must be the text
    # as sent, and a mailbox.
    path = f"<{spec}>" if arg.lstrip().startswith("<") else spec
    if not is_mailbox(spec) or arg.strip()[: len(path) + 1].rstrip() != path:
        return None, None
    return spec, rest


def masked(verb: str, arg: str | None) -> str | None:
    """The argument as the ledger keeps it: AUTH's credentials hidden."""
    if verb == "AUTH" and arg:
        mechanism = arg.split()[0]
        return f"{mechanism} ****" if len(arg.split()) > 1 else mechanism
    return arg
