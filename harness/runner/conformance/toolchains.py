"""The conformance clients in other languages: whether each can run here, how it is built, and
the command that runs it.

PHP, Ruby and Perl clients are scripts run by their interpreter, as the Python and Node ones
are. The Go and Java clients are compiled once (``go build``; ``javac`` against Debian's
Jakarta Mail) into a cache folder named for a hash of their sources and of the compiler, so a
run builds each at most once and later runs reuse it: ``$XDG_CACHE_HOME/ses-fault-harness/
clients`` (``~/.cache/...``), or ``SES_HARNESS_BUILD_DIR``. Builds are written to a temporary
folder and renamed into place, so worker processes that build at once do not see half a build.

Each one's Debian packages (what ``.ci/run`` installs) are in :data:`INSTALL`.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness.core.errors import PlanError

#: Where Debian's packages put what the clients load.
PHPMAILER_AUTOLOAD = Path("/usr/share/php/libphp-phpmailer/autoload.php")
JAKARTA_JARS = (
    Path("/usr/share/java/jakarta-mail.jar"),
    Path("/usr/share/java/jakarta-activation.jar"),
)
BUILD_DIR_ENV = "SES_HARNESS_BUILD_DIR"
#: What a machine without it needs, for each kind of client (Debian/Ubuntu package names).
INSTALL = {
    "php": "apt-get install php-cli libphp-phpmailer",
    "ruby": "apt-get install ruby ruby-mail",
    "perl": "apt-get install libemail-sender-perl",
    "go": "apt-get install golang-go",
    "java": "apt-get install default-jdk-headless libjakarta-mail-java",
}
#: The source folder, under clients/, of each compiled client.
SOURCES = {"go": "go-smtp", "java": "jakarta-mail"}
_PROBE_TIMEOUT_S = 60.0
_BUILD_TIMEOUT_S = 600.0


@functools.cache
def missing(needs: str, clients_dir: Path) -> str | None:
    """Why a client of kind `needs` cannot run here (None: it can); asked once a process."""
    if needs == "php":
        if shutil.which("php") is None:
            return "php"
        if not (PHPMAILER_AUTOLOAD.is_file() or (clients_dir / "phpmailer/vendor").is_dir()):
            return "PHPMailer"
    elif needs == "ruby":
        if shutil.which("ruby") is None:
            return "ruby"
        if not _runs(["ruby", "-e", 'require "mail"; require "net/smtp"']):
            return "the mail gem"
    elif needs == "perl":
        if shutil.which("perl") is None:
            return "perl"
        if not _runs(["perl", "-MEmail::Sender::Transport::SMTP::Persistent", "-e", "1"]):
            return "Email::Sender"
    elif needs == "go":
        if shutil.which("go") is None:
            return "go"
    elif needs == "java":
        for program in ("java", "javac"):
            if shutil.which(program) is None:
                return program
        if not all(jar.is_file() for jar in JAKARTA_JARS):
            return "Jakarta Mail (" + ", ".join(str(jar) for jar in JAKARTA_JARS) + ")"
    return None


def check(name: str, needs: str, clients_dir: Path) -> None:
    """A PlanError naming what `name` lacks and how to install it, if it cannot run here."""
    lacking = missing(needs, clients_dir)
    if lacking is not None:
        raise PlanError("client", f"{name} needs {lacking}", allowed=INSTALL[needs])


def command(needs: str, clients_dir: Path, script: str, args: list[str]) -> list[str]:
    """The argv that runs a client: its interpreter and script, or its build (made if need be)."""
    if needs == "go":
        return [str(build(needs, clients_dir) / "send"), *args]
    if needs == "java":
        classes = build(needs, clients_dir)
        classpath = os.pathsep.join([str(classes), *map(str, JAKARTA_JARS)])
        return ["java", "-cp", classpath, "Send", *args]
    return [needs, str(clients_dir / script), *args]


def build(needs: str, clients_dir: Path) -> Path:
    """The folder of a compiled client's build, made now unless a build of the same sources by
    the same compiler is already there."""
    source = clients_dir / SOURCES[needs]
    files = sorted(source.glob("*.go" if needs == "go" else "*.java"))
    compiler = shutil.which("go" if needs == "go" else "javac")
    if not files or compiler is None:
        raise PlanError("client", f"cannot build {source}", allowed=INSTALL[needs])
    digest = hashlib.sha256(os.path.realpath(compiler).encode())
    digest.update(str(os.stat(os.path.realpath(compiler)).st_mtime_ns).encode())
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    target = _cache_root() / f"{SOURCES[needs]}-{digest.hexdigest()[:16]}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    if needs == "go":
        argv = ["go", "build", "-o", str(work / "send"), *map(str, files)]
        env = {**os.environ, "GOTOOLCHAIN": "local", "GOPROXY": "off", "CGO_ENABLED": "0"}
    else:
        classpath = os.pathsep.join(map(str, JAKARTA_JARS))
        argv = ["javac", "-d", str(work), "-cp", classpath, *map(str, files)]
        env = dict(os.environ)
    done = subprocess.run(
        argv, capture_output=True, text=True, env=env, timeout=_BUILD_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise PlanError("client", f"{' '.join(argv[:2])} of {source} failed: {last}")
    try:
        work.rename(target)
    except OSError:  # another worker's build of the same sources got there first
        shutil.rmtree(work, ignore_errors=True)
    return target


def _cache_root() -> Path:
    if os.environ.get(BUILD_DIR_ENV):
        return Path(os.environ[BUILD_DIR_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ses-fault-harness" / "clients"


def _runs(argv: list[str]) -> bool:
    try:
        done = subprocess.run(argv, capture_output=True, timeout=_PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0
