"""YAML loading that remembers where every value came from.

``load_yaml(path)`` returns the parsed data and a ``locate(loc)`` function that maps a
pydantic error location (``("parameters", "width")``) to the line number of that value
in the file, so that errors can name the file, the line, the field and the value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

Locator = Callable[[Sequence[int | str]], int | None]


def _node_at(node: yaml.Node, loc: Sequence[int | str]) -> yaml.Node | None:
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == str(part):
                    node = value_node
                    break
            else:
                return node  # the deepest existing node: an extra/missing key lives here
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return node
            node = node.value[part]
        else:
            return node
    return node


def load_yaml(path: Path, *, error: type[Exception]) -> tuple[Any, Locator]:
    """Parse the YAML file at ``path``.

    Returns ``(data, locate)``; ``locate(loc)`` gives the 1-based line of the value at
    ``loc`` (or of its nearest existing parent). A syntax error or an unreadable file
    raises ``error`` with the file name and line.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise error(f"{path}{line}: invalid YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise error(f"{path}: invalid YAML: {exc}") from exc

    def locate(loc: Sequence[int | str]) -> int | None:
        if root is None:
            return None
        node = _node_at(root, loc)
        return node.start_mark.line + 1 if node is not None else None

    return data, locate


def format_validation_error(
    exc: ValidationError, *, source: str, locate: Locator | None = None, prefix: Sequence[str] = ()
) -> str:
    """One line per pydantic error: ``source:line: field a.b.c = 'value': message``."""
    lines = []
    for err in exc.errors():
        loc = tuple(prefix) + tuple(err["loc"])
        field = ".".join(str(p) for p in loc) or "(top level)"
        line = locate(tuple(err["loc"])) if locate else None
        where = f"{source}:{line}" if line else source
        value = err.get("input")
        shown = "" if err["type"] == "missing" else f" = {value!r}"
        if err["type"] == "extra_forbidden":
            lines.append(f"{where}: unknown key {field!r}{shown}")
        else:
            lines.append(f"{where}: field {field!r}{shown}: {err['msg']}")
    return "\n".join(lines)
