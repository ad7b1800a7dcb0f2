"""Argument types the subcommands share: a bad value is argparse's one-line error."""

from __future__ import annotations

import argparse


def workers(text: str) -> int:
    """How many worker processes: a whole number, 1 at least."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)
