"""pytest plugin (entry point `pytest11: fake_ses`): fixtures, the marker, and scenario items.

Thin on purpose: options, the marker, fixtures and report hooks only. The harness is imported
inside fixtures and hooks, when a test asks for it, so having the package installed costs a
pytest run that does not use it nothing but reading this module.

- `fake_ses_server` (session scope): one server per session, per xdist worker (port 0).
- `fake_ses` (function scope): a view of that server, reset before each test, with the
  marker's plan applied for the test and the server's own plan restored after it. A marker
  that asks for a clock, TLS or credentials gets the test a server of its own instead.
- `fake_ses_django` (function scope): `fake_ses`, with Django's email settings pointed at it.
- `fake_ses_factory` (function scope): extra servers with other plans, stopped at teardown.
- Scenario cases are collected as items (see harness.plugin.scenario_items for which files):
  a project's `[tool.ses-harness]` suite, and scenario files: `pytest scenarios/ -n auto`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from harness.plugin.arrange import FakeSESView
    from harness.server.fake_ses import FakeSES

MARKER_HELP = (
    "fake_ses(profile='ses', seed=0, faults=[...], strict=True, clock=None, tls=None, "
    "auth=None, **limits): the plan of the fake SES server for this test. faults: Rule objects, "
    "Rule.from_spec strings ('stage=RCPT,first=2,action=reply,code=451,text=Later') or tables; "
    "other keywords are limits (session_limit=3, rate_per_s=None...). strict=False: arranged "
    "faults may stay unfired. clock='virtual' (or 'real', or a Clock), tls='starttls' or "
    "'implicit', auth=(user, password): the test gets a server of its own with these."
)
CLOCKS = ("real", "virtual")
#: How long teardown waits for clients to finish closing before the next test's reset.
CLOSE_WAIT_S = 1.0

_VIEWS = pytest.StashKey[list["FakeSESView"]]()
_CALL_FAILED = pytest.StashKey[bool]()


# --- options and marker ---------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fake_ses", "fake Amazon SES server (ses-fault-harness)")
    group.addoption(
        "--fake-ses-profile",
        help="profile of the shared fake SES server: ses, ses-sandbox, plain (default: ses)",
    )
    group.addoption(
        "--fake-ses-seed", type=int, help="seed of the fake SES server's decisions (default: 0)"
    )
    group.addoption(
        "--fake-ses-clock",
        choices=CLOCKS,
        help="real: limits and delays in wall time; virtual: sleeping through fake_ses.clock "
        "and server delays cost no wall time (default: real)",
    )
    parser.addini("fake_ses_profile", "default profile of the fake SES server", default="ses")
    parser.addini("fake_ses_seed", "default seed of the fake SES server", default="0")
    parser.addini(
        "fake_ses_scenarios",
        "globs of scenario files to collect as tests (default: *.toml in a folder named scenarios)",
        type="args",
        default=[],
    )
    parser.addini(
        "fake_ses_clock", "default clock of the fake SES server (real, virtual)", default="real"
    )


#: pytest-asyncio's notice to a project that has not chosen a loop scope for async fixtures.
#: This plugin has no async fixture; the notice is not about it, yet it was the first line of
#: every run that loaded it (and of each pytester run in this repository's suite).
ASYNCIO_SCOPE_NOTICE = 'The configuration option "asyncio_default_fixture_loop_scope" is unset'


@pytest.hookimpl(tryfirst=True)  # before pytest-asyncio's own pytest_configure warns
def pytest_configure(config: pytest.Config) -> None:
    # pytest runs every pytest_configure inside one warnings context for the run's config, so
    # this filter ends with the run (an in-process pytester run included).
    warnings.filterwarnings(
        "ignore", message=re.escape(ASYNCIO_SCOPE_NOTICE), category=pytest.PytestDeprecationWarning
    )
    config.addinivalue_line("markers", MARKER_HELP)
    clock = _setting(config, "clock")
    if clock not in CLOCKS:
        raise pytest.UsageError(
            f"fake_ses_clock: {clock!r} is not a clock (allowed: real, virtual)"
        )
    try:
        int(_setting(config, "seed"))
    except ValueError:
        raise pytest.UsageError(
            f"fake_ses_seed: {_setting(config, 'seed')!r} is not an integer"
        ) from None


def _setting(config: pytest.Config, name: str) -> str:
    value = config.getoption(f"fake_ses_{name}")
    return str(value) if value is not None else str(config.getini(f"fake_ses_{name}"))


def _new_clock(config: pytest.Config) -> Any:
    from harness.base.clock import RealClock, VirtualClock

    return VirtualClock() if _setting(config, "clock") == "virtual" else RealClock()


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def fake_ses_server(pytestconfig: pytest.Config) -> Iterator[FakeSES]:
    """One fake SES server for the whole session (per xdist worker), on 127.0.0.1 port 0.

    Override it in a conftest.py to change the shared server (TLS, auth, another plan).
    """
    from harness.core.errors import PlanError
    from harness.core.plan import Plan
    from harness.server.fake_ses import FakeSES

    try:
        plan = Plan(
            profile=_setting(pytestconfig, "profile"), seed=int(_setting(pytestconfig, "seed"))
        )
    except PlanError as error:
        message = str(error.within(source="fake_ses options"))
        raise pytest.fail.Exception(message, pytrace=False) from None
    with FakeSES(plan=plan, clock=_new_clock(pytestconfig)) as server:
        yield server


@pytest.fixture
def fake_ses(request: pytest.FixtureRequest, fake_ses_server: FakeSES) -> Iterator[FakeSESView]:
    """A clean view of the shared fake SES server for this test; see harness.server.view.

    A connection an earlier test left open (a client's pool) goes on working: its session is
    counted afresh from this test's start and marked `carried_over` (see docs/plugin.md, "Each test
    sees only its own traffic").
    """
    from harness.core.errors import PlanError
    from harness.plugin.arrange import MARKER, FakeSESView, plan_from_marker, server_options

    kwargs: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers(MARKER))):  # the closest wins
        kwargs.update(marker.kwargs)
    try:
        own = server_options(kwargs)
        if own:  # a clock, TLS or credentials of its own: a server of its own
            yield from _own_server(request, kwargs, own)
            return
        base = fake_ses_server.plan
        plan, strict = plan_from_marker(base, kwargs)
    except PlanError as error:
        raise pytest.fail.Exception(str(error), pytrace=False) from None
    view = FakeSESView(fake_ses_server, plan, strict=strict, first_arranged=len(base.faults))
    fake_ses_server.reset()
    request.node.stash.setdefault(_VIEWS, []).append(view)
    yield view
    try:
        _settle(fake_ses_server)
        _check(request.node, view)
    finally:
        if fake_ses_server.plan is not base:
            fake_ses_server.set_plan(base)


def _own_server(
    request: pytest.FixtureRequest, kwargs: dict[str, Any], own: dict[str, Any]
) -> Iterator[FakeSESView]:
    """`fake_ses` for a marker with server keywords: a server started for this test alone."""
    from harness.core.plan import Plan
    from harness.plugin.arrange import FakeSESView, plan_from_marker
    from harness.server.fake_ses import FakeSES

    config = request.config
    base = Plan(profile=_setting(config, "profile"), seed=int(_setting(config, "seed")))
    plan, strict = plan_from_marker(base, kwargs)
    auth = own.get("auth")
    server = FakeSES(
        plan=plan,
        clock=own.get("clock") or _new_clock(config),
        tls=own.get("tls"),
        auth=tuple(auth) if auth is not None else None,
    )
    server.start()
    try:
        view = FakeSESView(server, server.plan, strict=strict)
        request.node.stash.setdefault(_VIEWS, []).append(view)
        yield view
        _settle(server)
        _check(request.node, view)
    finally:
        server.stop()


@pytest.fixture
def fake_ses_django(fake_ses: FakeSESView) -> Iterator[FakeSESView]:
    """`fake_ses`, with Django's email settings pointed at it for this test.

    Django's real SMTP backend, host, port, TLS and credentials (pytest-django's locmem
    backend is overridden); needs Django settings configured, by pytest-django or by hand.
    See harness.plugin.django_email.
    """
    from harness.plugin.django_email import django_email

    with django_email(fake_ses):
        yield fake_ses


@pytest.fixture
def fake_ses_factory(
    request: pytest.FixtureRequest, pytestconfig: pytest.Config
) -> Iterator[Callable[..., FakeSESView]]:
    """Start extra fake SES servers: `fake_ses_factory(profile=..., seed=..., faults=[...],
    strict=True, clock=..., tls=..., auth=(user, password), **limits)` returns a view like
    `fake_ses`. Every server is checked and stopped at teardown."""
    from harness.core.errors import PlanError
    from harness.core.plan import Plan
    from harness.plugin.arrange import FakeSESView, plan_from_marker
    from harness.server.fake_ses import FakeSES

    views: list[FakeSESView] = []

    def start(
        clock: Any = None,
        tls: str | None = None,
        auth: tuple[str, str] | None = None,
        **kwargs: Any,
    ) -> FakeSESView:
        base = Plan(
            profile=_setting(pytestconfig, "profile"), seed=int(_setting(pytestconfig, "seed"))
        )
        try:
            plan, strict = plan_from_marker(base, kwargs)
        except PlanError as error:
            raise error.within(source="fake_ses_factory") from None
        server = FakeSES(plan=plan, clock=clock or _new_clock(pytestconfig), tls=tls, auth=auth)
        server.start()
        view = FakeSESView(server, plan, strict=strict)
        views.append(view)
        request.node.stash.setdefault(_VIEWS, []).append(view)
        return view

    yield start
    try:
        for view in views:
            _settle(view.server)
        for view in views:
            _check(request.node, view)
    finally:
        for view in views:
            view.server.stop()


def _settle(server: FakeSES) -> None:
    """Let clients that already hung up finish closing, so the records (and the next test's
    session numbers) are complete. A connection left open and quiet (a pool) costs no wait: it
    carries into the next test. Only a client still talking after the test is warned about."""
    busy = server.settle(CLOSE_WAIT_S)
    if busy:
        import warnings

        warnings.warn(
            f"fake_ses: sessions {busy} were still sending {CLOSE_WAIT_S}s after the test "
            "ended; wait for the client before the test ends (what it does next is counted "
            "in the next test)",
            pytest.PytestWarning,
            stacklevel=1,
        )


def _check(item: pytest.Item, view: FakeSESView) -> None:
    """Fail a passed test whose arranged faults never fired. A test that failed already has the
    same text added to its failure report, so its own error stays first and alone."""
    if item.stash.get(_CALL_FAILED, True):
        return
    report = view.strict_report()
    if report:
        pytest.fail(report, pytrace=False)


# --- reporting ------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    views = item.stash.get(_VIEWS, None)
    if views and report.when == "call":
        # A skipped (or xfailed) test is not held to strictness either.
        item.stash[_CALL_FAILED] = not report.passed
        if report.failed:
            for view in views:
                text = view.strict_report() or view.summary()
                _add_section(report, text)
    return report


def _add_section(report: pytest.TestReport, text: str) -> None:
    longrepr = report.longrepr
    if hasattr(longrepr, "addsection"):  # shown right after the traceback, whatever -s says
        longrepr.addsection("fake_ses", text)
    else:
        report.sections.append(("fake_ses", text))


# --- scenario cases as test items (harness.plugin.scenario_items) ---------------------------


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix != ".toml":  # the common case, without importing anything
        return None
    from harness.plugin.scenario_items import collect_file

    return collect_file(file_path, parent)


def pytest_sessionstart(session: pytest.Session) -> None:
    from harness.plugin.scenario_items import add_suite_to_testpaths

    add_suite_to_testpaths(session)
