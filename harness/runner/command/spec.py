"""The ``cmd:`` spec: a client's command line and its options, and their defaults.

>>> parse_spec("cmd[time_scale=10]:node send.js --pool")
(['node', 'send.js', '--pool'], {'time_scale': 10.0})
"""

from __future__ import annotations

import re
import shlex

from harness.core.errors import PlanError

PREFIX = "cmd"  # a spec is cmd:COMMAND or cmd[OPTIONS]:COMMAND
DEFAULT_TIMEOUT_S = 300.0
#: The scale a command case runs at unless told: measured, not guessed (bench/time_scale.py,
#: docs/performance.md). The conformance table at 20x on this 2-core machine under a load of
#: about 10 had pace suggest 3x to 14x, median 8x, and at 20x a 10 s idle timeout (0.5 wall
#: seconds) cut 3 of nodemailer's 1,000 sessions in an untimed scenario.
DEFAULT_TIME_SCALE = 8.0
_SPEC = re.compile(r"^cmd(?:\[(?P<options>[^\]]*)\])?:(?P<command>.*)$", re.DOTALL)
_OPTIONS = ("time_scale", "timeout_s")
_FORM = "cmd:COMMAND or cmd[time_scale=K,timeout_s=S]:COMMAND"


def parse_spec(spec: str) -> tuple[list[str], dict[str, float]]:
    """The argv and options of ``cmd[key=value,...]:COMMAND``; bad ones are a PlanError naming
    them."""
    found = _SPEC.match(spec)
    if found is None:
        raise PlanError("strategy", f"{spec!r} is not a command strategy", allowed=_FORM)
    try:
        argv = shlex.split(found.group("command"))
    except ValueError as error:
        raise PlanError("strategy", f"{spec!r}: cannot split the command: {error}") from None
    return argv, _options(found.group("options") or "")


def _options(text: str) -> dict[str, float]:
    options: dict[str, float] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or key not in _OPTIONS:
            raise PlanError(f"strategy.cmd[{key}]", "unknown option", allowed=_OPTIONS)
        try:
            value = float(raw)
        except ValueError:
            raise PlanError(f"strategy.cmd[{key}]", f"{raw!r} is not a number") from None
        if not value > 0 or value == float("inf"):
            raise PlanError(f"strategy.cmd[{key}]", f"{raw} must be positive", allowed="> 0")
        options[key] = value
    return options
