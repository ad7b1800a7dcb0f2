"""The versions of the client libraries and runtimes a conformance table was made with."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

from harness.runner.conformance import toolchains


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
        **other_languages(clients_dir),
    }


def other_languages(clients_dir: Path) -> dict[str, str | None]:
    """The PHP, Ruby, Go, Java and Perl clients' libraries and runtimes, where they can run."""
    found: dict[str, str | None] = {}
    if toolchains.missing("php", clients_dir) is None:
        found["PHP"] = _output(["php", "-r", "echo PHP_VERSION;"])
        source = toolchains.PHPMAILER_AUTOLOAD.parent / "src" / "PHPMailer.php"
        match = re.search(r"const VERSION = '([^']+)'", _read(source))
        found["PHPMailer"] = match.group(1) if match else None
    if toolchains.missing("ruby", clients_dir) is None:
        both = _output(["ruby", "-rmail", "-e", "print RUBY_VERSION, ' ', Mail::VERSION::STRING"])
        found["Ruby"], found["mail"] = _pair(both)
    if toolchains.missing("go", clients_dir) is None:
        go = _output(["go", "env", "GOVERSION"])
        found["Go"] = go.removeprefix("go") if go else None
    if toolchains.missing("java", clients_dir) is None:
        java = re.search(r'version "([^"]+)"', _output(["java", "-version"], stderr=True) or "")
        found["Java"] = java.group(1) if java else None
        found["Jakarta Mail"] = _jar_version(toolchains.JAKARTA_JARS[0])
    if toolchains.missing("perl", clients_dir) is None:
        both = _output(
            ["perl", "-MEmail::Sender", "-e", 'printf "%vd %s", $^V, $Email::Sender::VERSION']
        )
        found["Perl"], found["Email::Sender"] = _pair(both)
    return found


def _pair(text: str | None) -> tuple[str | None, str | None]:
    """The two words a runtime printed: its version and its library's."""
    words = (text or "").split()
    return (words[0], words[1]) if len(words) == 2 else (None, None)


def _output(argv: list[str], *, stderr: bool = False) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (done.stderr if stderr else done.stdout).strip()
    return text if done.returncode == 0 and text else None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _jar_version(jar: Path) -> str | None:
    try:
        with zipfile.ZipFile(jar) as archive:
            manifest = archive.read("META-INF/MANIFEST.MF").decode("utf-8", "replace")
    except (OSError, KeyError, zipfile.BadZipFile):
        return None
    match = re.search(r"^Implementation-Version: *(\S+)", manifest, re.MULTILINE)
    return match.group(1) if match else None


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
