"""No process a client started outlives its case (SPEC section 9): at the client's own timeout,
when it exits leaving processes behind, at the case's timeout in a worker, when its worker (and
even its keeper) is killed outright, and when the run is interrupted, from `ses-harness run` or
from pytest-xdist.

The client is a script that leaves behind the processes that are hardest to find: a child that
ignores SIGTERM, a grandchild in a session of its own, and a daemon (forked twice, its parent
gone, so it is nobody's child any more). It writes their pids and its own to a file once they
all run. Every process of a test is killed at its teardown, whatever the test did.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.runner import keeper
from harness.runner.matrix import run_case, run_matrix
from harness.runner.scenario import load_scenario

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

REPO = Path(__file__).resolve().parent.parent
# Bounds that only a broken harness reaches; a working one is far inside them.
WAIT_S = 120.0

CLIENT = """
import os, signal, sys

pids_path, mode = sys.argv[1], sys.argv[2]


def forever():
    while True:
        signal.pause()


ready_r, ready_w = os.pipe()
if os.fork() == 0:  # a child that ignores SIGTERM (and so do the processes it starts)
    os.close(ready_r)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if os.fork() == 0:  # a grandchild in a session of its own
        os.setsid()
        os.write(ready_w, b"%d\\n" % os.getpid())
        forever()
    if os.fork() == 0:  # a daemon: forks again and exits, so its child is an orphan
        os.setsid()
        if os.fork() == 0:
            os.write(ready_w, b"%d\\n" % os.getpid())
            forever()
        os._exit(0)
    os.write(ready_w, b"%d\\n" % os.getpid())
    forever()
os.close(ready_w)
with os.fdopen(ready_r, "rb") as ready:
    pids = [os.getpid()] + [int(ready.readline()) for _ in range(3)]
with open(pids_path + ".part", "w") as out:
    out.write(" ".join(map(str, pids)))
os.rename(pids_path + ".part", pids_path)  # all four at once, or none
if mode == "hang":
    forever()
"""

SCENARIO = """
name = "three"
timeout_s = 600

[workload]
count = 3
seed = 1

[plan]
profile = "plain"
"""


class Client:
    """The script in a test's tmp_path, and what it says about the processes it started."""

    def __init__(self, folder: Path) -> None:
        self.script = folder / "client.py"
        self.script.write_text(textwrap.dedent(CLIENT), encoding="utf-8")
        self.pids_path = folder / "pids"

    def spec(self, mode: str, timeout_s: float = 300) -> str:
        command = shlex.join([sys.executable, str(self.script), str(self.pids_path), mode])
        return f"cmd[timeout_s={timeout_s:g},time_scale=1]:{command}"

    def pids(self, wait_s: float = 0.0) -> list[int]:
        """The client's pid and its three descendants' (waiting up to `wait_s` for them)."""
        deadline = time.monotonic() + wait_s
        while not self.pids_path.exists():
            assert time.monotonic() < deadline, f"the client wrote no pids in {wait_s} s"
            time.sleep(0.05)  # a condition wait, bounded: the file appears when all four run
        return [int(pid) for pid in self.pids_path.read_text().split()]

    def running(self) -> list[int]:
        """Every process running this test's script (its cmdline names the script)."""
        mark = str(self.script).encode()
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                with contextlib.suppress(OSError):
                    argv = (entry / "cmdline").read_bytes().split(b"\0")
                    if mark in argv[:2] and not _zombie(entry):
                        found.append(int(entry.name))
        return found


def _zombie(entry: Path) -> bool:
    stat = (entry / "stat").read_bytes()
    return stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] in (b"Z", b"X")


def alive(pid: int, client: Client) -> bool:
    """True while `pid` runs the client's script (a zombie, or a reused pid, is not it)."""
    return pid in client.running()


def all_gone(pids: list[int], client: Client, wait_s: float = 0.0) -> bool:
    """True when none of `pids` runs, waiting up to `wait_s` for that."""
    deadline = time.monotonic() + wait_s
    while any(alive(pid, client) for pid in pids):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)  # a condition wait, bounded
    return True


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    made = Client(tmp_path)
    yield made
    for pid in made.running():  # whatever the test did: nothing of it runs on
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def scenario_path(tmp_path: Path) -> Path:
    path = tmp_path / "three.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    return path


