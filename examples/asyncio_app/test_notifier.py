"""An asyncio app under pytest-asyncio: the app sends on the test's own loop while the test
awaits the fake server; a virtual clock makes the app's backoff free."""

import asyncio

import pytest
from notifier import notice, worker


@pytest.mark.asyncio
async def test_queued_alerts_arrive_once(fake_ses):
    queue = asyncio.Queue()
    app = asyncio.create_task(worker(queue, fake_ses.host, fake_ses.port))
    for n in range(10):
        queue.put_nowait(notice(n))

    await fake_ses.wait_for_messages_async(10)  # yields: the worker sends meanwhile

    fake_ses.assert_delivered_once([f"<alert-{n}@example.com>" for n in range(10)])
    app.cancel()


@pytest.mark.asyncio
@pytest.mark.fake_ses(
    clock="virtual", faults=["stage=RCPT,first=2,action=reply,code=451,text=4.7.1 Later"]
)
async def test_a_refused_alert_is_retried_after_its_backoff(fake_ses):
    queue = asyncio.Queue()
    app = asyncio.create_task(
        worker(queue, fake_ses.host, fake_ses.port, sleep=fake_ses.clock.sleep_async)
    )
    queue.put_nowait(notice(1))

    await queue.join()

    fake_ses.assert_delivered_once(["<alert-1@example.com>"])
    assert fake_ses.clock.elapsed() == 5.0 + 30.0  # two backoff steps, no wall time
    app.cancel()
