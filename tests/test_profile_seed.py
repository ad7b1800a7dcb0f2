"""`profile-check FILE --write-profile NEW.toml`: a recording of a real server seeds a provider
profile, which loads, passes profile-check against the same recording (each difference left
explained), and answers, as `FakeSES(profile=NEW.toml)`, as the recorded server did."""

from __future__ import annotations

import datetime
import json
import smtplib
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness import FakeSES, SesProxy
from harness.base.clock import VirtualClock
from harness.base.profile_file import load_profile_file
from harness.core import profile_table
from harness.core.errors import PlanError
from harness.core.evidence import Evidence
from harness.core.profiles import PROFILES
from harness.core.seed_file import value
from harness.core.seeding import seed_profile
from harness.core.transcript import Transcript, check_profile, parse_transcript, shape
from tests.helpers import Replies, send
from tests.upstreams import postfix, postfix_missing, smtp_sink, smtp_sink_missing

needs_sink = pytest.mark.skipif(bool(smtp_sink_missing()), reason=str(smtp_sink_missing()))
needs_postfix = pytest.mark.skipif(bool(postfix_missing()), reason=str(postfix_missing()))
HEAD = (
    '{"transcript": "ses-harness", "version": 1, "upstream": "mx.example:25", "tls": "none", '
    '"recorded": "2026-11-30T09:15:00Z"}\n'
)
BODY = b"Subject: replayed\r\n\r\nreplayed\r\n.\r\n"


def _rows_text(session: int, stage: str, code: int, text: str) -> str:
    return f'{{"session": {session}, "stage": "{stage}", "code": {code}, "text": "{text}"}}\n'


def _rows(rows: list[tuple[int, str, str | None, int, str]]) -> str:
    out = []
    for session, stage, sent, code, text in rows:
        if sent is not None:
            out.append(f'{{"session": {session}, "stage": "{stage}", "sent": "{sent}"}}\n')
        out.append(_rows_text(session, stage, code, text))
    return "".join(out)


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "harness", "profile-check", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def record(path: Path, upstream: tuple[str, int], sessions: list[list[list[str]]]) -> Transcript:
    """Each session's messages (each a list of recipients) sent through a proxy without limits
    to `upstream`, recorded in `path`; a refusal ends the session's sending."""
    with SesProxy(upstream, profile="plain", record=path) as proxy:
        for messages in sessions:
            with smtplib.SMTP(proxy.host, proxy.port) as client:
                for n, recipients in enumerate(messages, start=1):
                    try:
                        send(client, n, recipients)
                    except (smtplib.SMTPSenderRefused, smtplib.SMTPRecipientsRefused):
                        break
                    except smtplib.SMTPDataError:
                        continue
        proxy.ledger.wait_for(lambda ledger: all(not s.open for s in ledger.sessions))
    return parse_transcript(path.read_text(), source=str(path))


def replay(transcript: Transcript, fake: FakeSES) -> list[tuple[str, str, str]]:
    """The recording's commands sent to `fake`, session by session: (stage, recorded reply,
    fake's reply) for each reply the fake gave otherwise (by shape where ids vary)."""
    differ = []
    for exchanges in transcript.sessions().values():
        with socket.create_connection((fake.host, fake.port)) as sock:
            replies = Replies(sock)
            for exchange in exchanges:
                if exchange.code is None:
                    continue
                if exchange.stage == "EOM":
                    sock.sendall(BODY)
                elif exchange.sent is not None:
                    sock.sendall(exchange.sent.encode() + b"\r\n")
                got = replies.next().decode().rstrip()
                recorded = f"{exchange.code} {exchange.lines[-1]}".rstrip()
                varies = exchange.stage in ("CONNECT", "EOM")
                if (shape(got), got)[not varies] != (shape(recorded), recorded)[not varies]:
                    differ.append((exchange.stage, recorded, got))
    return differ


