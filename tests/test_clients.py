"""Real client libraries, unmodified, through command strategies (clients/ at the top of the repo).

Each test pins what one library does under one SES behaviour, on small batches: a session cap of
10, a cut connection after the final ".", a throttle. The Node tests need node and
``(cd clients/nodemailer && npm ci)``; the Django tests need ``pip install -e '.[clients]'``.
"""

from __future__ import annotations

import dataclasses
import email
import hashlib
import shlex
import shutil
import sys
from collections import Counter
from email.header import decode_header, make_header
from pathlib import Path

import pytest

from harness.base.ledger import Ledger
from harness.base.records import ClientLine
from harness.cli.main import main as cli_main
from harness.core.errors import PlanError
from harness.core.plan import Plan, Rule
from harness.runner import faketime
from harness.runner.conformance import END, START, write_section
from harness.runner.matrix import run_case
from harness.runner.scenario import Scenario
from harness.runner.workload import WorkloadSpec, build_messages

CLIENTS = Path(__file__).resolve().parents[1] / "clients"
NODEMAILER = CLIENTS / "nodemailer"

needs_node = pytest.mark.skipif(
    shutil.which("node") is None or not (NODEMAILER / "node_modules/nodemailer").is_dir(),
    reason="needs node and nodemailer installed: (cd clients/nodemailer && npm ci)",
)


def needs_django() -> None:
    pytest.importorskip("django", reason="needs Django: pip install -e '.[clients]'")


def python_client(name: str, *args: str) -> str:
    return "cmd:" + shlex.join([sys.executable, str(CLIENTS / name), *args])


def node_client(*args: str) -> str:
    return "cmd:" + shlex.join(["node", str(NODEMAILER / "send.js"), *args])


def scenario(tmp_path: Path, count: int, *rules: str, **limits: object) -> Scenario:
    """A small SES scenario: the session cap at 10 and the send rate out of the way, unless
    `limits` say otherwise."""
    plan = Plan(profile="ses", seed=11).with_limits(
        **{"session_limit": 10, "rate_per_s": None, **limits}
    )
    return Scenario(
        name="small",
        path=tmp_path / "small.toml",
        workload=WorkloadSpec(count=count, seed=11, attachments=0.3, unicode=0.3),
        plan=plan.with_faults(*map(Rule.from_spec, rules)),
    )


def counts(case: dict) -> dict[str, int]:
    assert case["error"] is None, case["error"]
    keys = ("delivered_once", "misreported", "silently_lost", "given_up", "abandoned")
    return {k: case["score"][k] for k in (*keys, "duplicated") if case["score"][k]}


def replies(case: dict) -> list[str | None]:
    return [m["reply"] for m in case["messages"] if m["claim"] == "failed"]


# --- the session cap ---------------------------------------------------------------------------


def test_smtplib_stops_the_batch_at_the_421_of_the_session_cap(tmp_path):
    case = run_case(scenario(tmp_path, 24), python_client("smtplib_batch.py"))

    assert counts(case) == {"delivered_once": 10, "given_up": 1, "abandoned": 13}
    assert replies(case) == [
        "421 Connection closed by server. Maximum message count per session reached."
    ]
    assert case["score"]["sessions"] == 1
    assert case["score"]["commands_after_421"] == 0  # smtplib closes its socket on a 421


def test_aiosmtplib_fails_every_message_after_the_421_on_its_closed_connection(tmp_path):
    case = run_case(scenario(tmp_path, 24), python_client("aiosmtplib_batch.py"))

    assert counts(case) == {"delivered_once": 10, "given_up": 14}
    first, *rest = replies(case)
    assert first.startswith("421 Connection closed by server.")
    assert set(rest) == {"SMTPServerDisconnected: Server not connected"}  # no reconnect
    assert case["score"]["sessions"] == 1


