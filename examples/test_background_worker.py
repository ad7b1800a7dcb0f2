"""A mailer running in a background thread: wait for the server, then assert.

`wait_for_messages` blocks until the server has recorded that many messages (or fails the test
after the timeout), so the test needs no sleeps.
"""

import queue
import threading

from mailer import BatchMailer, make_message


def test_worker_rides_out_a_throttling_burst(fake_ses):
    fake_ses.limits(rate_per_s=None)
    throttle = fake_ses.on("EOM", nth=2).reply(
        454, "Throttling failure: Maximum sending rate exceeded."
    )
    jobs: queue.Queue = queue.Queue()

    def worker():
        mailer = BatchMailer(fake_ses.endpoint.connect, sleep=lambda s: None)
        mailer.send_all(iter(jobs.get, None))

    thread = threading.Thread(target=worker)
    thread.start()
    for n in range(5):
        jobs.put(make_message(n))
    jobs.put(None)

    fake_ses.wait_for_messages(5, timeout_s=30)
    thread.join()
    fake_ses.assert_delivered_once([f"<newsletter-{n}@example.com>" for n in range(5)])
    assert throttle.call_count == 1
