"""Command strategies: a client process gets the batch as files and the server in environment
variables, its JSON-lines claims are scored, and everything that can go wrong with a process
(no claims, a crash, a hang, garbage) ends up in the case, never as a traceback."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import json
import os
import shlex
import sys
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.base.clock import ScaledClock
from harness.cli.main import main as cli_main
from harness.core.errors import PlanError
from harness.core.plan import Plan, Rule
from harness.reports.markdown import render_summary
from harness.reports.schema import validate_results
from harness.runner.command import (
    DEFAULT_TIME_SCALE,
    OUTPUT_TAIL_CHARS,
    CommandStrategy,
    claims_from_ledger,
    read_claims,
)
from harness.runner.command import batch as batch_module
from harness.runner.matrix import run_case, run_matrix
from harness.runner.resolve import resolve_strategy
from harness.runner.scenario import load_scenario
from harness.runner.strategy import ClaimStatus, hooks_of
from harness.runner.workload import WorkloadSpec, build_messages
from harness.server.fake_ses import FakeSES

SCENARIO = """
name = "small-cap"
description = "A session cap of 5 over 12 messages; the send rate is out of the way."

[workload]
count = 12
seed = 3
recipients = [1, 2]
attachments = 0.3
unicode = 0.5

[plan]
profile = "ses"
seed = 3
limits = { session_limit = 5, rate_per_s = 10000.0 }  # the cap alone: no throttling
"""

# A client that does what a careful application does: a new connection when the old one is
# gone. It sends the batch in reverse, so only the Message-ID can tie claims to messages.
RECONNECTING = """
import json, os, smtplib

batch = json.load(open(os.environ["HARNESS_MANIFEST"]))
claims = open(os.environ["HARNESS_CLAIMS"], "a")
smtp = None
for entry in reversed(batch):
    for attempt in range(2):
        try:
            if smtp is None:
                smtp = smtplib.SMTP(os.environ["SMTP_HOST"], int(os.environ["SMTP_PORT"]))
            smtp.sendmail(entry["sender"], entry["recipients"], open(entry["file"], "rb").read())
        except smtplib.SMTPResponseException as error:
            smtp.close()
            smtp = None
            last = {"status": "failed", "code": error.smtp_code, "text": error.smtp_error.decode()}
        else:
            last = {"status": "sent"}
            break
    claims.write(json.dumps({"id": entry["id"], **last}) + "\\n")
if smtp is not None:
    smtp.quit()
