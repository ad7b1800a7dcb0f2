"""An honest "I don't know": a client that cannot tell whether a cut message was stored says so.

Claimed by a `cmd:` client, by a Python callable and by the built-in strategies that stop
after an ambiguous cut; scored as its own class, neither misreported nor lost.
"""

from __future__ import annotations

import shlex
import smtplib
import textwrap
from collections.abc import Iterator, Sequence

import pytest

from harness import Claim, ClaimStatus, Endpoint, OutgoingMessage
from harness.base.clock import Clock
from harness.reports.schema import validate_results
from harness.runner.matrix import run_case, run_matrix
from harness.runner.scenario import load_scenario
from harness.runner.scoring import MessageClass, classify

# The second end of data is recorded and then cut before its 250; the fourth is cut unrecorded.
SCENARIO = """
name = "two-cuts"
description = "Two cut connections after the final '.': one message kept, one not."

[workload]
count = 5
seed = 4

[plan]
profile = "ses"
seed = 4
limits = { rate_per_s = 10000.0 }

[[plan.faults]]
stage = "EOM"
nth = 2
action = "drop_after_accept"

[[plan.faults]]
stage = "EOM"
nth = 4
action = "drop"
"""

# A client in its own process: a cut after the data is "uncertain", through harness.client.
CLIENT = """
import smtplib
from harness.client import Claims, batch, server

smtp_server, claims, smtp = server(), Claims(), None
for message in batch():
    if smtp is None:
        smtp = smtplib.SMTP(smtp_server.host, smtp_server.port)
    try:
        smtp.sendmail(message.sender, message.recipients, open(message.file, "rb").read())
    except smtplib.SMTPServerDisconnected as error:
        claims.uncertain(message, error)  # the data went; the reply never came
        smtp = None
    else:
        claims.sent(message)
if smtp is not None:
    smtp.quit()
"""


def careful(
    messages: Sequence[OutgoingMessage], endpoint: Endpoint, clock: Clock
) -> Iterator[Claim]:
    """The same client as a Python callable (`tests.test_uncertain_claims:careful`)."""
    client = None
    for message in messages:
        if client is None:
            client = endpoint.connect()
        try:
            client.sendmail(message.sender, list(message.recipients), message.data)
        except smtplib.SMTPServerDisconnected as error:
            yield Claim(message.id, ClaimStatus.UNCERTAIN, None, str(error))
            client = None
        else:
            yield Claim(message.id, ClaimStatus.SENT)
    if client is not None:
        client.quit()


@pytest.fixture
def scenario(tmp_path):
    path = tmp_path / "two-cuts.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    return load_scenario(path)


def _classes(case: dict) -> list[tuple[str, int, str]]:
    return [(m["class"], m["copies"], m["claim"]) for m in case["messages"]]


EXPECTED = [
    ("delivered_once", 1, "sent"),
    ("uncertain", 1, "uncertain"),  # kept by the server: not "misreported"
    ("delivered_once", 1, "sent"),
    ("uncertain", 0, "uncertain"),  # not kept: not "given up", not "silently lost"
    ("delivered_once", 1, "sent"),
]


def test_a_cmd_client_claims_uncertain_and_scores_as_such(tmp_path, scenario) -> None:
    path = tmp_path / "client.py"
    path.write_text(textwrap.dedent(CLIENT), encoding="utf-8")
    case = run_case(scenario, f"cmd:python {shlex.quote(str(path))}")

    assert case["error"] is None and case["command"]["claims"] == "client"
    assert _classes(case) == EXPECTED
    score = case["score"]
    assert (score["uncertain"], score["misreported"], score["given_up"]) == (2, 0, 0)
    assert score["delivered_once_score"] == 3 / 5  # honest, but not delivered once either


def test_a_callable_strategy_claims_uncertain_and_scores_as_such(scenario) -> None:
    case = run_case(scenario, "tests.test_uncertain_claims:careful")

    assert case["error"] is None
    assert _classes(case) == EXPECTED


@pytest.mark.parametrize("strategy", ["robust", "rotate", "paced"])
def test_built_ins_that_do_not_resend_after_a_cut_say_they_do_not_know(scenario, strategy) -> None:
    case = run_case(scenario, strategy)

    assert [m["class"] for m in case["messages"]][1::2] == ["uncertain", "uncertain"]
    assert case["score"]["duplicated"] == 0


@pytest.mark.slow
def test_the_results_schema_takes_uncertain(tmp_path, scenario) -> None:
    results = run_matrix([scenario], ["robust"])
    validate_results(results)


def test_uncertain_is_its_own_class_for_zero_or_one_copy_only() -> None:
    uncertain = Claim("<m@x>", ClaimStatus.UNCERTAIN)
    assert classify(0, uncertain) is MessageClass.UNCERTAIN
    assert classify(1, uncertain) is MessageClass.UNCERTAIN
    assert classify(2, uncertain) is MessageClass.DUPLICATED
