"""A scenario's `[upstream]`: the case runs through the proxy to a real SMTP server.

::

    [upstream]
    address = "127.0.0.1:1025"        # required
    tls = "none"                      # or "starttls", "implicit"
    ca_file = "ca.pem"                # trust this CA (default: the system's)
    verify = true
    copies = "maildev"                # count copies on the upstream's side (default "ledger")
    api = "http://127.0.0.1:1080"     # maildev's web API

The plan stands in front as in any case (`harness.server.relay`). Copies are counted on the
upstream's own side where it lets us read them: maildev's API, emptied before the case and
read after it, the cases that read one maildev taking turns (a lock file per API); elsewhere
on the proxy's ledger, which records a message when the upstream accepted it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.base.ledger import MessageRecord
from harness.core.errors import PlanError

KEYS = ("address", "tls", "ca_file", "verify", "copies", "api")
COPIES = ("ledger", "maildev")
TLS = ("none", "starttls", "implicit")
#: Bound on one request to the upstream's API; never reached when it answers.
API_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class UpstreamSpec:
    address: str
    tls: str = "none"
    ca_file: str | None = None
    verify: bool = True
    copies: str = "ledger"
    api: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, base: Path | None = None) -> UpstreamSpec:
        """From a scenario's `[upstream]` table; a PlanError names the key. `ca_file` is
        relative to `base` (the scenario's folder)."""
        unknown = sorted(set(data) - set(KEYS))
        if unknown:
            raise PlanError(f"upstream.{unknown[0]}", "unknown key", allowed=KEYS)
        address = data.get("address")
        host, _, port = str(address).rpartition(":")
        if not isinstance(address, str) or not host or not port.isdigit():
            raise PlanError(
                "upstream.address", f"{address!r} is not HOST:PORT", allowed="HOST:PORT"
            )
        tls = data.get("tls", "none")
        if tls not in TLS:
            raise PlanError("upstream.tls", f"{tls!r} is not allowed", allowed=TLS)
        copies = data.get("copies", "ledger")
        if copies not in COPIES:
            raise PlanError("upstream.copies", f"{copies!r} is not allowed", allowed=COPIES)
        api = data.get("api")
        if copies == "maildev" and not (isinstance(api, str) and api.startswith("http")):
            raise PlanError("upstream.api", "maildev's web API is needed", allowed="http://...")
        verify = data.get("verify", True)
        if not isinstance(verify, bool):
            raise PlanError("upstream.verify", f"{verify!r} is not true or false")
        ca_file = data.get("ca_file")
        if ca_file is not None and not isinstance(ca_file, str):
            raise PlanError("upstream.ca_file", "must be a path (a string)")
        if ca_file is not None and base is not None:
            ca_file = str(base / ca_file)
        return cls(address, tls, ca_file, verify, copies, api)

    def proxy_options(self) -> dict[str, Any]:
        """`SesProxy`'s keywords for this upstream."""
        return {
            "upstream": self.address,
            "upstream_tls": self.tls,
            "upstream_ca_file": self.ca_file,
            "upstream_verify": self.verify,
        }

    @contextlib.contextmanager
    def case(self) -> Iterator[None]:
        """Around one case: a maildev read back is the case's alone (a lock per API, and it is
        emptied first)."""
        if self.copies != "maildev":
            yield
            return
        assert self.api is not None
        name = hashlib.sha256(self.api.encode()).hexdigest()[:16]
        lock = Path(tempfile.gettempdir()) / f"ses-harness-upstream-{name}.lock"
        with lock.open("a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            try:
                self._api("DELETE", "/email/all")
                yield
            finally:
                fcntl.flock(held, fcntl.LOCK_UN)

    def copies_of(self, recorded: Sequence[MessageRecord]) -> list[MessageRecord]:
        """The copies to score: what the upstream holds (maildev), each with the proxy's record
        of it where there is one; or the proxy's ledger."""
        if self.copies != "maildev":
            return list(recorded)
        by_id: dict[str | None, list[MessageRecord]] = {}
        for record in recorded:
            by_id.setdefault(_bracketed(record.message_id), []).append(record)
        out = []
        for email in self._held(len(recorded)):
            message_id = _bracketed(email.get("messageId"))
            envelope = email.get("envelope") or {}
            mail_from = (envelope.get("from") or {}).get("address", "")
            rcpt_tos = tuple(r.get("address", "") for r in envelope.get("to") or ())
            mine = by_id.get(message_id) or []
            if mine:
                record = mine.pop(0)
            else:  # held upstream, never recorded by the proxy: scored as the stray it is
                record = MessageRecord(
                    sequence=0,
                    session=0,
                    ses_id="",
                    mail_from=mail_from,
                    rcpt_tos=rcpt_tos,
                    message_id=message_id,
                    subject=email.get("subject"),
                    headers=(),
                    size=int(email.get("size") or 0),
                    sha256="",
                    at=recorded[-1].at if recorded else 0.0,
                    wall_at=0.0,
                    acknowledged=True,
                )
            out.append(dataclasses.replace(record, mail_from=mail_from, rcpt_tos=rcpt_tos))
        return out

    def _held(self, expected: int) -> list[dict[str, Any]]:
        """maildev's messages, once it lists as many as the proxy saw it accept (it stores a
        message after its 250), or as many as it has after `API_TIMEOUT_S`."""
        deadline = time.monotonic() + API_TIMEOUT_S
        while True:
            emails = self._api("GET", "/email")
            if len(emails) >= expected or time.monotonic() > deadline:
                return emails
            time.sleep(0.05)

    def _api(self, method: str, path: str) -> Any:
        assert self.api is not None
        request = urllib.request.Request(self.api.rstrip("/") + path, method=method)
        try:
            with urllib.request.urlopen(request, timeout=API_TIMEOUT_S) as response:
                return json.loads(response.read() or b"null")
        except (OSError, ValueError) as error:
            raise RuntimeError(f"upstream API {self.api}{path}: {error}") from None


def _bracketed(message_id: str | None) -> str | None:
    if not message_id:
        return None
    return f"<{message_id.strip().strip('<>')}>"