def test_the_hand_made_421_at_message_6_seeds_a_session_cap_that_closes(tmp_path: Path) -> None:
    rows = []
    for session in (1, 2):
        rows.append((session, "CONNECT", None, 220, "mx.example ESMTP ready"))
        rows.append((session, "EHLO", "HELO client.example", 250, "mx.example"))
        for n in range(1, 6):
            rows.append((session, "MAIL", "MAIL FROM:<a@x.example>", 250, "2.1.0 Sender ok"))
            rows.append((session, "RCPT", "RCPT TO:<b@y.example>", 250, "2.1.0 Sender ok"))
            rows.append((session, "DATA", "DATA", 354, "Go ahead"))
            rows.append((session, "EOM", ".", 250, f"2.0.0 Ok: queued as Q{session}X{n}Z9"))
        rows.append((session, "MAIL", "MAIL FROM:<a@x.example>", 421, "4.7.0 Too many messages"))
    path = tmp_path / "mx.jsonl"
    path.write_text(HEAD + _rows(rows))
    done = harness(str(path), "--write-profile", str(tmp_path / "mx.toml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no differences" in done.stdout
    profile = load_profile_file(tmp_path / "mx.toml")
    assert profile.name == "mx" and profile.limits.session_limit == 5
    cap = profile.replies.session_cap
    assert (cap.code, cap.text, cap.evidence) == (
        421,
        "4.7.0 Too many messages",
        Evidence.USER_REPORTED,
    )
    for source in (cap.source, profile.evidence["session_limit"].source):
        assert path.name in source and "mx.example:25" in source and "2026-11-30" in source
    assert profile.replies.accepted.text == "2.0.0 Ok: queued as {}"
    with FakeSES(profile=str(tmp_path / "mx.toml")) as fake:
        with smtplib.SMTP(fake.host, fake.port) as client:
            for n in range(1, 6):
                send(client, n)
            with pytest.raises(smtplib.SMTPSenderRefused) as refused:
                send(client, 6)
            assert (refused.value.smtp_code, refused.value.smtp_error) == (
                421,
                b"4.7.0 Too many messages",
            )
            with pytest.raises(smtplib.SMTPServerDisconnected):
                client.noop()  # the fake closed with its 421, as the recorded server did
        assert replay(parse_transcript(path.read_text(), source="mx"), fake) == []


def test_sessions_that_disagree_give_the_least_cap_inferred_and_explained(tmp_path: Path) -> None:
    rows = []
    for session, messages in ((1, 5), (2, 4)):
        rows.append((session, "CONNECT", None, 220, "mx.example ESMTP"))
        for _ in range(messages):
            rows.append((session, "MAIL", "MAIL FROM:<a@x.example>", 250, "Ok"))
            rows.append((session, "EOM", ".", 250, "Ok"))
        rows.append((session, "MAIL", "MAIL FROM:<a@x.example>", 421, "Busy"))
        rows.append((session, "RSET", "RSET", 250, "Ok"))  # and the server went on
    path = tmp_path / "mx.jsonl"
    path.write_text(HEAD + _rows(rows))
    done = harness(str(path), "--write-profile", str(tmp_path / "new.toml"), "--name", "mx-relay")
    assert done.returncode == 0, done.stdout
    assert "each one the profile format cannot say" in done.stdout
    assert "the recorded sessions met their 421 after different counts" in done.stdout
    assert "the recorded server went on after its 421" in done.stdout
    profile = load_profile_file(tmp_path / "new.toml")
    assert profile.name == "mx-relay" and profile.limits.session_limit == 4
    assert profile.evidence["session_limit"].evidence is Evidence.INFERRED


@needs_sink
def test_smtp_sinks_recording_seeds_a_profile_the_fake_answers_with(tmp_path: Path) -> None:
    path = tmp_path / "sink.jsonl"
    two = ["a@example.com", "b@example.com"]
    with smtp_sink("-h", "sink.test") as sink:
        transcript = record(path, ("127.0.0.1", sink.port), [[two, two], [two]])
    new = tmp_path / "sink.toml"
    done = harness(str(path), "--write-profile", str(new))
    assert done.returncode == 0, done.stdout + done.stderr
    # What the format cannot say, each with why: smtp-sink's own extensions, and its RCPT's
    # "2.1.5 Ok" beside MAIL's "2.1.0 Ok" where a profile has one ok line.
    assert done.stdout.count("why:") == 2
    assert "a profile cannot list EHLO extensions" in done.stdout
    assert "one ok line answers MAIL, RCPT, RSET and NOOP" in done.stdout
    text = new.read_text()
    assert "# From the base profile" in text and "session_cap" in text  # filled in, and said
    profile = load_profile_file(new)
    assert (profile.replies.host, profile.replies.ident) == ("sink.test", "ESMTP")
    assert str(profile.replies.accepted) == "250 2.0.0 Ok"
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    assert (
        today in profile.replies.ok.source and f"127.0.0.1:{sink.port}" in profile.replies.ok.source
    )
    checked = harness(str(path), "--profile", str(new))  # a profile file, as a built-in
    assert checked.returncode == 1 and "2 differences." in checked.stdout
    with FakeSES(profile=new) as fake:
        differ = replay(transcript, fake)
    assert differ == [("RCPT", "250 2.1.5 Ok", "250 2.1.0 Ok")] * 6


@needs_sink
@pytest.mark.parametrize(
    ("options", "line", "said", "why"),
    [
        (
            ("-f", "RCPT", "-B", "550 5.1.1 Recipient address rejected: User unknown"),
            "bad_recipient",
            "550 5.1.1 Recipient address rejected: User unknown",
            None,
        ),
        (("-Q", "."), None, None, "no profile line says 421 at EOM; a fault rule can"),
    ],
)
def test_smtp_sinks_refusals_seed_their_lines_or_are_explained(
    tmp_path: Path, options: tuple[str, ...], line: str | None, said: str | None, why: str | None
) -> None:
    path = tmp_path / "sink.jsonl"
    with smtp_sink("-h", "sink.test", *options) as sink:
        record(path, ("127.0.0.1", sink.port), [[["a@example.com"]]])
    done = harness(str(path), "--write-profile", str(tmp_path / "sink.toml"))
    assert done.returncode == 0, done.stdout + done.stderr
    profile = load_profile_file(tmp_path / "sink.toml")
    if line is not None:
        seeded = getattr(profile.replies, line)
        assert (str(seeded), seeded.evidence) == (said, Evidence.USER_REPORTED)
        with FakeSES(profile=profile) as fake, smtplib.SMTP(fake.host, fake.port) as client:
            client.ehlo()
            client.mail("app@example.com")
            assert client.rcpt("not an address") == (550, said[4:].encode())
    if why is not None:
        assert why in done.stdout


@needs_postfix
def test_postfixs_limits_seed_the_recipient_cap_and_the_rate_at_mail(tmp_path: Path) -> None:
    path = tmp_path / "postfix.jsonl"
    limits = {"smtpd_recipient_limit": "3", "smtpd_client_message_rate_limit": "4"}
    five = [f"user{n}@example.com" for n in range(5)]
    with postfix(**limits, anvil_rate_time_unit="3600s") as upstream:
        transcript = record(path, ("127.0.0.1", upstream.port), [[five, *[["u@example.com"]] * 4]])
    new = tmp_path / "postfix.toml"
    done = harness(str(path), "--write-profile", str(new), "--name", "postfix")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "recorded: refused recipient 4 at RCPT TO (452 4.5.3" in done.stdout
    assert "why:      a profile's recipient cap takes every RCPT TO" in done.stdout
    profile = load_profile_file(new)
    limits_seen = profile.limits
    assert (limits_seen.max_recipients, limits_seen.quota_stage, limits_seen.burst) == (
        3,
        "MAIL",
        4.0,
    )
    assert profile.evidence["max_recipients"].evidence is Evidence.USER_REPORTED
    assert profile.evidence["rate_per_s"].evidence is Evidence.INFERRED
    assert "no times" in profile.evidence["rate_per_s"].source
    assert str(profile.replies.too_many_recipients) == "452 4.5.3 Error: too many recipients"
    assert str(profile.replies.rate_exceeded) == "450 4.7.1 Error: too much mail from 127.0.0.1"
    assert str(profile.replies.accepted).startswith("250 2.0.0 Ok: queued as {}")
    with FakeSES(profile=new, clock=VirtualClock()) as fake:
        differ = replay(transcript, fake)
    # Explained: one ok line for MAIL, RCPT and RSET; and the note's recipient cap, which the
    # fake says at the end of the 5-recipient message where Postfix refused at RCPT TO. The
    # rate's 450 at the 5th MAIL FROM, the texts and Postfix's 221 are answered as recorded.
    ok, rcpt_ok, refused = (
        "250 2.1.0 Ok",
        ("RCPT", "250 2.1.5 Ok", "250 2.1.0 Ok"),
        ("452 4.5.3 Error: too many recipients"),
    )
    assert [(s, shape(said) if s == "EOM" else said, got) for s, said, got in differ] == [
        *[rcpt_ok] * 3,
        *[("RCPT", refused, ok)] * 2,
        ("EOM", shape("250 2.0.0 Ok: queued as A8DC5211112"), refused),
        *[rcpt_ok] * 3,
        ("RSET", "250 2.0.0 Ok", ok),
    ]


def test_the_ses_fake_recorded_seeds_a_profile_with_no_differences(tmp_path: Path) -> None:
    path = tmp_path / "ses.jsonl"
    with FakeSES(profile="ses", rate_per_s=None) as upstream:
        record(path, upstream.address, [[["a@example.com"]] * 2, [["b@example.com"]]])
    done = harness(str(path), "--write-profile", str(tmp_path / "ses-seen.toml"))
    assert done.returncode == 0 and "no differences" in done.stdout, done.stdout
    profile = load_profile_file(tmp_path / "ses-seen.toml")
    # The words of SES's greeting and message ids that vary from reply to reply are templates.
    assert profile.replies.ident == "ESMTP {token} {token}"
    assert profile.replies.accepted.text == "Ok {}"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (HEAD.encode(), "holds no sessions: nothing to seed a profile from"),
        (
            (HEAD + _rows_text(1, "CONNECT", 220, "x" * 100_000)).encode(),
            "key 'line 2': a reply line of 100,000 characters",
        ),
        ((HEAD + _rows_text(1, "CONNECT", 220, "mx\\u0007 ESMTP")).encode(), "control characters"),
        ((HEAD + _rows_text(1, "CONNECT", 220, "mx \\ud800")).encode(), "control characters"),
        (
            HEAD.encode() + b'{"session": 1, "stage": "CONNECT", "code": 220, "text": "\xff"}',
            "not UTF-8",
        ),
    ],
)
def test_a_recording_that_cannot_seed_is_one_line_and_exit_2(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    done = harness(str(path), "--write-profile", str(tmp_path / "new.toml"))
    assert done.returncode == 2, done.stdout
    assert done.stderr.startswith("ses-harness: ") and done.stderr.count("\n") == 1
    assert problem in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "new.toml").exists()


