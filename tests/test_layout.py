"""The package tree is the architecture: each subpackage is a layer, and imports point down.

Every `harness` module's imports are read from its source (top-level, in functions, and under
TYPE_CHECKING alike), and these are refused:

- an import from a lower layer into a higher one, or of the public facade from inside;
- an import circle between modules, or between packages (two packages importing each other);
- between two packages on the same layer, any import (SIBLING_IMPORTS would allow one way);
- I/O in `harness.core` (sockets, event loops, processes, threads, the SMTP and HTTP libraries):
  the core decides, the server carries the decision out;
- the aiosmtpd adapter (`harness.server`) under the strategy interface or a built-in strategy,
  even through other modules.

Each checker is a function of source text or of a graph, so the last tests below feed it a
violation and see it caught.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

import harness

ROOT = Path(harness.__file__).parent

# Lowest first. A module may import its own layer and any layer below it.
LAYERS = {
    "harness.core": 0,
    "harness.base": 1,
    "harness.server": 2,
    "harness.runner": 3,
    "harness.reports": 4,
    "harness.hunting": 4,
    "harness.plugin": 5,
    "harness.console": 5,
    "harness.cli": 6,
}
# The public facade and its aliases stand above everything; nothing inside may import them.
FACADE = {"harness", "harness.strategy", "harness.client", "harness.__main__"}
# Imports allowed between packages of one layer, as (importer, imported). None so far: reports
# (results.json's readers) and hunting (a search that produces cases) are two uses of the
# runner, plugin (pytest, in process) and console (the standalone server) two front ends over
# the server; neither of a pair imports the other. A pair added here allows that one direction,
# never both.
SIBLING_IMPORTS: set[tuple[str, str]] = set()
# What `harness.core` may not import (a module or anything under it): the core is sans-I/O.
IO_MODULES = (
    "socket",
    "ssl",
    "select",
    "selectors",
    "asyncio",
    "subprocess",
    "threading",
    "multiprocessing",
    "concurrent",
    "smtplib",
    "http",
    "urllib.request",
    "aiosmtpd",
    "aiohttp",
)
NO_IO = "harness.core"
ADAPTER = "harness.server"
# The public strategy interface, the built-in strategies and the command strategy's package: a
# strategy, in this process or in another, meets the server only at its endpoint.
STRATEGY_SIDE = ("harness.runner.strategy", "harness.runner.strategies", "harness.runner.command")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def imported_names(source: str, name: str, *, is_package: bool = False) -> set[str]:
    """Every module name `source` (the module `name`) imports, harness or not; relative imports
    made absolute, and ``from pkg import sub`` counted as ``pkg`` and ``pkg.sub``."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def all_imports_of(name: str) -> set[str]:
    path = MODULES[name]
    return imported_names(path.read_text(), name, is_package=path.name == "__init__.py")


def imports_of(name: str) -> set[str]:
    """The harness modules that `name` imports."""
    return {m for m in all_imports_of(name) if m in MODULES and m != name}


def layer_of(name: str) -> int | None:
    package = package_of(name)
    return None if package is None else LAYERS[package]


def package_of(name: str) -> str | None:
    """The layer's package that `name` belongs to (`harness.runner` for its subpackages too)."""
    for package in LAYERS:
        if name == package or name.startswith(package + "."):
            return package
    return None


