"""The conformance clients in PHP, Ruby, Go, Java and Perl, unmodified, against FakeSES over
loopback: each on a session cap of 10 over 24 messages, its verdict pinned.

Each needs its language and library from Debian's packages (what ``.ci/run`` installs); a test
whose toolchain is missing is skipped, saying which package to install.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.base.ledger import Ledger
from harness.core.errors import PlanError
from harness.core.plan import Plan
from harness.runner.conformance import (
    CLIENTS,
    check_clients,
    render,
    runnable,
    story,
    toolchains,
    write_doc,
)
from harness.runner.conformance.table import END, START
from harness.runner.matrix import TRANSCRIPT_LIMIT_LINES, run_case
from harness.runner.scenario import Scenario
from harness.runner.workload import WorkloadSpec

CLIENTS_DIR = Path(__file__).resolve().parents[1] / "clients"
OURS = {client.name: client for client in CLIENTS}


def needs(kind: str) -> pytest.MarkDecorator:
    lacking = toolchains.missing(kind, CLIENTS_DIR)
    return pytest.mark.skipif(
        lacking is not None, reason=f"needs {lacking}: {toolchains.INSTALL[kind]}"
    )


def small_cap(tmp_path: Path) -> Scenario:
    """24 messages, some with attachments and non-ASCII names; the session cap at 10."""
    plan = Plan(profile="ses", seed=11).with_limits(session_limit=10, rate_per_s=None)
    return Scenario(
        name="small-cap",
        path=tmp_path / "small-cap.toml",
        workload=WorkloadSpec(count=24, seed=11, attachments=0.3, unicode=0.3),
        plan=plan,
    )


def run(name: str, tmp_path: Path) -> tuple[dict, Ledger, str]:
    """Our client `name` on the small cap: its case, the ledger, the table's sentence."""
    ledger = Ledger(transcript_limit_lines=TRANSCRIPT_LIMIT_LINES)
    case = run_case(small_cap(tmp_path), OURS[name].spec(CLIENTS_DIR, None), ledger=ledger)
    return case, ledger, story(case, ledger)


def counts(case: dict) -> dict[str, int]:
    keys = ("delivered_once", "silently_lost", "given_up", "abandoned", "duplicated")
    return {k: case["score"][k] for k in keys if case["score"][k]}


def replies(case: dict) -> list[str | None]:
    return [m["reply"] for m in case["messages"] if m["claim"] == "failed"]


CAP_REPLY = "421 Connection closed by server. Maximum message count per session reached."


@needs("php")
def test_phpmailer_opens_a_connection_per_message_and_keeps_the_message_id(tmp_path):
    case, _, told = run("PHPMailer", tmp_path)

    assert case["error"] is None
    assert counts(case) == {"delivered_once": 24}
    assert case["score"]["sessions"] == 24
    assert case["matching"]["message_id"] == 24  # built by PHPMailer, tied by its Message-ID
    assert told == (
        "No refusal in 24 sessions, one per message; every message arrived once and was "
        "reported sent."
    )


@needs("php")
def test_phpmailer_keepalive_loses_the_message_that_meets_each_421_then_reconnects(tmp_path):
    case, _, told = run("PHPMailer, SMTPKeepAlive", tmp_path)

    assert case["error"] is None
    # 10 + 10 + 2: the message that met each cap is reported failed, never sent again.
    assert counts(case) == {"delivered_once": 22, "given_up": 2}
    assert replies(case) == [CAP_REPLY, CAP_REPLY]
    assert case["score"]["sessions"] == 3
    assert told.startswith("First refusal, at MAIL FROM in session 1 after 10 messages")
    assert "2 more sessions opened after it" in told


@needs("ruby")
def test_ruby_mail_on_one_connection_reports_sent_what_net_smtp_never_sent(tmp_path):
    case, ledger, told = run("Ruby mail, smtp_connection", tmp_path)

    assert case["error"] is None
    # After an exception Net::SMTP answers every command with a made-up "200 dummy reply code"
    # and sends nothing: the rest of the batch is reported sent and lost.
    assert counts(case) == {"delivered_once": 10, "silently_lost": 12, "given_up": 2}
    # The message after the 421 meets the closed socket: an end of file, or a reset when the
    # kernel had the client's unread MAIL FROM when the server closed (a race of the kernel's).
    assert replies(case)[0] == CAP_REPLY
    assert replies(case)[1] in (
        "EOFError: end of file reached",
        "Errno::ECONNRESET: Connection reset by peer",
    )
    assert case["score"]["sessions"] == 1
    assert [s.commands.get("MAIL", 0) for s in ledger.sessions] == [11]  # nothing after the 421
    assert case["matching"]["message_id"] == 10
    assert "12 reported sent" in told


@needs("ruby")
def test_ruby_mail_by_default_opens_a_connection_per_message(tmp_path):
    case, _, _ = run("Ruby mail", tmp_path)

    assert case["error"] is None
    assert counts(case) == {"delivered_once": 24}
    assert case["score"]["sessions"] == 24
    assert case["matching"]["message_id"] == 24


@needs("go")
def test_go_net_smtp_on_one_client_fails_every_message_after_the_421(tmp_path):
    case, _, told = run("Go net/smtp, one Client", tmp_path)

    assert case["error"] is None
    assert counts(case) == {"delivered_once": 10, "given_up": 14}
    first, *rest = replies(case)
    assert first == CAP_REPLY
    # No reconnect: the closed socket, its write or its read, for each message after it.
    assert {reply.split(":")[0] for reply in rest} <= {"write", "read", "EOF"}
    assert case["score"]["sessions"] == 1
    assert "no more sessions opened after it" in told