def test_django_raises_at_the_421_and_the_application_cannot_tell_what_was_sent(tmp_path):
    needs_django()
    case = run_case(scenario(tmp_path, 24), python_client("django_batch.py"))

    # send_messages raised: the ten that went are reported failed along with the rest.
    assert counts(case) == {"misreported": 10, "given_up": 14}
    assert set(replies(case)) == {
        "421 Connection closed by server. Maximum message count per session reached."
    }


def test_django_with_fail_silently_reports_the_whole_batch_sent(tmp_path):
    needs_django()
    case = run_case(scenario(tmp_path, 24), python_client("django_batch.py", "--fail-silently"))

    assert counts(case) == {"delivered_once": 10, "silently_lost": 14}
    assert case["score"]["sessions"] == 1


def test_django_keeps_the_harness_message_id(tmp_path):
    needs_django()
    ledger = Ledger(transcript_limit_lines=10_000)
    small = scenario(tmp_path, 8)
    case = run_case(small, python_client("django_batch.py"), ledger=ledger)

    assert counts(case) == {"delivered_once": 8}
    expected = [m.id for m in build_messages(small.workload)]
    stored = [[v for k, v in m.headers if k.lower() == "message-id"] for m in ledger.messages]
    assert stored == [[message_id] for message_id in expected]


@needs_node
def test_nodemailer_unpooled_opens_a_connection_per_message_and_never_meets_the_cap(tmp_path):
    case = run_case(scenario(tmp_path, 24), node_client())

    assert counts(case) == {"delivered_once": 24}
    assert case["score"]["sessions"] == 24
    assert case["timeline"]["faults"] == []


@needs_node
def test_nodemailer_pooled_requeues_the_message_that_meets_the_421_and_loses_nothing(tmp_path):
    # 60 messages over 5 pooled connections: each reaches the cap of 10. nodemailer 10 puts a
    # message that meets the 421 back in its queue and sends it on a new connection, when the
    # message is built from fields as its docs show (with `raw` plus `envelope` it fails it).
    case = run_case(scenario(tmp_path, 60), node_client("--pool"))

    caps = [f for f in case["timeline"]["faults"] if f["name"] == "session_limit"]
    assert caps
    found = counts(case)
    # Nothing lost, duplicated or misreported in any run; every message delivered unless the
    # case says its counts depend on time (once in a CI rehearsal: 56 delivered, 4 given up;
    # whether that case said so was not recorded).
    assert not {"silently_lost", "duplicated", "misreported"} & set(found), found
    if not case["clock"]["depends_on_time"]:
        assert found == {"delivered_once": 60}, case["clock"]
        assert replies(case) == []
    assert case["score"]["sessions"] > 5  # the pool replaced the closed connections
    sessions_at_once = Counter(d["session"] for d in case["timeline"]["deliveries"][:10])
    assert len(sessions_at_once) > 1  # pooled: interleaved over connections, not in order


@needs_node
def test_nodemailer_builds_the_message_from_fields_and_keeps_the_harness_message_id(tmp_path):
    ledger = Ledger(transcript_limit_lines=10_000)
    small = scenario(tmp_path, 6)
    case = run_case(small, node_client(), ledger=ledger)

    assert counts(case) == {"delivered_once": 6}
    expected = {m.id: m for m in build_messages(small.workload)}
    for stored in ledger.messages:
        headers = {k.lower(): v for k, v in stored.headers}
        message = expected[stored.message_id]
        original = {k.lower(): v for k, v in email.message_from_bytes(message.data).items()}
        assert headers["message-id"] == message.id
        decoded = [str(make_header(decode_header(h["subject"]))) for h in (headers, original)]
        assert decoded[0] == decoded[1]
        assert stored.sha256 != hashlib.sha256(message.data).hexdigest()  # built anew, not raw
        assert set(stored.rcpt_tos) == set(message.recipients)


# --- a connection cut after the final "." -------------------------------------------------------


