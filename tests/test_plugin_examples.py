"""The examples README points to run green, as a user would run them."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_the_examples_pass_as_a_user_runs_them(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(str(EXAMPLES), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=10)


def test_the_batch_example_fails_readably_for_a_mailer_that_ignores_the_cap(
    pytester: pytest.Pytester,
) -> None:
    # The same test against a mailer that keeps one session and believes every 421 was a send.
    pytester.makepyfile(
        mailer=(EXAMPLES / "mailer.py").read_text(),
        test_batch=(EXAMPLES / "test_batch_mailer.py").read_text(),
    )
    pytester.makeconftest(
        """
        import mailer

        class Careless(mailer.BatchMailer):
            def _send(self, message):
                if self._client is None:
                    self._client = self._connect()
                try:
                    self._client.send_message(message)
                except Exception:
                    pass  # "it probably went out"
                return mailer.Outcome(str(message["Message-ID"]), sent=True)

        mailer.BatchMailer = Careless
        """
    )
    result = pytester.runpytest("-k", "400")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*50 of 400 messages were not delivered exactly once (server recorded 350 messages)",
            "*not delivered (50, no copy on the server):",
            "*<newsletter-350@example.com>",
            "*... and 40 more",
            "*1 fault in session 1:",
            "*session 1 command * MAIL: limit 'session_limit' -> 421 Connection closed by server.*",
            "*reproduce: @pytest.mark.fake_ses(profile='ses', seed=0, rate_per_s=None)",
        ]
    )
