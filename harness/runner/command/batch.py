"""What a client process is handed: the batch as files, and the server in its environment.

The messages go in a folder as ``00001.eml`` ... (their bytes as they are), with a manifest
that lists each one's envelope and the parts an application builds a message from (from, to,
subject, text, html, attachments written beside them); the claims file starts empty. The
variables are listed in :mod:`harness.runner.command`.
"""

from __future__ import annotations

import email
import email.policy
import functools
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.base.endpoint import Endpoint
from harness.runner.strategy import OutgoingMessage


def write_batch(messages: Sequence[OutgoingMessage], root: Path) -> tuple[Path, Path]:
    """Write `messages` under `root` (``messages/``, ``attachments/``, ``manifest.json``) and
    an empty ``claims.jsonl``; the manifest's path and the claims file's."""
    folder = root / "messages"
    folder.mkdir()
    manifest = root / "manifest.json"
    # One entry at a time, as json.dumps(entries, indent=1) would lay them out: the batch may be
    # a StreamedBatch too large to hold (issue 28).
    with manifest.open("w", encoding="utf-8") as out:
        out.write("[")
        for index, message in enumerate(messages, 1):
            path = folder / f"{index:05d}.eml"
            data = message.data
            path.write_bytes(data)
            entry = {
                "id": message.id,
                "sender": message.sender,
                "recipients": list(message.recipients),
                "file": str(path),
                **_fields(data, root / "attachments" / f"{index:05d}"),
            }
            text = json.dumps(entry, ensure_ascii=False, indent=1)
            out.write(("\n " if index == 1 else ",\n ") + text.replace("\n", "\n "))
        out.write("\n]" if messages else "]")
    claims = root / "claims.jsonl"
    claims.touch()
    return manifest, claims


def client_environment(
    endpoint: Endpoint, folder: Path, manifest: Path, claims: Path, time_scale: float
) -> dict[str, str]:
    """This process's environment, with the server at `endpoint` and the batch's files."""
    return {
        **os.environ,
        "SMTP_HOST": endpoint.host,
        "SMTP_PORT": str(endpoint.port),
        "SMTP_TLS": endpoint.tls.value,
        "SMTP_USER": endpoint.username or "",
        "SMTP_PASSWORD": endpoint.password or "",
        "SMTP_CA_FILE": endpoint.ca_file or "",
        # The SES HTTP API of the same account, for clients on an AWS SDK.
        "SES_API_URL": endpoint.api_url or "",
        "AWS_ACCESS_KEY_ID": endpoint.aws_access_key_id or "",
        "AWS_SECRET_ACCESS_KEY": endpoint.aws_secret_access_key or "",
        "AWS_REGION": endpoint.region,
        "AWS_DEFAULT_REGION": endpoint.region,
        "AWS_EC2_METADATA_DISABLED": "true",  # never look for instance credentials
        # SES's published events (JSON), in a scenario with events = true (docs/events.md).
        "SES_EVENTS_URL": endpoint.events_url or "",
        "HARNESS_MESSAGES_DIR": str(folder),
        "HARNESS_MANIFEST": str(manifest),
        "HARNESS_CLAIMS": str(claims),
        "HARNESS_TIME_SCALE": f"{time_scale:g}",
    }


def _fields(data: bytes, stem: Path) -> dict[str, Any]:
    """The parts an application builds a message from, for clients that do not send raw bytes.

    Attachments are written to an ``attachments`` folder (``00001.1.bin`` ...), to pass by path.
    """
    fields, attachments = _parts(data) if len(data) <= _PARTS_CACHED_BYTES else _parse(data)
    written = []
    for number, (filename, content_type, payload) in enumerate(attachments, 1):
        stem.parent.mkdir(exist_ok=True)
        path = stem.with_name(f"{stem.name}.{number}.bin")
        path.write_bytes(payload)
        written.append({"filename": filename, "content_type": content_type, "file": str(path)})
    return {**fields, "attachments": written}


#: Messages up to this size keep their parsed parts for the next case of the same batch (every
#: client of a conformance run, every command strategy of a matrix): parsing with the modern
#: email policy was a third of a command case's own time. Larger ones are parsed each time.
_PARTS_CACHED_BYTES = 256 * 1024


@functools.lru_cache(maxsize=8192)
def _header(name: str, value: str) -> Any:
    return email.policy.default.header_fetch_parse(name, value)


class _SharedHeaders(email.policy.EmailPolicy):
    """The default policy, with each header's parse kept for the next message that has it.

    A batch's messages share most header values (Content-Type, MIME-Version, the sender), and
    ``get_body``/``iter_attachments`` fetch a part's Content-Type many times over: parsing
    1,000 messages took 2.3 s with the default policy and 0.95 s with this one (0.36 s when
    the values were seen before), with the same results. Header objects are immutable.
    """

    def header_fetch_parse(self, name: str, value: Any) -> Any:
        if hasattr(value, "name"):  # already parsed (set by a program, not read from bytes)
            return value
        return _header(name, value)


_POLICY = _SharedHeaders()


def _parse(data: bytes) -> tuple[dict[str, Any], tuple[tuple[str, str, bytes], ...]]:
    message = email.message_from_bytes(data, policy=_POLICY)
    body = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    attachments = tuple(
        (
            part.get_filename() or f"attachment-{number}",
            part.get_content_type(),
            part.get_payload(decode=True) or b"",
        )
        for number, part in enumerate(message.iter_attachments(), 1)
    )
    fields = {
        "from": str(message.get("From", "")),
        "to": str(message.get("To", "")),
        "subject": str(message.get("Subject", "")),
        "text": body.get_content() if body is not None else "",
        "html": html.get_content() if html is not None else None,
    }
    return fields, attachments


_parts = functools.lru_cache(maxsize=4096)(_parse)
