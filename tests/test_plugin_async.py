"""Async tests: the waits yield to the loop the app sends on, and `async with FakeSES` is a view.

The user projects run under pytest-asyncio and under anyio; the client is aiosmtplib on the
test's own loop, and the sender task only runs if the wait yields to that loop.
"""

from __future__ import annotations

import aiosmtplib
import pytest

from harness import FakeSES, VirtualClock

SENDER = """
import asyncio
import aiosmtplib

async def send(host, port, count):
    client = aiosmtplib.SMTP(hostname=host, port=port, start_tls=False)
    await client.connect()
    for n in range(count):
        await client.sendmail("app@example.com", ["u@example.com"],
                              f"Message-ID: <a{n}@x>\\r\\nSubject: {n}\\r\\n\\r\\nhi\\r\\n")
    await client.quit()
"""

ASYNCIO_TESTS = """
import asyncio
import pytest
from sender import send

@pytest.mark.asyncio
async def test_the_wait_yields_to_the_app_on_the_same_loop(fake_ses):
    app = asyncio.create_task(send(fake_ses.host, fake_ses.port, 10))  # runs only if we yield
    messages = await fake_ses.wait_for_messages_async(10, timeout_s=30)
    await app
    assert len(messages) == 10
    await fake_ses.wait_for_sessions_async(1)
    fake_ses.assert_delivered_once([f"<a{n}@x>" for n in range(10)])

@pytest.mark.asyncio
@pytest.mark.fake_ses(faults=["stage=RCPT,first=1,action=reply,code=451,text=Later"])
async def test_waiting_for_faults(fake_ses):
    app = asyncio.create_task(send(fake_ses.host, fake_ses.port, 1))
    faults = await fake_ses.wait_for_faults_async(1, timeout_s=30)
    assert faults[0].reply == "451 Later"
    with pytest.raises(Exception):
        await app
    await fake_ses.wait_for_faults_async(1)  # already true: returns at once

@pytest.mark.asyncio
async def test_the_blocking_wait_refuses_a_running_loop(fake_ses):
    with pytest.raises(RuntimeError) as refused:
        fake_ses.wait_for_messages(1, timeout_s=3)
    assert "await fake_ses.wait_for_messages_async(...)" in str(refused.value)

@pytest.mark.asyncio
async def test_an_unmet_async_wait_fails_with_what_arrived(fake_ses):
    with pytest.raises(AssertionError) as waited:
        await fake_ses.wait_for_messages_async(1, timeout_s=0.05)
    assert "waited 0.05s for 1 messages; the server recorded 0 messages" in str(waited.value)

@pytest.mark.asyncio
@pytest.mark.fake_ses(clock="virtual")
async def test_the_virtual_clock_sleeps_on_the_loop_at_once(fake_ses):
    before = fake_ses.clock.now()
    await fake_ses.clock.sleep_async(1200)
    assert fake_ses.clock.now() - before == 1200
"""

ANYIO_TESTS = """
import anyio
import pytest
from sender import send

@pytest.fixture
def anyio_backend():
    return "asyncio"

@pytest.mark.anyio
async def test_the_wait_yields_under_anyio(fake_ses):
    async with anyio.create_task_group() as group:
        group.start_soon(send, fake_ses.host, fake_ses.port, 10)
        messages = await fake_ses.wait_for_messages_async(10, timeout_s=30)
    assert len(messages) == 10
    fake_ses.assert_delivered_once([f"<a{n}@x>" for n in range(10)])
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(sender=SENDER)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    return pytester


def test_async_tests_under_pytest_asyncio(project: pytest.Pytester) -> None:
    project.makepyfile(test_async=ASYNCIO_TESTS)
    project.runpytest("-p", "no:anyio").assert_outcomes(passed=5)


def test_async_tests_under_anyio(project: pytest.Pytester) -> None:
    project.makepyfile(test_anyio=ANYIO_TESTS)
    project.runpytest("-p", "no:asyncio").assert_outcomes(passed=1)


async def test_async_with_gives_the_fixtures_view() -> None:
    clock = VirtualClock()
    async with FakeSES(profile="plain", clock=clock) as ses:  # no idle limit: we sleep 300 s
        grey = ses.on("RCPT").times(1).reply(451, "4.7.1 Greylisted")
        client = aiosmtplib.SMTP(hostname=ses.host, port=ses.port, start_tls=False)
        await client.connect()
        message = "Message-ID: <g@x>\r\n\r\nhi\r\n"
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
            await client.sendmail("a@example.com", ["u@example.com"], message)
        await ses.clock.sleep_async(300)
        await client.sendmail("a@example.com", ["u@example.com"], message)
        await ses.wait_for_messages_async(1)
        await client.quit()
        ses.assert_delivered_once(["<g@x>"])
        assert grey.call_count == 1 and isinstance(ses.server, FakeSES)
    assert clock.elapsed() == 300


async def test_async_with_holds_arranged_faults_to_strictness() -> None:
    with pytest.raises(AssertionError) as unmet:
        async with FakeSES(profile="ses") as ses:
            ses.on("MAIL", sender="*@nobody.example").reply(451, "never")
    assert "never fired: stage=MAIL,sender=*@nobody.example" in str(unmet.value)
