"""The package tree is the architecture: each subpackage is a layer, and imports point down.

Every `harness` module's imports are read from its source (top-level, in functions, and under
TYPE_CHECKING alike), and two things are refused: an import circle between modules, and an import
from a lower layer into a higher one.
"""

from __future__ import annotations

import ast
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


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def imports_of(name: str) -> set[str]:
    """The harness modules that `name` imports (``from pkg import sub`` counts as ``pkg.sub``)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m in MODULES and m != name}


def layer_of(name: str) -> int | None:
    for package, layer in LAYERS.items():
        if name == package or name.startswith(package + "."):
            return layer
    return None


GRAPH = {name: imports_of(name) for name in MODULES}


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


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
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


def test_the_circle_finder_finds_a_circle_and_passes_a_tree():
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_imports_are_read_from_functions_and_relative_forms():
    assert "harness.core.plan" in GRAPH["harness.core.engine"]
    # harness.reports.html imports `from harness.reports import digest`: that is the module.
    assert "harness.reports.digest" in GRAPH["harness.reports.html"]


def reachable(name: str) -> set[str]:
    """Every harness module `name` imports, directly or through others."""
    seen, todo = set(), [name]
    while todo:
        for target in GRAPH[todo.pop()] - seen:
            seen.add(target)
            todo.append(target)
    return seen


@pytest.mark.parametrize("name", ["harness.runner.strategy", "harness.runner.command"])
def test_the_strategy_interface_does_not_reach_the_smtp_adapter(name):
    # A strategy, in this process or in another, meets the server only at its endpoint.
    assert sorted(m for m in reachable(name) if m.startswith("harness.server")) == []
