"""What all connections of one fake server share: the engine, the ledger, the clock, the config."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from harness.base.clock import Clock
from harness.base.endpoint import TlsMode
from harness.base.ledger import FaultRecord, Ledger, SessionRecord
from harness.core.engine import Decision, Engine
from harness.core.plan import Plan

if TYPE_CHECKING:
    import ssl


class Connection(Protocol):
    """What the server needs of a live connection (a `SesSMTP`): to shut it down, to carry it
    over a reset, and to tell a quiet (pooled) connection from a busy or closing one."""

    number: int
    record: SessionRecord | None

    def stop(self) -> None: ...
    def carry_over(self) -> None: ...
    def quiet(self) -> bool: ...


@dataclass
class ServerState:
    engine: Engine
    ledger: Ledger
    clock: Clock
    tls: TlsMode = TlsMode.NONE
    ssl_context: ssl.SSLContext | None = None
    credentials: Mapping[str, str] | None = None  # each user's password (None: any login)
    live: set[Connection] = field(default_factory=set)
    # Plan changes come from other threads (tests, the HTTP API); decisions hold this briefly.
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def create(
        cls, plan: Plan, ledger: Ledger, clock: Clock, region: str = "us-east-1", **config: object
    ) -> ServerState:
        engine = Engine(plan, now=clock.now(), region=region)
        return cls(engine, ledger, clock, **config)  # type: ignore[arg-type]

    def set_plan(self, plan: Plan) -> None:
        with self.lock:
            self.engine.set_plan(plan, now=self.clock.now())

    def record_faults(
        self, session: SessionRecord, command: int, stage: str, decision: Decision
    ) -> None:
        for fired in decision.fired:
            self.ledger.fault(
                FaultRecord(
                    session=session.number,
                    command=command,
                    stage=stage,
                    source=fired.source,
                    name=fired.name,
                    action=fired.action,
                    reply=fired.reply,
                    at=self.clock.now(),
                    rule_index=fired.rule_index,
                )
            )

    @staticmethod
    def wall() -> float:
        return time.time()