"""


def script(tmp_path, name, source):
    path = tmp_path / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return f"cmd:python {shlex.quote(str(path))}"


@pytest.fixture
def scenario(tmp_path):
    path = tmp_path / "small-cap.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    return load_scenario(path)


def test_a_client_process_is_scored_on_its_claims_by_message_id(tmp_path, scenario):
    case = run_case(scenario, script(tmp_path, "client.py", RECONNECTING))

    assert case["error"] is None
    assert case["score"]["delivered_once"] == 12
    assert case["score"]["sessions"] == 3  # 5 + 5 + 2: two 421s, each answered by a reconnect
    assert case["score"]["retries"] == 2
    assert {m["claim"] for m in case["messages"]} == {"sent"}
    record = case["command"]
    assert {k: v for k, v in record.items() if k not in ("time_scale", "clock", "pace")} == {
        "argv": ["python", str(tmp_path / "client.py")],
        "time_scale_asked": DEFAULT_TIME_SCALE,
        "time_scale_from": "default",
        "note": record["note"],  # whether this client kept up on a loaded machine: pace's call
        "timeout_s": 300.0,
        "claims": "client",
        "exit_code": 0,
        "timed_out": False,
        "stdout_tail": "",
        "stderr_tail": "",
    }
    assert record["pace"]["kept_up"] is (record["note"] is None)


def test_the_client_gets_the_endpoint_and_the_batch_in_its_environment(tmp_path, scenario):
    dump = tmp_path / "seen.json"
    source = f"""
        import json, os
        names = ["SMTP_HOST", "SMTP_PORT", "SMTP_TLS", "SMTP_USER", "SMTP_PASSWORD",
                 "SMTP_CA_FILE", "HARNESS_MESSAGES_DIR", "HARNESS_MANIFEST", "HARNESS_CLAIMS",
                 "HARNESS_TIME_SCALE"]
        env = {{name: os.environ[name] for name in names}}
        manifest = json.load(open(env["HARNESS_MANIFEST"]))
        files = {{e["id"]: open(e["file"], "rb").read().decode() for e in manifest}}
        listed = sorted(os.listdir(env["HARNESS_MESSAGES_DIR"]))
        json.dump({{"env": env, "manifest": manifest, "files": files, "listed": listed}},
                  open({str(dump)!r}, "w"))
    """
    run_case(scenario, script(tmp_path, "client.py", source).replace("cmd:", "cmd[time_scale=4]:"))

    seen = json.loads(dump.read_text())
    env = seen["env"]
    assert env["SMTP_HOST"] == "127.0.0.1"
    assert int(env["SMTP_PORT"]) > 0
    assert (env["SMTP_TLS"], env["SMTP_USER"], env["SMTP_PASSWORD"]) == ("none", "", "")
    assert env["SMTP_CA_FILE"] == ""
    assert env["HARNESS_TIME_SCALE"] == "4"
    expected = build_messages(scenario.workload)
    assert [e["id"] for e in seen["manifest"]] == [m.id for m in expected]
    assert [e["sender"] for e in seen["manifest"]] == [m.sender for m in expected]
    assert [e["recipients"] for e in seen["manifest"]] == [list(m.recipients) for m in expected]
    assert seen["listed"] == [f"{i:05d}.eml" for i in range(1, 13)]
    for message in expected:
        assert seen["files"][message.id] == message.data.decode()  # the bytes, CRLF and all


def test_a_client_that_claims_nothing_is_scored_on_the_server_side(tmp_path, scenario):
    silent = RECONNECTING.replace(
        'claims.write(json.dumps({"id": entry["id"], **last}) + "\\n")', ""
    )
    case = run_case(scenario, script(tmp_path, "silent.py", silent))

    assert case["error"] is None
    assert case["command"]["claims"] == "server"
    assert case["score"]["delivered_once"] == 12
    assert {m["claim"] for m in case["messages"]} == {"sent"}


def test_the_summary_marks_a_case_scored_on_the_server_side(tmp_path, scenario):
    silent = script(tmp_path, "silent.py", "import sys\n")  # sends nothing, claims nothing
    results = run_matrix([scenario], [silent, script(tmp_path, "client.py", RECONNECTING)])
    summary = render_summary(results)

    grid = [line for line in summary.splitlines() if line.startswith("| small-cap |")]
    assert grid[0].count("(server side)") == 1
    assert "(server side): a client process that reported nothing" in summary


def test_server_side_claims_follow_what_the_server_told_the_client():
    messages = build_messages(WorkloadSpec(count=4, seed=1))
    plan = Plan(
        profile="plain",
        faults=(
            Rule.from_spec("stage=EOM,nth=2,action=drop_after_accept"),
            Rule.from_spec("stage=RCPT,nth=3,action=reply,code=554,text=No"),
        ),
    )
    with FakeSES(plan=plan) as ses:
        for message in messages[:3]:
            try:
                with ses.endpoint.connect() as client:
                    client.sendmail(message.sender, list(message.recipients), message.data)
            except Exception:  # the drop and the 554: what the server said is what counts
                pass
        ses.ledger.wait_for(lambda lg: all(not s.open for s in lg.sessions))
        claims = claims_from_ledger(messages, ses.ledger)

    assert [c.status for c in claims] == [
        ClaimStatus.SENT,  # acknowledged with a 250
        ClaimStatus.FAILED,  # stored, but the connection was cut before the 250
        ClaimStatus.FAILED,  # refused at RCPT TO
        ClaimStatus.NOT_ATTEMPTED,  # the server never saw it
    ]


def test_a_client_that_exits_non_zero_fails_the_case_with_its_stderr_tail(tmp_path, scenario):
    source = """
        import json, os, sys
        batch = json.load(open(os.environ["HARNESS_MANIFEST"]))
        with open(os.environ["HARNESS_CLAIMS"], "a") as claims:
            claims.write(json.dumps({"id": batch[0]["id"], "status": "failed", "code": None,
                                     "text": "gave up"}) + "\\n")
        print("noise\\n" * 1000 + "ConnectionRefusedError: the real reason", file=sys.stderr)
        sys.exit(3)
    """
    case = run_case(scenario, script(tmp_path, "crash.py", source))

    assert not case["passed"]
    assert "exited with status 3" in case["error"]
    assert case["error"].endswith("ConnectionRefusedError: the real reason")
    assert case["command"]["exit_code"] == 3
    assert case["command"]["stderr_tail"].endswith("the real reason")
    assert len(case["command"]["stderr_tail"]) <= OUTPUT_TAIL_CHARS
    assert case["command"]["claims"] == "client"  # what it claimed before dying still counts
    assert case["score"]["given_up"] == 1
    assert case["score"]["abandoned"] == 11


def test_a_hanging_client_is_killed_with_its_children_at_the_timeout(tmp_path, scenario):
    # The child holds 64 MiB, which takes it milliseconds to give back once killed:
    # the case must not return before it has exited.
    pids = tmp_path / "pids"
    child = "import time; memory = b'x' * (64 << 20); print(flush=True); time.sleep(600)"
    source = f"""
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", {child!r}], stdout=subprocess.PIPE)
        child.stdout.readline()  # it holds its memory now
        open({str(pids)!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
        time.sleep(600)
    """
    spec = script(tmp_path, "hang.py", source).replace("cmd:", "cmd[timeout_s=4]:")
    case = run_case(scenario, spec)

    assert "still running after 4 s; killed" in case["error"]
    assert case["command"]["exit_code"] < 0  # killed by a signal
    for pid in map(int, pids.read_text().split()):
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # not our child: it must be gone, not a zombie of ours
        assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie waiting for its parent is dead too
        return stat.read().split(") ")[-1][0] != "Z"


def test_a_claim_that_is_not_json_names_its_line(tmp_path, scenario):
    source = """
        import os
        claims = open(os.environ["HARNESS_CLAIMS"], "a")
        claims.write('\\n{"id": "<x>", "status": "sent"}\\nnope\\n')
    """
    case = run_case(scenario, script(tmp_path, "garbage.py", source))

    assert "HARNESS_CLAIMS line 3: not JSON" in case["error"]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"id": 7, "status": "sent"}', "'id' must be"),
        ('{"id": "<a>", "status": "delivered"}', "'status' is 'delivered'; allowed: sent,"),
        ('{"id": "<a>", "status": "failed", "code": "421"}', "'code' must be an integer"),
        ('["<a>", "sent"]', "a claim is a JSON object"),
    ],
)
def test_malformed_claims_are_refused_with_the_reason(tmp_path, line, problem):
    path = tmp_path / "claims.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(RuntimeError, match="line 1") as raised:
        read_claims(path)
    assert problem in str(raised.value)


def test_a_program_that_does_not_exist_is_a_case_error(tmp_path, scenario):
    case = run_case(scenario, f"cmd:{tmp_path / 'no-such-client'}")

    assert case["error"].startswith("strategy raised ClientFailed: cannot start")
    assert case["score"]["abandoned"] == 12


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("cmd:", "cmd: needs a command"),
        ("cmd[speed=2]:node send.js", "key 'strategy.cmd[speed]': unknown option"),
        ("cmd[time_scale=0]:node send.js", "must be positive"),
        ("cmd[timeout_s=soon]:node send.js", "'soon' is not a number"),
        ("cmd:node 'send.js", "cannot split the command"),
    ],
)
def test_bad_command_specs_are_plan_errors(spec, problem):
    with pytest.raises(PlanError, match=problem.replace("[", r"\[")):
        resolve_strategy(spec)


def test_the_cli_reports_a_bad_command_spec_without_a_traceback(tmp_path, scenario, capsys):
    status = cli_main(
        ["run", str(scenario.path), "--strategy", "cmd[speed=2]:x", "--report-dir", str(tmp_path)]
    )

    assert status == 2
    assert "unknown option (allowed: time_scale, timeout_s)" in capsys.readouterr().err


def test_a_command_case_runs_on_one_scaled_clock_with_the_plan_as_written():
    strategy = CommandStrategy(["client"], time_scale=10)
    clock = strategy.clock(0.02)

    assert isinstance(clock, ScaledClock)
    assert (clock.time_scale, clock.latency_s) == (strategy.time_scale, 0.02)  # SES seconds
    assert not hasattr(strategy, "scaled")  # limits are no longer rewritten per parameter


def test_a_command_strategy_brings_its_case_hooks_itself():
    strategy = CommandStrategy(["client"], time_scale=10)

    assert hooks_of(strategy) is strategy  # run_case knows no command strategy by name
    assert strategy.pinned is False  # the client's process is left to the scheduler
    assert strategy.arrivals_s([0.0, 5.0, 10.0]) == [0.0, 0.0, 0.0]  # the files hold them all
    assert strategy.start_s(7.0) == 7.0  # not started yet: the case's start
    strategy.started_at_s = 9.5
    assert strategy.start_s(7.0) == 9.5
    assert strategy.case_record("server")["command"]["claims"] == "server"


def test_a_scaled_rate_throttles_a_client_on_the_real_clock(tmp_path, scenario):
    # SES's 14 recipients/s at a time scale of 0.01 is 0.14/s: the bucket's 14 tokens are all
    # there is in a run this short, and the batch has more recipients than that.
    # (No modelled round trip: at this scale it would be 2 s a command.)
    throttled = dataclasses.replace(
        scenario, plan=scenario.plan.with_limits(rate_per_s=14.0), latency_s=0.0
    )
    assert sum(len(m.recipients) for m in build_messages(scenario.workload)) > 14 + 1
    spec = script(tmp_path, "client.py", RECONNECTING).replace("cmd:", "cmd[time_scale=0.01]:")
    case = run_case(throttled, spec)

    assert case["score"]["throttle_violations"] > 0
    assert {f["name"] for f in case["timeline"]["faults"]} >= {"rate_per_s"}


def test_command_cases_validate_against_the_results_schema(tmp_path, scenario):
    results = run_matrix([scenario], [script(tmp_path, "client.py", RECONNECTING), "naive"])

    validate_results(results)
    first, second = results["cases"]
    assert first["command"]["claims"] == "client"
    assert "command" not in second
    assert shlex.split(first["reproducer"])[-1] == first["strategy"]  # the spec quoted whole
    assert results["strategies"][0]["description"].startswith("The command python ")

    first["command"]["extra"] = 1
    with pytest.raises(PlanError, match=r"cases\[0\]\.command\.extra': unknown key"):
        validate_results(results)


def test_a_command_client_can_use_starttls_and_auth(tmp_path):
    source = """
        import json, os, smtplib, ssl
        batch = json.load(open(os.environ["HARNESS_MANIFEST"]))
        assert os.environ["SMTP_TLS"] == "starttls"
        smtp = smtplib.SMTP(os.environ["SMTP_HOST"], int(os.environ["SMTP_PORT"]))
        smtp.starttls(context=ssl.create_default_context(cafile=os.environ["SMTP_CA_FILE"]))
        smtp.login(os.environ["SMTP_USER"], os.environ["SMTP_PASSWORD"])
        for entry in batch:
            smtp.sendmail(entry["sender"], entry["recipients"], open(entry["file"], "rb").read())
        smtp.quit()
    """
    path = tmp_path / "tls.py"
    path.write_text(textwrap.dedent(source))
    messages = build_messages(WorkloadSpec(count=3, seed=2))
    strategy = CommandStrategy([sys.executable, str(path)])
    with FakeSES(profile="plain", tls="starttls", auth=("ses-user", "s3cret")) as ses:
        claims = list(strategy(messages, ses.endpoint, ses.clock))
        stored = ses.ledger.messages
        sessions = ses.ledger.sessions

    assert claims == []
    assert strategy.exit_code == 0
    assert [m.message_id for m in stored] == [m.id for m in messages]
    assert sessions[0].tls and sessions[0].user == "ses-user"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    attachments=st.sampled_from([0.0, 0.5, 1.0]),
    unicode=st.sampled_from([0.0, 0.5, 1.0]),
    recipients=st.sampled_from([(1, 1), (1, 3)]),
)
def test_the_manifest_parts_are_what_the_default_email_policy_reads(
    seed, attachments, unicode, recipients
):
    # The manifest's parts are parsed with memoised headers (and kept for the next case): the
    # same fields, text and attachments as a plain parse with email.policy.default, always.
    spec = WorkloadSpec(
        count=8, seed=seed, attachments=attachments, unicode=unicode, recipients=recipients
    )
    for message in build_messages(spec):
        plain = email.message_from_bytes(message.data, policy=email.policy.default)
        body, html = plain.get_body(("plain",)), plain.get_body(("html",))
        expected = {
            "from": str(plain["From"]),
            "to": str(plain["To"]),
            "subject": str(plain["Subject"]),
            "text": body.get_content() if body is not None else "",
            "html": html.get_content() if html is not None else None,
        }
        attached = [
            (part.get_filename(), part.get_content_type(), part.get_payload(decode=True))
            for part in plain.iter_attachments()
        ]
        for parse in (batch_module._parse, batch_module._parts):  # fresh, then cached
            fields, parts = parse(message.data)
            assert fields == expected
            assert list(parts) == attached
