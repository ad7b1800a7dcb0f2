"""`--store DIR`: the ledger and every accepted message on disk before the 250, kept across
restarts, and nothing acknowledged lost when the server process is killed."""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import smtplib
import subprocess
import sys
import threading
from pathlib import Path

import aiosmtplib
from aiohttp.test_utils import TestClient, TestServer

from harness import FakeSES, Ledger, Rule
from harness.console.app import create_app
from harness.console.store import Store
from tests.serve_process import ServeProcess


def mail(number: int, tag: str = "store") -> bytes:
    return (
        f"From: app@example.com\r\nTo: user@example.com\r\nSubject: {tag} {number}\r\n"
        f"Message-ID: <{tag}-{number}@example.com>\r\n\r\nBody {number} of {tag}.\r\n"
    ).encode()


async def send(ses: FakeSES, data: bytes) -> None:
    await aiosmtplib.send(
        data, sender="app@example.com", recipients=["user@example.com"], hostname=ses.host,
        port=ses.port,
    )  # fmt: skip


def test_every_accepted_message_and_fault_is_in_the_folder(tmp_path: Path) -> None:
    store = Store(tmp_path)
    fault = Rule.from_spec("name=first-rcpt,stage=RCPT,nth=1,action=reply,code=451,text=Later")
    with FakeSES(profile="plain", faults=[fault], ledger=Ledger(sink=store)) as ses:
        with smtplib.SMTP(ses.host, ses.port) as client:
            refused = client.sendmail("app@example.com", ["a@x.com", "user@example.com"], mail(1))
            assert refused == {"a@x.com": (451, b"Later")}
            client.sendmail("app@example.com", ["user@example.com"], mail(2))
        ses.ledger.wait_for(lambda ledger: not ledger.sessions[0].open)
    store.close()
    assert (tmp_path / "messages" / "000001.eml").read_bytes() == mail(1)
    assert (tmp_path / "messages" / "000002.eml").read_bytes() == mail(2)
    records = store.records()
    assert [r["type"] for r in records] == ["run", "fault", "message", "message", "session"]
    first = records[2]
    assert (first["sequence"], first["message_id"], first["rcpt_tos"]) == (
        1,
        "<store-1@example.com>",
        ["user@example.com"],
    )
    assert first["sha256"] == hashlib.sha256(mail(1)).hexdigest()
    assert first["ses_id"] == ses.ledger.messages[0].ses_id
    assert records[1]["name"] == "first-rcpt" and records[1]["reply"] == "451 Later"
    assert records[4]["accepted"] == 2 and records[4]["close_reason"] == "client quit"


def test_a_half_written_last_line_is_dropped_when_the_folder_is_opened_again(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path)
    with (
        FakeSES(profile="plain", ledger=Ledger(sink=store)) as ses,
        smtplib.SMTP(*ses.address) as c,
    ):
        c.sendmail("app@example.com", ["user@example.com"], mail(1))
    store.close()
    with open(tmp_path / "ledger.jsonl", "a", encoding="utf-8") as ledger:
        ledger.write('{"type": "message", "sequ')  # what a kill mid-write leaves
    store = Store(tmp_path)  # again, as a restarted server does
    assert [m.message_id for m in store.load_messages()] == ["<store-1@example.com>"]
    assert [r["type"] for r in store.records()][-1] == "run"  # the new run's line parses
    store.close()


def test_a_restart_on_the_same_folder_keeps_the_history(tmp_path: Path) -> None:
    first = ServeProcess("--profile", "plain", "--store", str(tmp_path))
    try:
        with smtplib.SMTP(*first.smtp) as client:
            client.sendmail("app@example.com", ["user@example.com"], mail(1))
            client.sendmail("app@example.com", ["user@example.com"], mail(2))
        assert first.stop()[0] == 0
    finally:
        first.close()

    second = ServeProcess("--profile", "plain", "--store", str(tmp_path))
    try:
        assert f"  store     {tmp_path}  (2 messages from earlier runs)" in second.lines
        with smtplib.SMTP(*second.smtp) as client:
            client.sendmail("app@example.com", ["user@example.com"], mail(3))
        _, messages = second.api("GET", "/api/messages")
        assert [(m["sequence"], m["message_id"], m["restored"]) for m in messages] == [
            (1, "<store-1@example.com>", True),
            (2, "<store-2@example.com>", True),
            (3, "<store-3@example.com>", False),
        ]
        assert second.api("GET", "/api/messages/1/raw") == (200, mail(1))
        assert second.api("GET", "/api/messages/3/raw") == (200, mail(3))
        code, output, _ = second.stop()
        assert code == 0
        assert "messages: 1 accepted, 2 more from earlier runs in the store" in output
    finally:
        second.close()
    assert (tmp_path / "messages" / "000003.eml").read_bytes() == mail(3)


