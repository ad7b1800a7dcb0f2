"""The API stage in the sans-I/O core: plans that use it, and one account for both doors."""

from __future__ import annotations

import pytest

from harness.core.api_errors import V1, V2, error_for
from harness.core.engine import Engine, Outcome
from harness.core.errors import PlanError
from harness.core.plan import Plan, Rule, Stage


def test_api_rules_load_with_http_statuses_and_error_codes():
    rule = Rule.from_dict(
        {"stage": "API", "every": 3, "action": "reply", "code": 400, "error": "Throttling"}
    )
    assert rule.match.stage is Stage.API
    assert Rule.from_dict(rule.to_dict()) == rule
    assert Rule.from_dict({"stage": "API", "action": "drop_after_accept"}).action.kind == (
        "drop_after_accept"
    )
    assert Rule.from_spec("stage=API,attempts=2,action=reply,code=503").match.attempts == 2


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"stage": "API", "action": "reply", "code": 250}, "code"),
        ({"stage": "EOM", "action": "reply", "code": 451, "error": "Throttling"}, "error"),
        ({"stage": "API", "action": "reply", "code": 400, "error": "no spaces"}, "error"),
        ({"stage": "MAIL", "action": "drop_after_accept"}, "action"),
    ],
)
def test_api_rules_that_cannot_be_are_refused_naming_the_key(table, key):
    with pytest.raises(PlanError) as error:
        Rule.from_dict(table)
    assert error.value.key == key


def test_the_api_and_end_of_data_take_from_one_rate_bucket():
    engine = Engine(Plan(profile="ses", limits={"rate_per_s": 1.0}), now=0.0)
    session, _ = engine.connect(now=0.0)
    smtp = engine.end_of_data(
        session, now=0.0, sender="a@x", recipients=("b@y", "c@y"), key="<1@x>", size=10
    )
    assert smtp.outcome is Outcome.ACCEPT
    api = engine.api_message(now=1.0, version=V2, recipients=("d@y",), size=10)
    assert api.outcome is Outcome.REPLY
    assert api.error == error_for("rate_per_s", V2)
    assert engine.api_message(now=2.0, version=V2, recipients=("d@y",), size=10).ses_id


def test_send_quota_counts_both_doors_per_recipient():
    engine = Engine(Plan(profile="ses", limits={"daily_quota": 10}), now=0.0)
    session, _ = engine.connect(now=0.0)
    engine.end_of_data(session, now=0.0, sender="a@x", recipients=("b@y",) * 2, key="k", size=1)
    engine.api_message(now=1.0, version=V1, recipients=("c@y",) * 3, size=1)
    assert engine.send_quota(now=2.0) == (10.0, 14.0, 5.0)


def test_v1_caps_a_message_at_10_mb_and_v2_at_the_profiles_40():
    engine = Engine(Plan(profile="ses", limits={"rate_per_s": None}), now=0.0)
    size = 11 * 1024 * 1024
    refused = engine.api_message(now=0.0, version=V1, recipients=("a@y",), size=size)
    assert refused.error is not None and refused.error.code == "InvalidParameterValue"
    assert "10485760" in refused.error.message
    assert engine.api_message(now=0.0, version=V2, recipients=("a@y",), size=size).ses_id


def test_api_attempts_are_counted_by_message_for_greylisting():
    greylist = Rule.from_dict({"stage": "API", "attempts": 1, "action": "reply", "code": 503})
    engine = Engine(Plan(faults=(greylist,)), now=0.0)
    first = engine.api_request(now=0.0, sender="a@x", recipients=("b@y",), key="<m@x>")
    second = engine.api_request(now=0.0, sender="a@x", recipients=("b@y",), key="<m@x>")
    other = engine.api_request(now=0.0, sender="a@x", recipients=("b@y",), key="<n@x>")
    assert [first.outcome, second.outcome, other.outcome] == [
        Outcome.REPLY,
        Outcome.PROCEED,
        Outcome.REPLY,
    ]
    assert engine.api_error(first, V2).code == "ServiceUnavailable"


def test_the_developer_guides_wording_is_a_limit_setting():
    plan = Plan(profile="ses", limits={"rate_per_s": 1.0, "api_throttle": "ThrottlingException"})
    engine = Engine(plan, now=0.0)
    engine.api_message(now=0.0, version=V2, recipients=("a@y",), size=1)
    refused = engine.api_message(now=0.0, version=V2, recipients=("a@y",), size=1)
    assert (refused.error.status, refused.error.code) == (400, "ThrottlingException")
    with pytest.raises(PlanError):
        Plan(limits={"api_throttle": "Slow"})
