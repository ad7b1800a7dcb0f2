"""Seeded text the server shows: the greeting's instance and token, and SES message ids.

Both are functions of the seed and where they are asked, so the same seed gives the same
bytes on the wire.
"""

from __future__ import annotations

import hashlib
import random
import string
import uuid

from harness.core.profiles import Replies


def ident(replies: Replies, seed: int, session: int) -> str:
    """What follows the host in session `session`'s 220 (SES: ``ESMTP SimpleEmailService-...``)."""
    rng = random.Random(f"{seed}:banner:{session}")
    instance = "".join(rng.choices(string.ascii_uppercase + string.digits, k=9))
    token = "".join(rng.choices(string.ascii_letters + string.digits, k=20))
    return replies.ident.format(instance=instance, token=token)


def ses_id(seed: int, session: int, sequence: int, now: float, salt: str = "") -> str:
    """An SES-shaped message id: 0100 + 12 hex ms + '-' + uuid + '-000000'; seeded, and with a
    `salt` (a server run's own, see `Engine.id_salt`) unique to that run."""
    # A keyed hash, not random.Random(text): a third of the cost, once per message.
    key = f"{seed}:id:{session}:{sequence}{':' + salt if salt else ''}".encode()
    seeded = uuid.UUID(bytes=hashlib.blake2b(key, digest_size=16).digest(), version=4)
    return f"0100{int(now * 1000):012x}-{seeded}-000000"