def test_arguments_that_cannot_work_are_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "mx.jsonl"
    path.write_text(HEAD + _rows_text(1, "CONNECT", 220, "mx.example ESMTP"))
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text('name = "x"\n[limits]\nsesion_limit = 3\n')
    cases = {
        ("--write-profile", str(tmp_path / "missing" / "new.toml")): "cannot write: No such file",
        ("--write-profile", str(tmp_path)): "cannot write: Is a directory",
        ("--write-profile", str(path)): "is the recording itself",
        ("--write-profile", str(tmp_path / "n.toml"), "--name", "bad name!"): "--name 'bad name!'",
        ("--write-profile", str(tmp_path / "n.toml"), "--profile", "ses"): "leave out --profile",
        ("--base", "plain"): "--name and --base go with --write-profile",
        ("--profile", "sess"): "not a built-in profile or a .toml file",
        ("--profile", str(bad_toml)): "key 'limits.sesion_limit': unknown key",
    }
    for args, problem in cases.items():
        done = harness(str(path), *args)
        assert done.returncode == 2, (args, done.stdout)
        assert done.stderr.startswith("ses-harness: ") and done.stderr.count("\n") == 1, args
        assert problem in done.stderr, (args, done.stderr)
    assert path.read_text().startswith(HEAD)  # the recording itself was not overwritten


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=200))
def test_any_text_is_written_as_toml_that_reads_back_the_same(text: str) -> None:
    assert tomllib.loads(f"text = {value(text)}\n")["text"] == text