def test_smtplib_stops_when_the_connection_is_cut_after_the_server_kept_the_message(tmp_path):
    small = scenario(tmp_path, 12, "stage=EOM,nth=5,action=drop_after_accept")
    case = run_case(small, python_client("smtplib_batch.py"))

    assert counts(case) == {"delivered_once": 4, "misreported": 1, "abandoned": 7}
    assert replies(case)[0].startswith("SMTPServerDisconnected")


@needs_node
def test_nodemailer_does_not_resend_after_a_cut_connection(tmp_path):
    small = scenario(tmp_path, 12, "stage=EOM,every=5,action=drop_after_accept")
    case = run_case(small, node_client())

    assert counts(case) == {"delivered_once": 10, "misreported": 2}


# --- throttling ----------------------------------------------------------------------------------


def test_django_fail_silently_turns_every_throttled_message_into_a_silent_loss(tmp_path):
    needs_django()
    # 1 recipient/s with a bucket of 5 and 20 one-recipient messages: the client would need
    # 15 s to stay under it, and a run takes well under one.
    small = scenario(tmp_path, 20, session_limit=None, rate_per_s=1.0, burst=5.0)
    small = dataclasses.replace(
        small, workload=dataclasses.replace(small.workload, recipients=(1, 1))
    )
    case = run_case(small, python_client("django_batch.py", "--fail-silently"))

    lost = case["score"]["silently_lost"]
    assert lost == case["score"]["throttle_violations"] > 0
    assert counts(case) == {"delivered_once": 20 - lost, "silently_lost": lost}
    assert case["score"]["sessions"] == 1  # smtplib's RSET keeps the connection after a 454


# --- the conformance table -----------------------------------------------------------------------

SMALL_CAP = """
name = "small-cap"
description = "A session cap of 10 over 24 messages; the send rate out of the way."

[workload]
count = 24
seed = 5

[plan]
profile = "ses"
seed = 5
limits = { session_limit = 10, rate_per_s = 10000.0 }
"""


def test_conformance_rewrites_only_the_marked_section_from_a_real_run(tmp_path, capsys):
    scenario_file = tmp_path / "small-cap.toml"
    scenario_file.write_text(SMALL_CAP)
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nBefore.\n\n{START}\nstale table\n{END}\n\nAfter.\n")
    docs = tmp_path / "docs" / "conformance.md"

    status = cli_main(
        [
            "conformance",
            "--client",
            "smtplib",
            "--scenario",
            str(scenario_file),
            "--clients-dir",
            str(CLIENTS),
            "--write",
            str(readme),
            "--docs",
            str(docs),
        ]
    )

    assert status == 0
    text = readme.read_text()
    assert text.startswith("# Title\n\nBefore.\n\n<!-- conformance:start -->\nGenerated by `")
    assert text.endswith(f"\n{END}\n\nAfter.\n")
    assert "stale table" not in text
    row = next(line for line in text.splitlines() if line.startswith("| smtplib |"))
    assert row.startswith(
        "| smtplib | small-cap | 10 of 24 | 0 | 0 | 0 | 0 | 1 | 13 | First refusal, "
    )
    assert (
        "First refusal, at MAIL FROM in session 1 after 10 messages: `421 Connection closed by "
        "server. Maximum message count per session reached.`; the server closed that connection"
    ) in row
    assert "13 never sent, 1 reported failed" in row
    assert row in docs.read_text()
    assert row in capsys.readouterr().out