def test_sigkill_mid_batch_loses_no_message_that_got_a_250(tmp_path: Path) -> None:
    batch = 5000  # far more than are sent before the kill: the kill lands mid-batch
    kill_after = 25
    server = ServeProcess("--profile", "plain", "--store", str(tmp_path))
    acknowledged: dict[str, str] = {}  # Message-ID -> SES id from the 250
    enough = threading.Event()
    failure: list[BaseException] = []

    def send_batch() -> None:
        try:
            with smtplib.SMTP(*server.smtp, timeout=30) as client:
                client.ehlo()
                for number in range(1, batch + 1):
                    client.mail("app@example.com")
                    client.rcpt("user@example.com")
                    code, reply = client.data(mail(number, "kill"))
                    assert code == 250, reply
                    acknowledged[f"<kill-{number}@example.com>"] = reply.decode().split()[1]
                    if len(acknowledged) == kill_after:
                        enough.set()
        except (OSError, smtplib.SMTPException) as error:  # the server died under us
            failure.append(error)
        finally:
            enough.set()

    sender = threading.Thread(target=send_batch)
    sender.start()
    try:
        enough.wait()
        server.process.send_signal(signal.SIGKILL)
        sender.join()
        assert server.process.wait() == -signal.SIGKILL
    finally:
        server.close()

    assert failure, "the batch finished before the kill"
    assert kill_after <= len(acknowledged) < batch, failure
    lines = (tmp_path / "ledger.jsonl").read_text(encoding="utf-8").splitlines()
    on_disk = {}
    for index, line in enumerate(lines):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            assert index == len(lines) - 1, "only the last line may be cut by the kill"
            continue
        if record["type"] == "message":
            on_disk[record["message_id"]] = record
    for message_id, ses_id in acknowledged.items():
        record = on_disk[message_id]
        assert record["ses_id"] == ses_id
        number = int(message_id.split("-")[1].split("@")[0])
        eml = tmp_path / "messages" / f"{record['sequence']:06d}.eml"
        assert eml.read_bytes() == mail(number, "kill")


def test_reset_moves_the_stored_history_aside_and_numbers_from_1(tmp_path: Path) -> None:
    async def main() -> None:
        store = Store(tmp_path)
        ses = FakeSES(profile="plain", ledger=Ledger(sink=store))
        async with ses, TestClient(TestServer(create_app(ses, store))) as client:
            await send(ses, mail(1))
            response = await client.post("/api/reset", headers={"Content-Type": "application/json"})
            assert (await response.json())["archived_to"] == str(tmp_path / "reset-1")
            await send(ses, mail(2))
            listed = await (await client.get("/api/messages")).json()
            assert [(m["sequence"], m["message_id"]) for m in listed] == [
                (1, "<store-2@example.com>")
            ]
        store.close()

    asyncio.run(main())
    assert (tmp_path / "reset-1" / "messages" / "000001.eml").read_bytes() == mail(1)
    assert (tmp_path / "messages" / "000001.eml").read_bytes() == mail(2)
    assert '"<store-1@example.com>"' in (tmp_path / "reset-1" / "ledger.jsonl").read_text()


def test_a_body_beyond_the_memory_budget_is_served_from_the_store(tmp_path: Path) -> None:
    async def main() -> None:
        store = Store(tmp_path)
        ses = FakeSES(profile="plain", ledger=Ledger(sink=store, memory_budget_bytes=0))
        async with ses, TestClient(TestServer(create_app(ses, store))) as client:
            await send(ses, mail(1))
            assert ses.ledger.messages[0].data is None
            raw = await client.get("/api/messages/1/raw")
            assert raw.status == 200
            assert await raw.read() == mail(1)
        store.close()

    asyncio.run(main())


def test_a_ledger_broken_in_the_middle_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "ledger.jsonl").write_text('{"type": "run", "run": 1}\nnot json\n{"type": "run"}\n')
    result = subprocess.run(
        [sys.executable, "-m", "harness", "serve", "--port", "0", "--api-port", "0",
         "--store", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == (
        f"ses-harness: --store {tmp_path}: {tmp_path / 'ledger.jsonl'}: line 2 is not JSON "
        "(Expecting value: line 1 column 1 (char 0))\n"
    )
