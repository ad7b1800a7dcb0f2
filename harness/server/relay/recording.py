"""`--record FILE`: the upstream's side of every proxied session, as a transcript file.

JSON lines, written as the conversation goes (a killed proxy leaves what it had). The first
line says what the file is; then one line per command the proxy sent and per reply line the
upstream sent, each with its session and stage (CONNECT for the greeting, EHLO, STARTTLS,
AUTH, MAIL, RCPT, DATA, EOM for the end of a message, RSET, NOOP, QUIT). AUTH's secrets are
masked. `harness.core.transcript` reads it back; `ses-harness profile-check` compares it
with a profile::

    {"transcript": "ses-harness", "version": 1, "upstream": "127.0.0.1:1025", "tls": "none",
     "recorded": "2026-12-07T00:30:00Z"}
    {"session": 1, "stage": "CONNECT", "code": 220, "text": "mx ESMTP", "last": true}
    {"session": 1, "stage": "EHLO", "sent": "EHLO client.example"}
"""

from __future__ import annotations

import datetime
import json
import threading
from pathlib import Path
from typing import IO, Any

from harness.core.transcript import FORMAT, VERSION


class Recorder:
    """Appends transcript lines to `path` (created or truncated when the proxy starts)."""

    def __init__(self, path: str | Path, *, upstream: str, tls: str) -> None:
        self.path = Path(path)
        self._file: IO[str] | None = self.path.open("w", encoding="utf-8")
        self._lock = threading.Lock()
        # When, for the evidence of a profile seeded from it (`profile-check --write-profile`).
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        head = {"transcript": FORMAT, "version": VERSION, "upstream": upstream, "tls": tls}
        self._write({**head, "recorded": now.replace("+00:00", "Z")})

    def line(
        self, session: int, stage: str, sent: bool, text: str, code: int | None, last: bool
    ) -> None:
        item: dict[str, Any] = {"session": session, "stage": stage}
        if sent:
            item["sent"] = text
        else:
            item.update(code=code, text=text, last=last)
        self._write(item)

    def _write(self, item: dict[str, Any]) -> None:
        with self._lock:
            if self._file is not None:
                self._file.write(json.dumps(item, ensure_ascii=False) + "\n")
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