def test_conformance_appends_the_markers_to_a_file_without_them(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n")
    write_section(readme, "table")
    assert readme.read_text() == f"# Title\n\n{START}\ntable\n{END}\n"

    missing = tmp_path / "NEW.md"
    write_section(missing, "table")
    assert missing.read_text() == f"{START}\ntable\n{END}\n"


@pytest.mark.parametrize(
    "text", [f"{END}\n{START}\n", f"{START}\nno end\n", f"{START}\n{START}\n{END}\n"]
)
def test_conformance_refuses_broken_markers_naming_the_file(tmp_path, text):
    readme = tmp_path / "README.md"
    readme.write_text(text)
    with pytest.raises(PlanError, match=r"README\.md: "):
        write_section(readme, "table")
    assert readme.read_text() == text  # untouched


def test_conformance_outside_the_repository_says_where_the_clients_are(tmp_path, capsys):
    status = cli_main(["conformance", "--client", "smtplib", "--clients-dir", str(tmp_path)])

    assert status == 2
    assert "is not the clients/ folder of ses-fault-harness" in capsys.readouterr().err


def test_conformance_runs_rows_at_once_in_workers_with_the_table_in_order(tmp_path):
    from harness.runner.conformance import CLIENTS as OURS
    from harness.runner.conformance import Client, run_rows
    from harness.runner.scenario import load_scenario

    cap = tmp_path / "small-cap.toml"
    cap.write_text(SMALL_CAP)
    larger = tmp_path / "larger-cap.toml"
    larger.write_text(
        SMALL_CAP.replace("small-cap", "larger-cap").replace("count = 24", "count = 36")
    )
    scenarios = [load_scenario(cap), load_scenario(larger)]
    clients = [
        next(c for c in OURS if c.name == "smtplib"),
        Client.own(
            f"smtplib again={shlex.join([sys.executable, str(CLIENTS / 'smtplib_batch.py')])}"
        ),
    ]
    heard = []

    one = run_rows(clients, scenarios, clients_dir=CLIENTS, time_scale=4)
    many = run_rows(
        clients, scenarios, clients_dir=CLIENTS, time_scale=4, workers=3, on_row=heard.append
    )

    order = [(c.name, s.name) for c in clients for s in scenarios]
    assert [(r.client, r.scenario) for r in many] == order  # table order, whatever finished first
    assert sorted((r.client, r.scenario) for r in heard) == sorted(order)
    # An untimed scenario: the same counts and the same sentence, run alone or three at a time.
    assert [(r.score["delivered_once"], r.score["messages"], r.story) for r in many] == [
        (r.score["delivered_once"], r.score["messages"], r.story) for r in one
    ]
    assert [r.score["delivered_once"] for r in many] == [10, 10, 10, 10]


def test_a_client_that_kills_its_worker_is_a_failed_row_and_the_others_run_on(tmp_path):
    from harness.runner.conformance import Client, run_rows
    from harness.runner.scenario import load_scenario

    cap = tmp_path / "small-cap.toml"
    cap.write_text(SMALL_CAP)
    # Its parent is its keeper (harness.runner.keeper), whose parent is the worker process.
    hostile = Client.own("hostile=sh -c 'kill -9 $(ps -o ppid= -p $PPID)'")
    smtplib_client = Client.own(
        f"plain={shlex.join([sys.executable, str(CLIENTS / 'smtplib_batch.py')])}"
    )

    rows = run_rows([hostile, smtplib_client], [load_scenario(cap)], clients_dir=CLIENTS, workers=2)

    assert [r.client for r in rows] == ["hostile", "plain"]
    assert rows[0].story.startswith("The run failed: strategy process died")
    assert rows[0].score["delivered_once"] == 0 and rows[0].score["messages"] == 24
    assert rows[1].score["delivered_once"] == 10


THROTTLED = """
name = "tight-rate"
description = "One recipient in 1,000 s: every message after the first is throttled."

[workload]
count = 3
seed = 5

[plan]
profile = "ses"
seed = 5
limits = { rate_per_s = 0.001, burst = 1.0 }
"""

# Connects, then spends CPU (a busy application) and sends the batch as fast as it can.
BUSY_SENDER = """
import json, os, smtplib
batch = json.load(open(os.environ["HARNESS_MANIFEST"]))
with smtplib.SMTP(os.environ["SMTP_HOST"], int(os.environ["SMTP_PORT"])) as smtp:
    sum(range(20_000_000))
    for entry in batch:
        try:
            smtp.sendmail(entry["sender"], entry["recipients"], open(entry["file"], "rb").read())
        except smtplib.SMTPException:
            pass
"""


@pytest.mark.skipif(
    faketime.find_library() is None,
    reason="libfaketime is not installed (apt-get install faketime): no scale above 1",
)
def test_the_table_marks_counts_the_clock_decided_when_the_client_fell_behind(
    tmp_path, monkeypatch
):
    from harness.runner.conformance import Client, render, run_rows

    # On the progress clock a client's CPU costs no SES time, so it cannot fall behind: this
    # is the scaled clock's mark (where the progress clock cannot run).
    monkeypatch.setenv("SES_HARNESS_CLOCK", "scaled")
    from harness.runner.scenario import load_scenario

    scenario_file = tmp_path / "tight-rate.toml"
    scenario_file.write_text(THROTTLED)
    cap_file = tmp_path / "small-cap.toml"  # no clock here: a plain server with a cap
    cap_file.write_text(
        SMALL_CAP.replace('profile = "ses"', 'profile = "plain"').replace(
            ", rate_per_s = 10000.0", ""
        )
    )
    script = tmp_path / "busy.py"
    script.write_text(BUSY_SENDER)
    busy = Client.own(f"busy={shlex.join([sys.executable, str(script)])}")
    scenarios = [load_scenario(scenario_file), load_scenario(cap_file)]

    # At 1,000x the client's CPU after connecting is minutes of SES time: it fell behind.
    fast = run_rows([busy], scenarios, clients_dir=CLIENTS, time_scale=1000)
    real = run_rows([busy], scenarios[:1], clients_dir=CLIENTS, time_scale=1)

    assert [(r.scenario, r.stretched) for r in fast] == [
        ("tight-rate", True),  # the rate fired: the clock decided
        ("small-cap", False),  # the cap is counted, not timed: the scale cannot move it
    ]
    assert fast[1].note is not None  # the pace check still says the client fell behind
    # Real time is real time: the client keeps up, and a mark there (if any) is a decision on
    # the rate's edge, which another run may decide otherwise (test_time_dependence).
    assert real[0].note is None
    table = render(fast, time_scale=1000, clients_dir=CLIENTS, command="ses-harness conformance")
    assert "| busy | tight-rate † |" in table and "| busy | small-cap |" in table
    assert "† These counts depend on time" in table


def test_a_client_too_slow_to_meet_the_throttle_at_its_scale_is_marked_too(tmp_path):
    # No throttle fired, but at the pace the run would have had in real time the batch comes
    # to more than the rate allows: the scale, not the client, kept it under the limit.
    from harness.runner.scale import decided_by_clock
    from harness.runner.scenario import load_scenario

    tight = tmp_path / "tight-rate.toml"
    tight.write_text(THROTTLED)
    plain = tmp_path / "plain-cap.toml"
    plain.write_text(SMALL_CAP.replace('profile = "ses"', 'profile = "plain"'))

    tried = Ledger()  # three recipients tried, none throttled
    session = tried.open_session(1, "127.0.0.1:1", 0.0, 0.0)
    for number in range(3):
        address = f"r{number}@example.com"
        tried.log(session, ClientLine(float(number), "RCPT", f"TO:<{address}>", address=address))
    tight_rate, plain_cap = load_scenario(tight).plan, load_scenario(plain).plan
    assert decided_by_clock(tight_rate, tried, 10.0)  # 3 in 10 s > 1 in 1,000 s
    assert not decided_by_clock(tight_rate, tried, 1e6)  # slow in real time too
    assert not decided_by_clock(tight_rate, Ledger(), 10.0)  # it tried nobody
    assert not decided_by_clock(plain_cap, tried, 10.0)  # 10,000 a second allowed
