"""Reading what a client process says happened: its claims file, one JSON object a line.

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp(), "claims.jsonl")
>>> _ = path.write_text('{"id": "<1@x>", "status": "failed", "code": 421}\\n\\n')
>>> [(c.message_id, c.status.value, c.reply_code) for c in read_claims(path)]
[('<1@x>', 'failed', 421)]
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.runner.strategy import Claim, ClaimStatus

_STATUSES = tuple(s.value for s in ClaimStatus)


class ClientFailed(RuntimeError):
    """The client process exited non-zero, timed out, or wrote claims that cannot be read."""


def read_claims(path: Path) -> list[Claim]:
    """The claims a client wrote, one JSON object a line; blank lines are skipped."""
    if not path.exists():
        return []
    claims = []
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                claims.append(_claim(line, f"HARNESS_CLAIMS line {number}"))
    return claims


def _claim(line: str, where: str) -> Claim:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as error:
        raise ClientFailed(f"{where}: not JSON: {error}") from None
    if not isinstance(data, dict):
        raise ClientFailed(f"{where}: a claim is a JSON object, got {line.strip()[:60]!r}")
    message_id, status = data.get("id"), data.get("status")
    code, text = data.get("code"), data.get("text")
    if not isinstance(message_id, str):
        raise ClientFailed(f"{where}: 'id' must be the message's Message-ID, a string")
    if status not in _STATUSES:
        raise ClientFailed(f"{where}: 'status' is {status!r}; allowed: {', '.join(_STATUSES)}")
    if code is not None and (not isinstance(code, int) or isinstance(code, bool)):
        raise ClientFailed(f"{where}: 'code' must be an integer reply code or null")
    if text is not None and not isinstance(text, str):
        raise ClientFailed(f"{where}: 'text' must be a string or null")
    return Claim(message_id, ClaimStatus(status), code, text)