def test_the_fake_says_a_profiles_own_354_and_221(tmp_path: Path) -> None:
    # Seeded lines are said on the wire: aiosmtpd's fixed "354 End data ..." and "221 Bye" are
    # replaced by the profile's, as its "250 OK" always was.
    path = tmp_path / "mx.toml"
    path.write_text('name = "mx"\n[replies]\ndata = "354 Go ahead"\nquit = "221 2.0.0 See you"\n')
    with FakeSES(profile=path) as fake, smtplib.SMTP(fake.host, fake.port) as client:
        client.ehlo()
        client.mail("app@example.com")
        client.rcpt("user@example.com")
        assert client.docmd("DATA") == (354, b"Go ahead")
        client.send(b"Subject: hi\r\n\r\nhi\r\n.\r\n")
        assert client.getreply()[0] == 250
        assert client.docmd("QUIT") == (221, b"2.0.0 See you")


REPLY_TEXT = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=40)


@given(
    st.lists(
        st.tuples(
            st.integers(1, 3),
            st.sampled_from(["CONNECT", "EHLO", "AUTH", "MAIL", "RCPT", "DATA", "EOM", "RSET"]),
            st.sampled_from([220, 221, 235, 250, 334, 354, 421, 450, 451, 452, 454, 530, 550, 552]),
            REPLY_TEXT,
        ),
        min_size=1,
        max_size=30,
    ),
    st.sampled_from(["plain", "ses", "gmail"]),
)
def test_any_recording_seeds_a_file_that_loads_or_a_plan_error(
    rows: list[tuple[int, str, int, str]], base: str
) -> None:
    text = HEAD + "".join(
        json.dumps({"session": s, "stage": g, "sent": g})
        + "\n"
        + json.dumps({"session": s, "stage": g, "code": c, "text": t})
        + "\n"
        for s, g, c, t in rows
    )
    transcript = parse_transcript(text, source="any.jsonl")
    try:
        seeded = seed_profile(transcript, name="any", base=base)
    except PlanError as error:  # only a line a profile cannot hold
        assert "not a line to seed a profile with" in str(error)
        return
    assert profile_table.from_table(tomllib.loads(seeded.text), PROFILES) == seeded.profile
    for difference in check_profile(transcript, seeded.profile):
        str(difference)  # and the check runs through