@contextlib.contextmanager
def started(argv: list[str], cwd: Path) -> Iterator[subprocess.Popen[str]]:
    """`argv` in a process group of its own (as a shell runs a foreground job), killed with its
    group at the end whatever happened."""
    process = subprocess.Popen(
        argv,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_bytes()
    return int(stat[stat.rindex(b")") + 2 :].split()[1])


# --- a case in this process ------------------------------------------------------------------


@pytest.mark.slow  # the timeout, then the grace its SIGTERM-deaf child takes
def test_a_client_that_times_out_leaves_none_of_its_processes(scenario_path, client):
    case = run_case(load_scenario(scenario_path), client.spec("hang", timeout_s=3))

    assert "still running after 3 s; killed" in case["error"]
    pids = client.pids()
    assert len(set(pids)) == 4
    assert [pid for pid in pids if alive(pid, client)] == []  # when the case ends, not later
    assert client.running() == []


def test_a_client_that_exits_leaves_none_of_its_processes(scenario_path, client):
    case = run_case(load_scenario(scenario_path), client.spec("exit"))

    assert case["error"] is None
    assert case["command"]["exit_code"] == 0
    pids = client.pids()
    assert len(set(pids)) == 4
    assert [pid for pid in pids if alive(pid, client)] == []
    assert client.running() == []


# --- cases in workers ----------------------------------------------------------------------


@pytest.mark.slow
def test_a_case_timeout_ends_what_the_client_in_the_worker_started(scenario_path, client):
    scenario = load_scenario(scenario_path)
    results = run_matrix([scenario], [client.spec("hang")], workers=1, case_timeout_s=5)

    (case,) = results["cases"]
    assert case["error"] == "strategy timed out after 5 s"
    pids = client.pids()
    assert len(set(pids)) == 4
    assert [pid for pid in pids if alive(pid, client)] == []  # when the matrix returns
    assert client.running() == []


@pytest.mark.slow
@pytest.mark.parametrize("killed", ["worker", "worker and keeper"])
def test_a_client_whose_worker_is_killed_outright_is_ended_with_its_processes(
    scenario_path, client, tmp_path, killed
):
    argv = [sys.executable, "-m", "harness", "run", str(scenario_path)]
    argv += ["--strategy", client.spec("hang"), "--report-dir", str(tmp_path / "out")]
    with started(argv, REPO) as run:
        pids = client.pids(wait_s=WAIT_S)
        keeper = parent_of(pids[0])  # what started the client
        worker = parent_of(keeper)
        for pid in (keeper, worker) if killed == "worker and keeper" else (worker,):
            os.kill(pid, signal.SIGKILL)  # no chance to clean up: as the OOM killer does
        stdout, stderr = run.communicate(timeout=WAIT_S)
    assert run.returncode == 1, stderr
    assert "strategy process died (exit -9)" in stdout
    assert [pid for pid in pids if alive(pid, client)] == []  # when the run ends
    assert client.running() == []


# --- interrupted runs ----------------------------------------------------------------------


def interrupt(run: subprocess.Popen[str], how: str) -> None:
    if how == "Ctrl-C":
        os.killpg(run.pid, signal.SIGINT)  # the terminal signals the foreground group
    else:
        os.kill(run.pid, signal.SIGTERM)  # `kill PID`, `timeout`, a service manager


@pytest.mark.slow
@pytest.mark.parametrize("how", ["Ctrl-C", "SIGTERM"])
def test_an_interrupted_run_leaves_none_of_the_clients_processes(
    scenario_path, client, tmp_path, how
):
    argv = [sys.executable, "-m", "harness", "run", str(scenario_path)]
    argv += ["--strategy", client.spec("hang"), "--report-dir", str(tmp_path / "out")]
    with started(argv, REPO) as run:
        pids = client.pids(wait_s=WAIT_S)
        interrupt(run, how)
        _, stderr = run.communicate(timeout=WAIT_S)
    assert run.returncode == 130, stderr
    assert "interrupted:" in stderr and "Traceback" not in stderr
    assert [pid for pid in pids if alive(pid, client)] == []  # when the run ends
    assert client.running() == []


@pytest.mark.slow
@pytest.mark.parametrize("how", ["Ctrl-C", "SIGTERM"])
def test_an_interrupted_xdist_run_of_scenario_items_leaves_none_of_the_clients_processes(
    client, tmp_path, how
):
    project = tmp_path / "project"
    (project / "scenarios").mkdir(parents=True)
    (project / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    spec = client.spec("hang")
    (project / "scenarios" / "three.toml").write_text(
        f"{SCENARIO}\n[expect.{_toml_key(spec)}]\ndelivered_once = 3\n", encoding="utf-8"
    )
    argv = [sys.executable, "-m", "pytest", "-n", "1", "-p", "no:cacheprovider", "scenarios"]
    with started(argv, project) as run:
        pids = client.pids(wait_s=WAIT_S)
        interrupt(run, how)
        run.communicate(timeout=WAIT_S)
        # SIGTERM ends pytest at once; its xdist worker goes when it notices, by itself.
        assert all_gone(pids, client, wait_s=WAIT_S)
    assert client.running() == []


def _toml_key(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- the keeper's parts ----------------------------------------------------------------------


def test_a_process_is_found_under_its_parent_whatever_it_calls_itself():
    # A process names itself (its "comm" in /proc/PID/stat), with spaces and parentheses if it
    # likes; the state and parent are counted from the last parenthesis.
    rename = "open('/proc/self/comm', 'w').write('a) 1 2 (b'); print(flush=True); input()"
    member = subprocess.Popen(
        [sys.executable, "-c", rename], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        member.stdout.readline()
        assert Path(f"/proc/{member.pid}/comm").read_text() == "a) 1 2 (b\n"
        assert keeper.running(keeper.descendants(os.getpid())[member.pid])
        member.stdin.write(b"\n")
        member.stdin.close()
        os.waitid(os.P_PID, member.pid, os.WEXITED | os.WNOWAIT)  # exited: a zombie, unreaped
        assert not keeper.running(keeper.descendants(os.getpid())[member.pid])
    finally:
        member.kill()
        member.wait()
        member.stdout.close()


def test_processes_are_found_and_ended_by_the_mark_in_their_environment(tmp_path):
    mark = f"test-{os.getpid()}-{tmp_path.name}"
    stubborn = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(flush=True)"
    stubborn += "; input()"
    env = {**os.environ, "TEST_MARK": mark}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", stubborn],
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        for environment in (env, os.environ)
    ]
    marked, unmarked = processes
    try:
        for process in processes:
            process.stdout.readline()
        assert keeper.marked("TEST_MARK", mark) == [marked.pid]
        assert keeper.end_marked("TEST_MARK", mark, wait_s=0.1) == 0
        assert marked.wait(WAIT_S) == -signal.SIGKILL  # it ignored SIGTERM
        assert unmarked.poll() is None
    finally:
        for process in processes:
            process.kill()
            process.wait()
            process.stdin.close()
            process.stdout.close()


def test_a_client_starts_with_default_signal_handling_and_no_input(scenario_path, tmp_path):
    # The keeper catches SIGINT and SIGTERM itself; the client must not inherit that (nor an
    # ignored signal), or Ctrl-C handling in a client would differ under the harness.
    seen = tmp_path / "seen"
    source = f"""
        import signal, sys
        open({str(seen)!r}, "w").write(
            f"{{signal.getsignal(signal.SIGINT) is signal.default_int_handler}} "
            f"{{signal.getsignal(signal.SIGTERM) is signal.SIG_DFL}} {{sys.stdin.read()!r}}"
        )
    """
    script = tmp_path / "signals.py"
    script.write_text(textwrap.dedent(source), encoding="utf-8")
    case = run_case(load_scenario(scenario_path), f"cmd[time_scale=1]:python {script}")

    assert case["error"] is None
    assert seen.read_text() == "True True ''"
