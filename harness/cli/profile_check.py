"""`ses-harness profile-check FILE --profile ses`: where a profile's texts and behaviour differ
from a real server's recorded conversation (`ses-harness proxy --record FILE`).

Exit status: 0 when the profile matches the recording, 1 when it differs (each difference
listed, stage by stage), 2 when the file is not a transcript."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.core.errors import PlanError
from harness.core.profiles import PROFILES
from harness.core.transcript import check_profile, parse_transcript

NAME = "profile-check"
HELP = "List where a profile's replies and limits differ from a recorded real server."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="a transcript from `proxy --record`")
    parser.add_argument(
        "--profile", choices=list(PROFILES), default="ses", help="the profile to check (ses)"
    )


def main(args: argparse.Namespace) -> int:
    try:
        text = Path(args.file).read_text(encoding="utf-8")
    except OSError as error:
        print(f"ses-harness: {args.file}: cannot read: {error.strerror}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as error:
        print(f"ses-harness: {args.file}: not UTF-8 text: {error.reason}", file=sys.stderr)
        return 2
    try:
        transcript = parse_transcript(text, source=args.file)
    except PlanError as error:
        print(f"ses-harness: {error}", file=sys.stderr)
        return 2
    differences = check_profile(transcript, PROFILES[args.profile])
    sessions = len(transcript.sessions())
    print(
        f"{args.file}: upstream {transcript.upstream}, {sessions} sessions, "
        f"{len(transcript.exchanges)} exchanges; profile {args.profile}"
    )
    for difference in differences:
        print(difference)
    if not differences:
        print("no differences: the profile answers as the recorded server did.")
        return 0
    print(f"{len(differences)} differences.")
    return 1
