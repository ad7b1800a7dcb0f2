"""Temporary refusals are retried; permanent ones are not.

A virtual clock makes the mailer's backoff (5 s, 10 s, 20 s...) cost no wall time: the mailer
sleeps through the server's clock instead of `time.sleep`.
"""

from mailer import BatchMailer, make_message

from harness import VirtualClock


def test_greylisted_messages_arrive_once_after_a_retry(fake_ses_factory):
    ses = fake_ses_factory(profile="plain", clock=VirtualClock())
    greylist = ses.on("RCPT", attempts=1).reply(451, "4.7.1 Greylisted, please try again later")
    # Greylisting remembers (sender, recipient) pairs: one new pair per message.
    messages = [make_message(n, to=f"reader{n}@example.com") for n in range(3)]

    outcomes = BatchMailer(ses.endpoint.connect, sleep=ses.clock.sleep).send_all(messages)

    assert all(o.sent for o in outcomes)
    ses.assert_delivered_once([str(m["Message-ID"]) for m in messages])
    assert greylist.call_count == 3  # the first attempt of each pair
    assert ses.clock.elapsed() >= 3 * 5.0  # one backoff each, in virtual time


def test_a_permanent_refusal_is_reported_not_retried(fake_ses):
    fake_ses.on("RCPT", recipient="*@blocked.example").reply(550, "5.1.1 Mailbox does not exist")

    outcomes = BatchMailer(fake_ses.endpoint.connect).send_all(
        [make_message(1, to="someone@blocked.example"), make_message(2)]
    )

    assert [(o.sent, o.reply[:3]) for o in outcomes] == [(False, "550"), (True, "")]
    fake_ses.assert_delivered_once(["<newsletter-2@example.com>"])