def under(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


GRAPH = {name: imports_of(name) for name in MODULES}


# --- the checkers: functions of source text or of a graph ---------------------------------------


def io_imports(imported: Iterable[str]) -> list[str]:
    """The names in `imported` that are I/O (IO_MODULES or under one)."""
    return sorted(m for m in imported if under(m, IO_MODULES))


def package_graph(graph: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    """Which layer packages import which, from a graph of modules (a package's own imports of
    itself left out)."""
    packages: dict[str, set[str]] = {}
    for name, targets in graph.items():
        source = package_of(name)
        if source is None:
            continue
        for target in targets:
            imported = package_of(target)
            if imported is not None and imported != source:
                packages.setdefault(source, set()).add(imported)
    return packages


def sibling_violations(packages: Mapping[str, Iterable[str]]) -> list[str]:
    """Imports between two packages of one layer that SIBLING_IMPORTS does not allow."""
    return sorted(
        f"{source} -> {target}"
        for source, targets in packages.items()
        for target in targets
        if LAYERS[source] == LAYERS[target] and (source, target) not in SIBLING_IMPORTS
    )


def find_circle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One import circle in `graph` as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (circle := visit(target)):
                return circle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (circle := visit(node)):
            return circle
    return None


def reached(start: str, graph: Mapping[str, Iterable[str]]) -> set[str]:
    """Every harness module that importing `start` runs: what it imports, and so on, with the
    `__init__` of each package on the way (the facade's names are loaded lazily: not counted)."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        parents = {".".join(parts[:end]) for end in range(2, len(parts))}
        for target in (set(graph.get(name, ())) | parents) - seen - FACADE:
            seen.add(target)
            todo.append(target)
    return seen


def adapter_under(start: str, graph: Mapping[str, Iterable[str]]) -> list[str]:
    return sorted(m for m in reached(start, graph) if under(m, (ADAPTER,)))


# --- the rules, on the real tree ----------------------------------------------------------------


def test_every_module_is_in_a_layer_or_the_facade():
    assert sorted(n for n in MODULES if layer_of(n) is None and n not in FACADE) == []


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n not in FACADE))
def test_imports_point_down(name):
    upward = sorted(
        f"{name} -> {target}"
        for target in GRAPH[name]
        if target in FACADE or (layer_of(target) or 0) > (layer_of(name) or 0)
    )
    assert upward == []


def test_no_import_circles():
    # A package's __init__ that re-exports its modules is not a circle with them.
    graph = {
        name: {
            t
            for t in targets
            if not (MODULES[t].name == "__init__.py" and name.startswith(t + "."))
        }
        for name, targets in GRAPH.items()
    }
    assert find_circle(graph) is None


@pytest.mark.parametrize("name", sorted(n for n in MODULES if under(n, (NO_IO,))))
def test_the_core_imports_no_io(name):
    assert io_imports(all_imports_of(name)) == []


def test_packages_of_one_layer_import_each_other_one_way_at_most():
    assert sibling_violations(package_graph(GRAPH)) == []


def test_no_two_packages_import_each_other():
    assert find_circle(package_graph(GRAPH)) is None


@pytest.mark.parametrize("name", sorted(n for n in MODULES if under(n, STRATEGY_SIDE)))
def test_a_strategy_imports_nothing_of_the_adapter(name):
    assert adapter_under(name, GRAPH) == []


def test_importing_the_strategy_interface_loads_no_adapter():
    # The same rule as Python sees it: what an `import` really runs, in a fresh interpreter.
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys, {', '.join(STRATEGY_SIDE)}; "
            "print(*sorted(m for m in sys.modules if m.split('.')[0] in ('aiosmtpd', 'harness')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "harness.runner.strategy" in loaded
    assert [m for m in loaded if m.startswith("aiosmtpd") or under(m, (ADAPTER,))] == []


def test_imports_are_read_from_functions_and_relative_forms():
    assert "harness.core.plan" in GRAPH["harness.core.engine"]
    # harness.reports.html imports `from harness.reports import digest`: that is the module.
    assert "harness.reports.digest" in GRAPH["harness.reports.html"]


# --- the checkers catch a violation they are shown ----------------------------------------------


def test_the_circle_finder_finds_a_circle_and_passes_a_tree():
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_a_core_module_doing_io_is_caught():
    source = textwrap.dedent(
        """
        import json
        from asyncio import sleep
        from . import plan

        def later():
            import socket
            from urllib import request
            from aiosmtpd.smtp import SMTP
        """
    )
    imported = imported_names(source, "harness.core.engine")
    assert "harness.core.plan" in imported
    assert io_imports(imported) == [
        "aiosmtpd.smtp",
        "aiosmtpd.smtp.SMTP",
        "asyncio",
        "asyncio.sleep",
        "socket",
        "urllib.request",
    ]
    # Pure helpers are not I/O, nor a name that only starts like one.
    assert io_imports({"urllib.parse", "json", "sslcontext_helpers", "httpx_like"}) == []


def test_siblings_importing_each_other_are_caught_both_ways(monkeypatch):
    graph = {
        "harness.hunting.story": {"harness.reports.failure", "harness.core.plan"},
        "harness.reports.html": {"harness.hunting.story"},
        "harness.plugin.play": {"harness.console.remote", "harness.reports.failure"},
    }
    packages = package_graph(graph)
    assert packages["harness.hunting"] == {"harness.reports", "harness.core"}
    assert sibling_violations(packages) == [
        "harness.hunting -> harness.reports",
        "harness.plugin -> harness.console",
        "harness.reports -> harness.hunting",
    ]
    assert find_circle(packages) == ["harness.hunting", "harness.reports", "harness.hunting"]
    # A direction allowed is allowed alone: its reverse is still caught.
    monkeypatch.setitem(globals(), "SIBLING_IMPORTS", {("harness.hunting", "harness.reports")})
    assert sibling_violations(packages) == [
        "harness.plugin -> harness.console",
        "harness.reports -> harness.hunting",
    ]


def test_the_adapter_reached_through_another_module_or_a_package_init_is_caught():
    graph = {
        "harness.runner.strategy": {"harness.base.clock"},
        "harness.base.clock": {"harness.core.plan"},
        "harness.core.plan": {"harness.server.protocol"},
        "harness.runner.strategies.naive": {"harness.runner.strategy"},
        "harness.runner.strategies": {"harness.server.fake_ses"},
        "harness": {"harness.server.view"},  # the lazy facade: not run by an import
    }
    # harness.server is its __init__, which importing any of its modules runs first.
    assert adapter_under("harness.runner.strategy", graph) == [
        "harness.server",
        "harness.server.protocol",
    ]
    assert adapter_under("harness.runner.strategies.naive", graph) == [
        "harness.server",
        "harness.server.fake_ses",
        "harness.server.protocol",
    ]
    assert adapter_under("harness.base.clock", {"harness.base.clock": set()}) == []


#: One module, one job: past this a module is doing several (the structure issue split four).
MAX_MODULE_LINES = 450


def test_no_module_is_over_the_line_limit():
    long = {
        name: n
        for name, path in MODULES.items()
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}
