"""`robust`: every lesson at once, and the one rule that keeps a retrying client honest.

- Pace sends below SES's rate, in recipients per second (`paced`).
- Recycle the connection every 300 messages, before SES's 421 at 350 (`rotate`), and after
  8 s of silence, before SES's 10-second idle timeout closes it under a message (the stale
  connection's QUIT may meet SES's idle 451; no message is at stake then).
- On a 4xx or a lost connection, retry after an exponential, jittered wait (`backoff`) on a
  fresh connection if the old one is gone (`reconnect`).
- Never retry a 5xx: the server has said no for good; report it.
- Never resend a message whose connection died after the final ".": SMTP cannot tell whether
  the server kept it, and a resend may be a duplicate. Where SES's events can be read
  (`endpoint.events_url`), settle it from them once the batch is done (`reconcile`): kept, it
  was sent; not kept, send it again. Otherwise claim it uncertain (not failed) for the
  application to reconcile. `resend_ambiguous=True` prefers a possible duplicate to a possible
  loss.
- Do not mail an address again once SES's events said it hard-bounced or complained: leave the
  message unattempted (SES reviews accounts whose bounce or complaint rates stay high).
- Greylisted a second time? A greylist lets a message through only once its first try is minutes
  old, so retrying within seconds only burns tries: the message waits five and a half minutes
  (postgrey's five, and a margin: the greylist's clock is not ours) in a queue, as an MTA's
  deferred mail does, while the rest of the batch goes on; it is tried again on a fresh
  connection (the old one would idle out meanwhile).
- Stop the batch when SES says the daily quota is spent: every further send is refused until
  the rolling 24-hour window frees room. The rest is left unattempted for a later run.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator, Sequence
from typing import Any

from harness.base.clock import Clock
from harness.base.endpoint import Endpoint
from harness.runner.strategies.backoff import Exponential, Policy
from harness.runner.strategies.paced import RATE_PER_S, Pacer
from harness.runner.strategies.reconcile import Suppressions, settle
from harness.runner.strategies.session import Attempt, Session
from harness.runner.strategy import Claim, ClaimStatus, OutgoingMessage

PER_SESSION = 300
MAX_IDLE_S = 8.0  # SES closes after about 10 s of silence
ATTEMPTS = 6
BACKOFF = Exponential(base_s=1.0, cap_s=30.0)  # 1, 2, 4, 8, 16 s, jittered
QUOTA_SPENT = "daily message quota exceeded"
GREYLISTED = "greylist"  # in the text of a greylisting 4xx ("4.7.1 Greylisted, ...")
GREYLIST_WAIT_S = 330.0  # five minutes (postgrey's default) and a tenth more for the clocks
RECONCILE_ROUNDS = 3  # a resent message may be cut again


def send_batch(
    messages: Sequence[OutgoingMessage],
    endpoint: Endpoint,
    clock: Clock,
    *,
    reconcile: bool = True,
    **options: Any,
) -> Iterator[Claim]:
    """Send the batch; then settle its ambiguous sends from SES's events, when it can read them
    (`endpoint.events_url`) and `reconcile` says so."""
    doubtful: list[tuple[OutgoingMessage, Attempt]] = []
    can_settle = reconcile and endpoint.events_url is not None
    yield from _send_all(messages, endpoint, clock, doubtful if can_settle else None, **options)
    for _ in range(RECONCILE_ROUNDS):
        if not doubtful:
            return
        kept = settle(endpoint, clock, {message.id for message, _ in doubtful})
        again = [message for message, _ in doubtful if message.id not in kept]
        yield from (Claim(m.id, ClaimStatus.SENT) for m, _ in doubtful if m.id in kept)
        doubtful = []
        yield from _send_all(again, endpoint, clock, doubtful, **options)
    yield from (_ambiguous(message, result) for message, result in doubtful)


def _send_all(
    messages: Sequence[OutgoingMessage],
    endpoint: Endpoint,
    clock: Clock,
    doubtful: list[tuple[OutgoingMessage, Attempt]] | None,
    *,
    rate_per_s: float = RATE_PER_S,
    per_session: int = PER_SESSION,
    max_idle_s: float = MAX_IDLE_S,
    policy: Policy = BACKOFF,
    attempts: int = ATTEMPTS,
    resend_ambiguous: bool = False,
    seed: int = 0,
) -> Iterator[Claim]:
    rng = random.Random(seed)
    pacer = Pacer(clock, rate_per_s)
    session = Session(endpoint, clock)
    suppressions = Suppressions(endpoint, clock)
    # Greylisted messages wait their five minutes in a queue, as an MTA's deferred mail does,
    # while the rest of the batch goes on: (when it may go again, its place, it, next attempt).
    deferred: list[tuple[float, int, OutgoingMessage, int]] = []

    def send(message: OutgoingMessage, order: int, first: int) -> Iterator[Claim]:
        greylisted = 1 if first > 1 else 0  # it comes back from the queue after two refusals
        for attempt in range(first, attempts + 1):
            pacer.wait_for(len(message.recipients))
            if session.is_open and (session.sent >= per_session or session.idle_s > max_idle_s):
                session.close()
            result = session.send(message)
            if result.ambiguous and not resend_ambiguous:
                if doubtful is None:
                    yield _ambiguous(message, result)
                else:
                    doubtful.append((message, result))  # settled from the events
                return
            if QUOTA_SPENT in result.text.lower():
                yield result.claim(message)
                raise _QuotaSpent
            if result.accepted or result.permanent or attempt == attempts:
                yield result.claim(message)
                return
            greylisted = greylisted + 1 if GREYLISTED in result.text.lower() else 0
            if greylisted >= 2:  # not a fluke: a greylist, which only time satisfies
                heapq.heappush(
                    deferred, (clock.now() + GREYLIST_WAIT_S, order, message, attempt + 1)
                )
                return
            clock.sleep(policy.wait_s(attempt, rng))

    try:
        for order, message in enumerate(messages):
            if suppressions.blocks(message.recipients):
                yield Claim(message.id, ClaimStatus.NOT_ATTEMPTED, None, "bounced or complained")
                continue
            yield from send(message, order, 1)
        while deferred:
            ready_s, order, message, attempt = heapq.heappop(deferred)
            clock.sleep(max(0.0, ready_s - clock.now()))  # send() lets an idle connection go
            yield from send(message, order, attempt)
    except _QuotaSpent:
        return
    finally:
        session.close()


class _QuotaSpent(Exception):
    """SES said the daily quota is spent: the rest of the batch waits for a later run."""


def _ambiguous(message: OutgoingMessage, result: Attempt) -> Claim:
    text = f"ambiguous: {result.text} after the final '.'; the server may have accepted it"
    return Claim(message.id, ClaimStatus.UNCERTAIN, None, text)
