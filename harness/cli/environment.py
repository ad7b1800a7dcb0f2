"""Options from environment variables, for a command that runs where its command line is fixed
(a container's entrypoint, a CI service): `--foo-bar` is also `SES_HARNESS_FOO_BAR`.

- The command line wins over a variable for an option that takes one value.
- A flag (`--tls`) is on with `1`, `true`, `yes` or `on`, off with `0`, `false`, `no`, `off` or
  nothing.
- A repeatable option (`--fault`, `--limit`) takes one value per line of its variable, and one
  from each `SES_HARNESS_FAULT_<ANYTHING>` (in the order of those names); values given on the
  command line are added after them.

A value is checked as the option checks it; a bad one is a one-line error naming the variable.

>>> parser = argparse.ArgumentParser()
>>> _ = parser.add_argument("--port", type=int, default=2525)
>>> _ = parser.add_argument("--fault", action="append", default=[])
>>> defaults(parser, {"SES_HARNESS_PORT": "1025", "SES_HARNESS_FAULT_1": "stage=RCPT,nth=2"})
{'port': 1025, 'fault': ['stage=RCPT,nth=2']}
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

PREFIX = "SES_HARNESS_"
ON = frozenset({"1", "true", "yes", "on"})
OFF = frozenset({"", "0", "false", "no", "off"})


class BadVariable(ValueError):
    """A variable whose value the option does not take; the message names it."""


def variable(action: argparse.Action) -> str | None:
    """`SES_HARNESS_FOO_BAR` for `--foo-bar`; None for positionals and --help."""
    long = [o for o in action.option_strings if o.startswith("--")]
    if not long or isinstance(action, argparse._HelpAction):
        return None
    return PREFIX + long[0][2:].upper().replace("-", "_")


def defaults(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> dict[str, Any]:
    """The parser's defaults that `environ` sets, converted and checked as the options would."""
    found: dict[str, Any] = {}
    for action in parser._actions:
        name = variable(action)
        if name is None:
            continue
        if isinstance(action, argparse._AppendAction):
            raw = [line for line in environ.get(name, "").splitlines() if line.strip()]
            raw += [environ[key] for key in sorted(environ) if key.startswith(name + "_")]
            if raw:
                found[action.dest] = [_convert(action, name, value.strip()) for value in raw]
        elif name in environ:
            value = environ[name]
            if isinstance(action, argparse._StoreTrueAction):
                if value.strip().lower() not in ON | OFF:
                    raise BadVariable(
                        f"{name}={value!r}: expected one of 1, true, yes, on, 0, false, no, off"
                    )
                found[action.dest] = value.strip().lower() in ON
            else:
                found[action.dest] = _convert(action, name, value)
    for group in parser._mutually_exclusive_groups:
        both = [variable(a) for a in group._group_actions if found.get(a.dest)]
        if len(both) > 1:
            raise BadVariable(f"{' and '.join(map(str, both))} cannot both be set")
    return found


def _convert(action: argparse.Action, name: str, value: str) -> Any:
    try:
        converted = action.type(value) if callable(action.type) else value
    except (argparse.ArgumentTypeError, TypeError, ValueError) as error:
        raise BadVariable(f"{name}={value!r}: {error}") from None
    if action.choices is not None and converted not in action.choices:
        allowed = ", ".join(map(str, action.choices))
        raise BadVariable(f"{name}={value!r}: expected one of {allowed}")
    return converted
