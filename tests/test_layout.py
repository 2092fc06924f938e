"""The package's import graph: no cycles, and the core never imports the layers above it.

The graph is read from the source with :mod:`ast` (nothing is imported): every
``import localrnn...`` and ``from localrnn... import ...`` (and relative import),
at module level and inside functions, is an edge from the importing module to
the module it names (``from pkg import name`` points at ``pkg.name`` when that is
a module, else at ``pkg``). Layers, bottom up: tasks / model / losses -> rules ->
config / train / checkpoint / results -> experiments -> cli (docs/extending.md).
"""

from __future__ import annotations

import ast
from pathlib import Path

import localrnn

PACKAGE_ROOT = Path(localrnn.__file__).parent

#: the core (and the analysis lens, which reads trained networks with it): these modules and packages
#: never import the experiments layer or the CLI
CORE = ("model", "cells", "orthogonal_cell", "diagonal_cell", "initializers", "losses", "tasks", "rules", "config", "train", "checkpoint", "results",
        "runtime", "errors", "lra_api", "paper", "analysis")
UPPER = ("localrnn.experiments", "localrnn.cli")


def _module_names(root: Path) -> dict[str, Path]:
    """``{dotted module name: file}`` for every .py file of the package (``pkg/__init__.py`` -> ``pkg``)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = ("localrnn", *path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve_relative(module: str, is_package: bool, level: int, target: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def import_graph(root: Path = PACKAGE_ROOT) -> dict[str, set[str]]:
    """``{module: {localrnn modules it imports}}``, module-level and function-level imports alike."""
    modules = _module_names(root)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                src = (_resolve_relative(mod, is_package, node.level, node.module) if node.level
                       else node.module or "")
                names = [f"{src}.{a.name}" if f"{src}.{a.name}" in modules else src for a in node.names]
            for name in names:
                while name and name not in modules and "." in name:  # import a.b.c.func -> a.b.c
                    name = name.rsplit(".", 1)[0]
                if name in modules and name != mod:
                    graph[mod].add(name)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path ``a -> b -> ... -> a``) per strongly connected component that has one."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_cycle_path(graph, comp) for comp in components]


def _cycle_path(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A closed walk inside ``component`` from its first module back to it (breadth first)."""
    start, members = component[0], set(component)
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & members):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, v, start]
                if w not in parent:
                    parent[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle in component {component}")


def test_import_graph_is_read():
    graph = import_graph()
    assert "localrnn.rules" in graph["localrnn"] and "localrnn.model" in graph["localrnn"]
    assert any(m.startswith("localrnn.experiments") for m in graph["localrnn.cli.experiments"])


def test_find_cycles_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """``(core module, experiments/cli module)`` pairs where the core imports an upper layer."""
    return sorted((mod, dep) for mod, deps in graph.items() for dep in deps
                  if mod.split(".")[1:2] and mod.split(".")[1] in CORE
                  and any(dep == u or dep.startswith(u + ".") for u in UPPER))


def test_upward_imports_finds_a_planted_one():
    graph = {"localrnn.train": {"localrnn.experiments.store"}, "localrnn.cli.run": {"localrnn.train"}}
    assert upward_imports(graph) == [("localrnn.train", "localrnn.experiments.store")]


def test_core_never_imports_experiments_or_cli():
    bad = upward_imports(import_graph())
    assert not bad, "core modules importing upper layers:\n" + "\n".join(f"{m} -> {d}" for m, d in bad)