@needs("go")
def test_go_build_is_made_once_and_again_only_when_the_source_changes(tmp_path, monkeypatch):
    monkeypatch.setenv(toolchains.BUILD_DIR_ENV, str(tmp_path / "cache"))
    copy = tmp_path / "clients"
    (copy / "go-smtp").mkdir(parents=True)
    source = (CLIENTS_DIR / "go-smtp" / "main.go").read_text()
    (copy / "go-smtp" / "main.go").write_text(source)

    first = toolchains.build("go", copy)
    binary = first / "send"
    made = binary.stat().st_mtime_ns
    assert toolchains.build("go", copy) == first
    assert binary.stat().st_mtime_ns == made  # reused, not rebuilt

    (copy / "go-smtp" / "main.go").write_text(source + "\n// changed\n")
    second = toolchains.build("go", copy)
    assert second != first and (second / "send").is_file()
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(
        [first.name, second.name]  # no half-made build left behind
    )


@needs("java")
def test_jakarta_mail_one_transport_dies_on_an_unchecked_exception_after_the_421(tmp_path):
    case, _, told = run("Jakarta Mail, one Transport", tmp_path)

    # sendMessage on the closed Transport throws IllegalStateException, which the documented
    # catch of MessagingException does not catch: the application stops there.
    assert case["command"]["exit_code"] == 1
    score = case["score"]
    assert score["delivered_once"] == 10 and score["given_up"] >= 1  # the socket's own errors
    assert score["given_up"] + score["abandoned"] == 14  # ... until the Transport knows
    assert case["matching"]["message_id"] == 10  # the FAQ's updateMessageID kept the harness's
    assert told.endswith(
        "Then the client exited with status 1: "
        "`stopped: java.lang.IllegalStateException: Not connected`."
    )


@needs("java")
def test_jakarta_mail_transport_send_opens_a_connection_per_message(tmp_path):
    case, _, _ = run("Jakarta Mail", tmp_path)

    assert case["error"] is None
    assert counts(case) == {"delivered_once": 24}
    assert case["score"]["sessions"] == 24
    assert case["matching"]["message_id"] == 24


@needs("perl")
def test_perl_email_sender_persistent_resets_before_each_message_and_reconnects(tmp_path):
    case, ledger, _ = run("Perl Email::Sender, Persistent", tmp_path)

    assert case["error"] is None
    assert counts(case) == {"delivered_once": 22, "given_up": 2}
    assert (
        replies(case)
        == [
            "421 notifications@example.com failed after MAIL FROM: Connection closed by server. "
            "Maximum message count per session reached."
        ]
        * 2
    )
    assert case["score"]["sessions"] == 3
    # It checks its cached connection with RSET before every message but a connection's first.
    assert [s.commands.get("RSET", 0) for s in ledger.sessions] == [10, 10, 1]


# --- a machine without some toolchains --------------------------------------------------------


def test_the_default_set_leaves_out_what_cannot_run_here_and_says_how_to_install_it(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(toolchains, "missing", lambda kind, _: "php" if kind == "php" else None)
    php = [OURS["PHPMailer"], OURS["PHPMailer, SMTPKeepAlive"]]

    ready, left_out = runnable([OURS["smtplib"], *php], CLIENTS_DIR)

    assert ready == [OURS["smtplib"]]
    assert [reason for _, reason in left_out] == [
        f"{c.name} needs php: apt-get install php-cli libphp-phpmailer" for c in php
    ]
    with pytest.raises(PlanError, match="PHPMailer needs php"):  # named, it is an error
        check_clients(php, CLIENTS_DIR)
    table = render([], time_scale=None, clients_dir=CLIENTS_DIR, command="c", left_out=["x: y"])
    assert "Left out, not installed where this table was made: x: y" in table


def test_the_docs_page_keeps_what_is_written_outside_the_markers(tmp_path):
    page = tmp_path / "conformance.md"
    write_doc(page, "first")
    assert page.read_text().endswith(f"{START}\nfirst\n{END}\n")

    page.write_text(page.read_text() + "\n## Notes\n\nBy hand.\n")
    write_doc(page, "second")
    text = page.read_text()
    assert f"{START}\nsecond\n{END}\n\n## Notes\n\nBy hand.\n" in text
    assert "first" not in text


# --- a client that stops before its batch is done --------------------------------------------

STOPPING = """
import smtplib, sys, time
from harness import client

messages = list(client.batch())
server = client.server()
with smtplib.SMTP(server.host, server.port) as smtp:
    for message in messages[:2]:
        smtp.sendmail(message.sender, message.recipients, message.data)
        client.Claims().sent(message)
print("about to stop", file=sys.stderr)
if sys.argv[1] == "exit":
    print("boom: the application fell over", file=sys.stderr)
    sys.exit(3)
time.sleep(3600)
"""


@pytest.mark.parametrize(
    ("how", "told"),
    [
        ("exit", "Then the client exited with status 3: `boom: the application fell over`."),
        # Long enough for a loaded machine to start Python and send two messages first.
        ("hang", "Then the client was still running after 15 wall seconds and was ended."),
    ],
)
def test_a_client_that_stops_early_has_its_story_told_and_then_how_it_stopped(tmp_path, how, told):
    script = tmp_path / "stopping.py"
    script.write_text(STOPPING)
    ledger = Ledger(transcript_limit_lines=TRANSCRIPT_LIMIT_LINES)
    spec = f"cmd[timeout_s={15 if how == 'hang' else 300}]:{sys.executable} {script} {how}"

    case = run_case(small_cap(tmp_path), spec, ledger=ledger)

    assert case["error"] is not None
    assert counts(case) == {"delivered_once": 2, "abandoned": 22}
    assert story(case, ledger) == (
        "No refusal in 1 session; of the mail not delivered exactly once, 22 never sent. " + told
    )
