"""`--store DIR`: the ledger as JSON lines and every accepted message as an .eml file.

Layout::

    DIR/ledger.jsonl          one JSON object a line: run, session, message, fault
    DIR/messages/000042.eml   the message with sequence 42, exactly as received

A message's .eml and its ledger line are written and flushed to the operating system before the
server sends its 250. That survives a killed server process (SIGKILL included): the kernel owns
the bytes once `flush` returns. It does not survive a power cut or a kernel crash, which would
need an fsync per message; a test server does not pay for that.

Starting again on the same folder keeps the history: the messages of earlier runs are loaded back
into the ledger and new ones number on from them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import IO, Any

from harness.base.ledger import FaultRecord, MessageRecord, SessionRecord
from harness.base.records import line_json
from harness.core.outcomes import Fate

LEDGER_FILE = "ledger.jsonl"
MESSAGES_DIR = "messages"


class Store:
    """A LedgerSink that keeps the ledger and the messages in a folder.

    >>> import tempfile
    >>> from harness import Ledger
    >>> store = Store(tempfile.mkdtemp())
    >>> ledger = Ledger(sink=store)
    >>> ledger.restore(store.load_messages())   # history of earlier runs, none here
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.restored = 0  # messages of earlier runs handed back by load_messages
        self._open()

    # --- LedgerSink -----------------------------------------------------------------------

    def session(self, record: SessionRecord) -> None:
        self._append(
            {
                "type": "session",
                **record.summary(),
                "transcript": [line_json(line) for line in record.transcript],
            }
        )

    def message(self, record: MessageRecord, data: bytes) -> None:
        # The body first: a ledger line never points at a file that is not there.
        with open(self.eml_path(record.sequence), "wb") as eml:
            eml.write(data)
        self._append(
            {
                "type": "message",
                "sequence": record.sequence,
                "session": record.session,
                "ses_id": record.ses_id,
                "mail_from": record.mail_from,
                "rcpt_tos": list(record.rcpt_tos),
                "message_id": record.message_id,
                "subject": record.subject,
                "headers": [list(pair) for pair in record.headers],
                "size": record.size,
                "sha256": record.sha256,
                "at": record.at,
                "wall_at": record.wall_at,
                "acknowledged": record.acknowledged,
                "via": record.via,
                "configuration_set": record.configuration_set,
                "command": record.command,
                "tenant": record.tenant,
                "fates": [fate.to_dict() for fate in record.fates],
            }
        )

    def fault(self, record: FaultRecord) -> None:
        self._append({"type": "fault", **dataclasses.asdict(record)})

    # --- history ----------------------------------------------------------------------------

    def load_messages(self) -> list[MessageRecord]:
        """The messages recorded by earlier runs, in order, without bodies (see `read_eml`).

        Raises ValueError, naming the file, when the ledger is not one this store wrote.
        """
        try:
            messages = self._messages()
        except (KeyError, TypeError, ValueError) as error:
            path = self.directory / LEDGER_FILE
            raise ValueError(f"{path}: a message record is malformed ({error!r})") from None
        self.restored = len(messages)
        return messages

    def _messages(self) -> list[MessageRecord]:
        return [
            MessageRecord(
                sequence=item["sequence"],
                session=item["session"],
                ses_id=item["ses_id"],
                mail_from=item["mail_from"],
                rcpt_tos=tuple(item["rcpt_tos"]),
                message_id=item["message_id"],
                subject=item["subject"],
                headers=tuple((key, value) for key, value in item["headers"]),
                size=item["size"],
                sha256=item["sha256"],
                at=item["at"],
                wall_at=item["wall_at"],
                acknowledged=item["acknowledged"],
                via=item.get("via", "smtp"),  # ledgers written before the SES API said nothing
                configuration_set=item.get("configuration_set"),
                command=item.get("command"),
                tenant=item.get("tenant"),
                fates=tuple(Fate.from_dict(f) for f in item.get("fates", ())),
            )
            for item in self.records("message")
            if item["run"] < self.run
        ]

    def records(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Every ledger line on disk (of one `kind`: run, session, message or fault)."""
        path = self.directory / LEDGER_FILE
        items = []
        with open(path, encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}: line {number} is not JSON ({error})") from None
        return [item for item in items if kind is None or item.get("type") == kind]

    def eml_path(self, sequence: int) -> Path:
        return self.directory / MESSAGES_DIR / f"{sequence:06d}.eml"

    def read_eml(self, sequence: int) -> bytes | None:
        """The stored body of message `sequence`, or None if it is not on disk."""
        try:
            return self.eml_path(sequence).read_bytes()
        except FileNotFoundError:
            return None

    def reset(self) -> Path | None:
        """Start an empty ledger; the old files move to `DIR/reset-N/`, nothing is deleted."""
        self._file.close()
        archive = None
        if self.records_exist():
            number = 1
            while (self.directory / f"reset-{number}").exists():
                number += 1
            archive = self.directory / f"reset-{number}"
            archive.mkdir()
            for name in (LEDGER_FILE, MESSAGES_DIR):
                if (self.directory / name).exists():
                    (self.directory / name).rename(archive / name)
        self.restored = 0
        self._open()
        return archive

    def records_exist(self) -> bool:
        path = self.directory / LEDGER_FILE
        return path.exists() and path.stat().st_size > 0

    def close(self) -> None:
        self._file.close()

    # --- internals ------------------------------------------------------------------------

    def _open(self) -> None:
        (self.directory / MESSAGES_DIR).mkdir(parents=True, exist_ok=True)
        path = self.directory / LEDGER_FILE
        _drop_partial_last_line(path)
        self._file: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115 - held open
        self.run = 1 + sum(1 for _ in self.records("run"))
        self._append({"type": "run", "started_wall": time.time(), "pid": os.getpid()})

    def _append(self, item: dict[str, Any]) -> None:
        self._file.write(json.dumps({**item, "run": self.run}) + "\n")
        self._file.flush()


def _drop_partial_last_line(path: Path) -> None:
    """A process killed mid-write can leave half a line; appending to it would spoil the next."""
    if not path.exists():
        return
    with open(path, "rb+") as file:
        content = file.read()
        if content and not content.endswith(b"\n"):
            file.truncate(content.rfind(b"\n") + 1)
