"""The versions of the client libraries and runtimes a conformance table was made with."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import shutil
import subprocess
from pathlib import Path


def library_versions(clients_dir: Path) -> dict[str, str | None]:
    """Each library and runtime the built-in clients use, and its version (None: not here)."""
    return {
        "Python": platform.python_version(),
        "aiosmtplib": version("aiosmtplib"),
        "Django": version("django"),
        "nodemailer": nodemailer_version(clients_dir),
        "django-ses": version("django-ses"),
        "@aws-sdk/client-sesv2": _node_package_version(
            clients_dir, "aws-sdk", "@aws-sdk/client-sesv2"
        ),
        "node": _node_version(),
    }


def version(distribution: str) -> str | None:
    """An installed Python distribution's version, or None."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def nodemailer_version(clients_dir: Path) -> str | None:
    """The nodemailer installed for `clients_dir`'s Node client (npm ci), or None."""
    package = clients_dir / "nodemailer" / "node_modules" / "nodemailer" / "package.json"
    try:
        return json.loads(package.read_text(encoding="utf-8"))["version"]
    except (OSError, ValueError, KeyError):
        return None


def _node_package_version(clients_dir: Path, folder: str, package: str) -> str | None:
    manifest = clients_dir / folder / "node_modules" / package / "package.json"
    try:
        return json.loads(manifest.read_text(encoding="utf-8"))["version"]
    except (OSError, ValueError, KeyError):
        return None


def _node_version() -> str | None:
    node = shutil.which("node")
    if node is None:
        return None
    done = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip().lstrip("v") or None
