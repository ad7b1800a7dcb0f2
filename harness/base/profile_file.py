"""A user's own provider profile from a TOML file (the table form: harness.core.profile_table).

>>> load_profile_file("no/such/file.toml")                     # doctest: +ELLIPSIS
Traceback (most recent call last):
...
harness.core.errors.PlanError: no/such/file.toml: cannot read: No such file or directory
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from harness.core import profile_table
from harness.core.errors import PlanError
from harness.core.evidence import Profile
from harness.core.profiles import PROFILES


def looks_like_file(name: str) -> bool:
    """Whether a profile named `name` means a file (a .toml name, or a path) over a built-in."""
    return name not in PROFILES and (name.endswith(".toml") or "/" in name or "\\" in name)


def load_profile_file(path: str | Path) -> Profile:
    """The profile in the TOML file `path`; every error is one line naming the file and key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise PlanError("", f"not valid TOML: {error}", source=str(path)) from None
    except OSError as error:
        raise PlanError("", f"cannot read: {error.strerror}", source=str(path)) from None
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise PlanError("", f"not a profile file: {error}", source=str(path)) from None
    try:
        return profile_table.from_table(data, PROFILES)
    except PlanError as error:
        raise error.within(source=str(path)) from None


#: What `FakeSES(profile=...)` takes: a built-in's name, a profile file's path, or a Profile.
ProfileSpec = str | Path | Profile


def resolve_profile(spec: ProfileSpec) -> str | Profile:
    """A built-in's name as it is, a profile file's path as the profile it holds."""
    if isinstance(spec, Path) or (isinstance(spec, str) and looks_like_file(spec)):
        return load_profile_file(spec)
    return spec
