"""Fail when modules of the project import each other in a circle (at any depth, function-
local imports included), and when a module imports another module's private name.

import-linter's layers contract (pyproject.toml) forbids upward imports between packages;
this adds the two rules it does not check. The import graph comes from grimp, the library
import-linter builds on (https://grimp.readthedocs.io). Run by ``make lint``.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import grimp


class _Tarjan:
    """Tarjan's strongly connected components, iterative (no recursion limit on deep graphs)."""

    def __init__(self, graph: dict[str, set[str]]) -> None:
        self.graph = graph
        self.index: dict[str, int] = {}
        self.low: dict[str, int] = {}
        self.stack: list[str] = []
        self.on_stack: set[str] = set()
        self.found: list[list[str]] = []

    def enter(self, node: str, work: list[tuple[str, Iterator[str]]]) -> None:
        self.index[node] = self.low[node] = len(self.index)
        self.stack.append(node)
        self.on_stack.add(node)
        work.append((node, iter(sorted(self.graph[node]))))

    def visit(self, node: str) -> None:
        work: list[tuple[str, Iterator[str]]] = []
        self.enter(node, work)
        while work:
            current, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                self.leave(current, work[-1][0] if work else None)
            elif child not in self.index:
                self.enter(child, work)
            elif child in self.on_stack:
                self.low[current] = min(self.low[current], self.index[child])

    def leave(self, current: str, parent: str | None) -> None:
        if parent is not None:
            self.low[parent] = min(self.low[parent], self.low[current])
        if self.low[current] != self.index[current]:
            return
        component = []
        while True:
            member = self.stack.pop()
            self.on_stack.discard(member)
            component.append(member)
            if member == current:
                break
        if len(component) > 1:
            self.found.append(sorted(component))


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the components of two or more modules (each one a cycle)."""
    tarjan = _Tarjan(graph)
    for node in sorted(graph):
        if node not in tarjan.index:
            tarjan.visit(node)
    return tarjan.found


def private_imports(packages: list[str]) -> list[str]:
    """``from a.b import _name`` where ``a.b`` is another module of the project."""
    problems = []
    for package in packages:
        for path in sorted(Path(package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in packages:
                    for alias in node.names:
                        if alias.name.startswith("_") and not alias.name.startswith("__"):
                            problems.append(f"{path}:{node.lineno}: imports the private name {alias.name} of {node.module}")
    return problems


def main() -> int:
    config = tomllib.loads(Path("pyproject.toml").read_text())["tool"]["importlinter"]
    packages = list(config["root_packages"])
    graph = grimp.build_graph(*packages)
    edges = {m: {i for i in graph.find_modules_directly_imported_by(m) if i.split(".")[0] in packages} for m in graph.modules}
    cycles = strongly_connected(edges)
    for cycle in cycles:
        print(f"error: import cycle between {', '.join(cycle)}", file=sys.stderr)
    private = private_imports(packages)
    for line in private:
        print(f"error: {line}", file=sys.stderr)
    if not cycles and not private:
        print(f"no import cycles and no private names imported across modules ({len(edges)} modules)")
    return 1 if cycles or private else 0


if __name__ == "__main__":
    sys.exit(main())
