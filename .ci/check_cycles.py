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
from pathlib import Path

import grimp


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the components of two or more modules (each one a cycle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        work = [(node, iter(sorted(graph[node])))]
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        while work:
            current, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[current] = min(low[current], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[current])
            if low[current] == index[current]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == current:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


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
    edges = {m: {i for i in graph.find_modules_directly_imported_by(m) if i.split(".")[0] in packages}
             for m in graph.modules}
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
