"""A batch larger than SES's per-session cap (350) must arrive exactly once.

Since November 2024 SES answers the 351st MAIL FROM of a session with `421 ... Maximum message
count per session reached.` and hangs up. The fake server does the same, so this test fails
for a mailer that reuses one connection for the whole batch.
"""

import pytest
from mailer import BatchMailer, make_message


# The faithful `ses` profile also throttles at 14 messages/s; this test is about the cap only.
@pytest.mark.fake_ses(rate_per_s=None)
def test_a_batch_of_400_survives_the_session_cap(fake_ses):
    messages = [make_message(n) for n in range(400)]

    outcomes = BatchMailer(fake_ses.endpoint.connect).send_all(messages)

    assert all(o.sent for o in outcomes)
    fake_ses.assert_delivered_once([str(m["Message-ID"]) for m in messages])
    assert [s.accepted for s in fake_ses.sessions] == [300, 100]


@pytest.mark.fake_ses(rate_per_s=None, session_limit=3)
def test_a_421_mid_batch_is_retried_on_a_new_connection(fake_ses):
    messages = [make_message(n) for n in range(4)]  # the server caps sessions at 3 here

    outcomes = BatchMailer(fake_ses.endpoint.connect).send_all(messages)

    assert all(o.sent for o in outcomes)
    fake_ses.assert_delivered_once([str(m["Message-ID"]) for m in messages])
    assert [f.name for f in fake_ses.faults_fired] == ["session_limit"]
