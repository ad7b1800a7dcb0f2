"""ses-fault-harness: a fault-injecting fake Amazon SES SMTP server and exactly-once scoring.

The public API: a user's code imports from here. Inside the package each module imports from
the modules it needs, in its own layer or below (see each subpackage's docstring).

Names load on first use (PEP 562): pytest imports this package for its plugin entry point in
every run, and the server (aiosmtpd, cryptography) should cost nothing until a test needs it.

The public names are listed once, as the imports under TYPE_CHECKING below: type checkers read
them there (``Name as Name`` is PEP 484's form of a re-export), and `__getattr__` and `__all__`
are built from the same lines of this file's source.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Sorted by hand: isort would make each `Name as Name` an import statement of its own.
    # isort: off
    from harness.base.clock import (
        Clock as Clock,
        RealClock as RealClock,
        ScaledClock as ScaledClock,
        VirtualClock as VirtualClock,
    )
    from harness.base.endpoint import (
        Endpoint as Endpoint,
        TlsMode as TlsMode,
    )
    from harness.base.ledger import (
        FaultRecord as FaultRecord,
        Ledger as Ledger,
        MessageRecord as MessageRecord,
        SessionRecord as SessionRecord,
        TranscriptLine as TranscriptLine,
    )
    from harness.base.profile_file import (
        load_profile_file as load_profile_file,
    )
    from harness.base.sesevents import (
        SesEvent as SesEvent,
    )
    from harness.console.remote import (
        RemoteFakeSES as RemoteFakeSES,
    )
    from harness.core.engine import (
        Decision as Decision,
        Engine as Engine,
        Outcome as Outcome,
    )
    from harness.core.errors import (
        PlanError as PlanError,
    )
    from harness.core.limits import (
        Limits as Limits,
    )
    from harness.core.outcomes import (
        Bounce as Bounce,
        Complain as Complain,
        DeliveryDelay as DeliveryDelay,
        Fate as Fate,
        RejectVirus as RejectVirus,
    )
    from harness.core.plan import (
        ACTIONS as ACTIONS,
        Delay as Delay,
        Drop as Drop,
        DropAfterAccept as DropAfterAccept,
        Duplicate as Duplicate,
        Matcher as Matcher,
        Plan as Plan,
        Reply as Reply,
        Rule as Rule,
        Stage as Stage,
        Stall as Stall,
    )
    from harness.core.snspolicy import (
        DeliveryPolicy as DeliveryPolicy,
    )
    from harness.core.evidence import (
        Cite as Cite,
        Replies as Replies,
    )
    from harness.core.profiles import (
        PROFILES as PROFILES,
        Evidence as Evidence,
        Line as Line,
        Profile as Profile,
    )
    from harness.core.suppression import (
        SuppressedDestination as SuppressedDestination,
    )
    from harness.hunting.search import (
        hunt as hunt,
    )
    from harness.plugin.play import (
        Played as Played,
        play as play,
    )
    from harness.runner.matrix import (
        run_case as run_case,
        run_matrix as run_matrix,
    )
    from harness.runner.resolve import (
        resolve_strategy as resolve_strategy,
    )
    from harness.runner.scenario import (
        Scenario as Scenario,
        load_scenario as load_scenario,
    )
    from harness.runner.strategy import (
        Claim as Claim,
        ClaimStatus as ClaimStatus,
        OutgoingMessage as OutgoingMessage,
        Strategy as Strategy,
    )
    from harness.server.events.signing import (
        verify_sns_message as verify_sns_message,
    )
    from harness.server.fake_ses import (
        FakeSES as FakeSES,
    )
    from harness.server.relay.proxy import (
        SesProxy as SesProxy,
    )
    from harness.server.relay.upstream import (
        UpstreamConfig as UpstreamConfig,
    )
    from harness.server.view import (
        FakeSESView as FakeSESView,
    )
    # isort: on


def _homes() -> dict[str, str]:
    """Each public name and the module it lives in, read from the imports under TYPE_CHECKING."""
    import ast  # here, not at the top: `harness.ast` would be a name of the public API

    with open(__file__, encoding="utf-8") as source:
        tree = ast.parse(source.read(), __file__)
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name)
        if node.test.id == "TYPE_CHECKING"
    )
    return {
        alias.asname or alias.name: node.module
        for node in block.body
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }


_HOME_OF = _homes()
__all__ = sorted(_HOME_OF)


def __getattr__(name: str) -> Any:
    module = _HOME_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