def test_a_recipient_cap_at_end_of_data_matches_the_ses_profile_and_seeds_inferred(
    tmp_path: Path,
) -> None:
    # SES (and the fake) take every RCPT TO and refuse the message at the end of its data.
    path = tmp_path / "ses.jsonl"
    many = [f"user{n}@example.com" for n in range(51)]
    with FakeSES(profile="ses", rate_per_s=None) as upstream:
        transcript = record(path, upstream.address, [[many, ["a@example.com"]]])
    assert check_profile(transcript, PROFILES["ses"]) == []
    done = harness(str(path), "--write-profile", str(tmp_path / "seen.toml"))
    assert done.returncode == 0 and "no differences" in done.stdout, done.stdout
    profile = load_profile_file(tmp_path / "seen.toml")
    assert profile.limits.max_recipients == 50  # at most: the recording shows 51 refused
    assert profile.evidence["max_recipients"].evidence is Evidence.INFERRED
    assert str(profile.replies.too_many_recipients) == (
        "554 Transaction failed: Recipient count exceeds 50."
    )


def test_more_messages_than_the_bases_cap_is_explained_not_hidden(tmp_path: Path) -> None:
    rows = [(1, "CONNECT", None, 220, "mx.example ESMTP")]
    for _ in range(351):
        rows.append((1, "MAIL", "MAIL FROM:<a@x.example>", 250, "Ok"))
        rows.append((1, "EOM", ".", 250, "Ok"))
    path = tmp_path / "mx.jsonl"
    path.write_text(HEAD + _rows(rows))
    done = harness(str(path), "--write-profile", str(tmp_path / "mx.toml"), "--base", "ses")
    assert done.returncode == 0, done.stdout
    assert "MAIL     behaviour  recorded: accepted message 351 in one session" in done.stdout
    assert "a profile file cannot switch a base's limit off (seed over plain)" in done.stdout
    assert load_profile_file(tmp_path / "mx.toml").limits.session_limit == 350  # the base's
