"""The pure fault core, without sockets: determinism and the meaning of each matcher."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from harness import Plan, PlanError, Rule, Stage
from harness.core.engine import Engine, Outcome
from harness.core.rules import Command, RuleBook

STAGES = [s for s in Stage if s not in (Stage.CONNECT, Stage.EOM, Stage.NOTIFY)]

commands = st.lists(st.tuples(st.integers(1, 4), st.sampled_from(STAGES)), min_size=1, max_size=60)


def rule(**match) -> Rule:
    return Rule.from_dict({**match, "action": "reply", "code": 451, "text": "x"})


def replay(rules, seed, sequence):
    """Feed a command sequence to a fresh RuleBook; return which rules fired for each."""
    book = RuleBook(rules, seed)
    numbers: dict[int, int] = {}
    fired = []
    for session, stage in sequence:
        numbers[session] = numbers.get(session, 0) + 1
        fired.append(tuple(book.firing(Command(stage, session, numbers[session]))))
    return fired


@given(seed=st.integers(0, 2**32), sequence=commands, p=st.floats(0, 1))
def test_same_plan_and_seed_give_identical_decisions(seed, sequence, p):
    rules = [
        rule(stage="MAIL", probability=p),
        rule(stage="RCPT", every=2),
        rule(stage="NOOP", first=3),
    ]
    assert replay(rules, seed, sequence) == replay(rules, seed, sequence)


@given(k=st.integers(1, 10), n=st.integers(0, 40))
def test_first_k_fires_exactly_min_k_n_times(k, n):
    fired = replay([rule(stage="MAIL", first=k)], 0, [(1, Stage.MAIL)] * n)
    assert sum(1 for f in fired if f) == min(k, n)
    assert all(fired[:k])


@given(k=st.integers(1, 10), n=st.integers(0, 40))
def test_every_k_fires_on_multiples_of_k(k, n):
    fired = replay([rule(stage="RCPT", every=k)], 0, [(1, Stage.RCPT)] * n)
    assert [i + 1 for i, f in enumerate(fired) if f] == list(range(k, n + 1, k))


@given(k=st.integers(0, 10), n=st.integers(0, 40))
def test_after_k_fires_on_every_later_occurrence(k, n):
    fired = replay([rule(stage="NOOP", after=k)], 0, [(1, Stage.NOOP)] * n)
    assert sum(1 for f in fired if f) == max(0, n - k)


@given(k=st.integers(1, 10), n=st.integers(0, 40))
def test_nth_fires_once(k, n):
    fired = replay([rule(stage="DATA", nth=k)], 0, [(1, Stage.DATA)] * n)
    assert sum(1 for f in fired if f) == (1 if n >= k else 0)


@given(sequence=commands)
def test_occurrences_count_only_commands_that_pass_the_filters(sequence):
    """A session filter narrows what is counted: nth=1 in session 2 is session 2's first MAIL."""
    fired = replay([rule(stage="MAIL", session=2, nth=1)], 0, sequence)
    hits = [sequence[i] for i, f in enumerate(fired) if f]
    mails_in_2 = [c for c in sequence if c == (2, Stage.MAIL)]
    assert hits == mails_in_2[:1]


@settings(max_examples=20)
@given(p=st.sampled_from([0.05, 0.25, 0.5, 0.9]), seed=st.integers(0, 1000))
def test_probability_fires_at_about_the_given_rate(p, seed):
    n = 4000
    fired = replay([rule(stage="NOOP", probability=p)], seed, [(1, Stage.NOOP)] * n)
    rate = sum(1 for f in fired if f) / n
    # Binomial standard deviation at n=4000 is at most 0.008; 5 sigma keeps this from flaking.
    assert abs(rate - p) < 0.04


def test_probability_zero_and_one_are_exact():
    sequence = [(1, Stage.NOOP)] * 200
    assert not any(replay([rule(stage="NOOP", probability=0.0)], 1, sequence))
    assert all(replay([rule(stage="NOOP", probability=1.0)], 1, sequence))


def test_different_seeds_give_different_random_schedules():
    sequence = [(1, Stage.NOOP)] * 200
    rules = [rule(stage="NOOP", probability=0.5)]
    assert replay(rules, 1, sequence) != replay(rules, 2, sequence)


def test_each_rule_counts_its_own_occurrences_even_when_an_earlier_rule_fired():
    rules = [rule(stage="MAIL", first=1), rule(stage="MAIL", nth=2)]
    assert replay(rules, 0, [(1, Stage.MAIL)] * 3) == [(0,), (1,), ()]


def test_engine_attempts_are_counted_per_message_id_at_end_of_data():
    plan = Plan(profile="plain", faults=(rule(stage="EOM", attempts=2),))
    engine = Engine(plan, now=0.0)
    session, _ = engine.connect(now=0.0)
    outcomes = [
        engine.end_of_data(
            session, now=0.0, sender="a@x", recipients=("b@y",), key=key, size=10
        ).outcome
        for key in ["<1@x>", "<2@x>", "<1@x>", "<1@x>", "<2@x>", "<2@x>"]
    ]
    # attempts:          1@1    2@1    1@2    1@3     2@2    2@3
    assert outcomes == [Outcome.REPLY] * 3 + [Outcome.ACCEPT, Outcome.REPLY, Outcome.ACCEPT]


def test_delays_add_up_and_the_first_other_rule_decides():
    plan = Plan(
        profile="plain",
        faults=(
            Rule.from_spec("stage=MAIL,action=delay,delay_s=2"),
            Rule.from_spec("stage=MAIL,action=delay,delay_s=3"),
            Rule.from_spec("stage=MAIL,action=reply,code=451,text=first"),
            Rule.from_spec("stage=MAIL,action=reply,code=452,text=second"),
        ),
    )
    engine = Engine(plan, now=0.0)
    session, _ = engine.connect(now=0.0)
    decision = engine.command(session, Stage.MAIL, now=0.0, sender="a@x")
    assert (decision.delay_s, str(decision.reply)) == (5.0, "451 first")
    assert [f.name for f in decision.fired] == ["MAIL:delay", "MAIL:delay", "MAIL:reply"]


rule_dicts = st.fixed_dictionaries(
    {
        "stage": st.sampled_from([s.value for s in Stage if s not in (Stage.EOM, Stage.NOTIFY)]),
        "action": st.just("reply"),
        "code": st.integers(400, 599),
        "text": st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
    },
    optional={
        "nth": st.integers(1, 9),
        "first": st.integers(1, 9),
        "every": st.integers(1, 9),
        "probability": st.floats(0, 1),
        "session": st.integers(1, 9),
    },
)


@given(st.lists(rule_dicts, max_size=5), st.integers(0, 2**31))
def test_plans_round_trip_through_their_dict_form(faults, seed):
    plan = Plan.from_dict({"profile": "ses", "seed": seed, "faults": faults})
    assert Plan.from_dict(plan.to_dict()) == plan


@given(
    st.dictionaries(
        st.text(max_size=8), st.one_of(st.integers(), st.text(max_size=5), st.none()), max_size=4
    )
)
def test_arbitrary_rule_tables_are_accepted_or_refused_with_a_plan_error(data):
    try:
        Rule.from_dict(data)
    except PlanError as error:
        assert str(error)


def test_a_missing_required_action_key_is_named():
    try:
        Plan.from_dict({"faults": [{"stage": "MAIL", "action": "reply"}]}, source="x.toml")
    except PlanError as error:
        assert str(error) == "x.toml: key 'faults[0].code': is required (allowed: an integer)"
    else:
        raise AssertionError("a reply without a code must be refused")
