"""`ses-harness profile-check FILE --profile ses`: where a profile's texts and behaviour differ
from a real server's recorded conversation (`ses-harness proxy --record FILE`).

`--profile` takes a built-in's name or a TOML profile file. `--write-profile NEW.toml` seeds a
profile from the recording instead (:mod:`harness.core.seeding`), writes it, and checks the
recording against what it wrote: each difference left is one the profile format cannot say,
listed with why.

Exit status: 0 when the profile matches the recording (with --write-profile: when every
difference left is explained), 1 when it differs (each difference listed, stage by stage), 2
when the file is not a transcript, the profile cannot be read or the new one cannot be written.
"""

from __future__ import annotations

import argparse
import datetime
import re
import sys
from pathlib import Path

from harness.base.profile_file import load_profile_file, looks_like_file
from harness.core.errors import PlanError
from harness.core.evidence import Profile
from harness.core.profiles import PROFILES
from harness.core.seeding import seed_profile
from harness.core.transcript import Transcript, check_profile, parse_transcript

NAME = "profile-check"
HELP = "List where a profile's replies and limits differ from a recorded real server."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="a transcript from `proxy --record`")
    parser.add_argument(
        "--profile",
        metavar="NAME|FILE",
        help=f"the profile to check: a built-in ({', '.join(PROFILES)}) or a TOML profile "
        "file (default: ses)",
    )
    parser.add_argument(
        "--write-profile",
        metavar="NEW.toml",
        help="seed a profile from the recording, write it here, and check the recording against it",
    )
    parser.add_argument("--name", help="the seeded profile's name (default: NEW's file name)")
    parser.add_argument(
        "--base",
        choices=list(PROFILES),
        help="the built-in that fills in what the recording does not show (default: plain)",
    )


class _Refused(Exception):
    """A one-line reason to exit 2."""


def main(args: argparse.Namespace) -> int:
    try:
        transcript = _transcript(args.file)
        if args.write_profile is None:
            if args.name is not None or args.base is not None:
                raise _Refused("--name and --base go with --write-profile NEW.toml")
            name, profile = _profile(args.profile or "ses")
            return _check(args.file, transcript, name, profile)
        if args.profile is not None:
            raise _Refused(
                "--write-profile checks the recording against the profile it writes; "
                "leave out --profile"
            )
        return _seed(args, transcript)
    except _Refused as refused:
        print(f"ses-harness: {refused}", file=sys.stderr)
        return 2


def _transcript(file: str) -> Transcript:
    try:
        text = Path(file).read_text(encoding="utf-8")
    except OSError as error:
        raise _Refused(f"{file}: cannot read: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise _Refused(f"{file}: not UTF-8 text: {error.reason}") from None
    try:
        return parse_transcript(text, source=file)
    except PlanError as error:
        raise _Refused(str(error)) from None


def _profile(name: str) -> tuple[str, Profile]:
    if name in PROFILES:
        return name, PROFILES[name]
    if not looks_like_file(name):
        raise _Refused(
            f"--profile {name!r}: not a built-in profile or a .toml file "
            f"(allowed: {', '.join(PROFILES)}, or a path to a TOML profile)"
        )
    try:
        return name, load_profile_file(name)
    except PlanError as error:
        raise _Refused(str(error)) from None


def _check(file: str, transcript: Transcript, name: str, profile: Profile) -> int:
    differences = check_profile(transcript, profile)
    sessions = len(transcript.sessions())
    print(
        f"{file}: upstream {transcript.upstream}, {sessions} sessions, "
        f"{len(transcript.exchanges)} exchanges; profile {name}"
    )
    for difference in differences:
        print(difference)
    if not differences:
        print("no differences: the profile answers as the recorded server did.")
        return 0
    print(f"{len(differences)} differences.")
    return 1


def _seed(args: argparse.Namespace, transcript: Transcript) -> int:
    path = Path(args.write_profile)
    if path.exists() and path.resolve() == Path(args.file).resolve():
        raise _Refused(f"{path}: is the recording itself; name a new file for the profile")
    name = args.name or _name_from(path)
    try:
        seeded = seed_profile(
            transcript, name=name, base=args.base or "plain", recorded=_file_time(args.file)
        )
    except PlanError as error:
        raise _Refused(str(error) if error.source else f"--name {name!r}: {error}") from None
    try:
        path.write_text(seeded.text, encoding="utf-8")
    except OSError as error:
        raise _Refused(f"{path}: cannot write: {error.strerror}") from None
    try:
        profile = load_profile_file(path)  # what was written, read back as any user's
    except PlanError as error:
        raise _Refused(f"the profile written does not load (a bug): {error}") from None
    sessions = len(transcript.sessions())
    print(
        f"wrote {path}: profile {profile.name!r} over {args.base or 'plain'}, from "
        f"{sessions} sessions and {len(transcript.exchanges)} exchanges of {transcript.upstream}"
    )
    for note in seeded.notes:
        print(f"  note: {note}")
    differences = check_profile(transcript, profile)
    unexplained = 0
    print(f"{args.file} against {path}:")
    for difference in differences:
        print(difference)
        why = seeded.explain(difference)
        unexplained += why is None
        print(f"{'':<19}why:      {why or 'not explained: the seeding did not expect this'}")
    if not differences:
        print("no differences: the profile answers as the recorded server did.")
    elif not unexplained:
        print(f"{len(differences)} differences, each one the profile format cannot say.")
    else:
        print(f"{len(differences)} differences, {unexplained} not explained.")
    return 1 if unexplained else 0


def _name_from(path: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem).strip("._-")[:64]
    return name or "seeded"


def _file_time(file: str) -> str:
    """The recording file's time, for a recording that does not say when it was made."""
    try:
        stamp = Path(file).stat().st_mtime
    except OSError:
        return ""
    when = datetime.datetime.fromtimestamp(stamp, datetime.UTC).isoformat(timespec="seconds")
    return when.replace("+00:00", "Z") + " (the file's time)"
