"""The TOML text of a seeded profile (:mod:`harness.core.seeding`), with comments saying why.

tomli-w writes no comments and puts a reply line's table out of line, so the few shapes a
profile table has are written here: strings, numbers, booleans, lists of strings, and one-line
tables of those (a reply line, a limit's evidence). ``tomllib`` reads the text back:

>>> import tomllib
>>> text = render({"name": "mx", "limits": {"session_limit": 3}}, ["Seeded."], {}, [], [], [])
>>> tomllib.loads(text)
{'name': 'mx', 'limits': {'session_limit': 3}}
>>> value('say "hi"\\x7f')
'"say \\\\"hi\\\\"\\\\u007f"'
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

WIDTH = 96
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")


def render(
    table: Mapping[str, Any],
    head: Sequence[str],
    comments: Mapping[str, str],
    from_base: Sequence[str],
    gaps: Sequence[str],
    notes: Sequence[str],
) -> str:
    """The file: `head` as comments, the top keys, then [limits], [replies], [evidence] with
    each key's comment (by "section.key") above it, then what the base fills in, the
    differences a check will list and why (`gaps`), and what the fake does otherwise."""
    out = [line for text in head for line in _comment(text)]
    for key in ("name", "description", "base", "unknown"):
        if key in table:
            out.append(f"{key} = {value(table[key])}")
    for section in ("limits", "replies", "evidence"):
        if not table.get(section):
            continue
        out += ["", f"[{section}]"]
        for key, item in table[section].items():
            note = comments.get(f"{section}.{key}")
            if note:
                out += _comment(f"{key}: {note}")
            out.append(f"{key} = {value(item)}")
    for title, items in (
        ("From the base profile (the recording does not show them):", from_base),
        ("profile-check FILE --profile THIS-FILE will list these differences, because:", gaps),
        ("Where the fake answers otherwise, and what is guessed:", notes),
    ):
        if items:
            out += ["", *_comment(title)]
            for item in dict.fromkeys(items):
                out += _comment(f"- {item}", indent="    ")
    return "\n".join(out) + "\n"


def value(item: Any) -> str:
    """`item` as a TOML value."""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int):
        return str(item)
    if isinstance(item, float):
        if not math.isfinite(item):
            raise ValueError(f"{item} has no TOML form here")
        return repr(item)
    if isinstance(item, str):
        # JSON's escapes are TOML's, but for DEL, which TOML wants escaped too.
        return json.dumps(item, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(item, Mapping):
        return "{ " + ", ".join(f"{k} = {value(v)}" for k, v in item.items()) + " }"
    if isinstance(item, Sequence):
        one = "[" + ", ".join(value(v) for v in item) + "]"
        return one if len(one) < WIDTH else "[\n" + "".join(f"  {value(v)},\n" for v in item) + "]"
    raise TypeError(f"{item!r} has no TOML form here")


def _comment(text: str, indent: str = "") -> list[str]:
    text = _UNPRINTABLE.sub("?", text)
    lines = textwrap.wrap(text, WIDTH - 2, subsequent_indent=indent, break_on_hyphens=False)
    return [f"# {line}" for line in lines or [""]]
