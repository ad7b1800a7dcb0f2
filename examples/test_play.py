"""One scenario against your own strategy, from your own unit test (README's example)."""

from mymail import send_batch

import harness


def test_the_batch_mailer_survives_the_session_cap():
    harness.play("session-cap", send_batch).assert_ok()  # the contract, or expect={...}
