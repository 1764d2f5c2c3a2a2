"""YAML loading that refuses hostile input and remembers where every value came from.

``load_yaml(path)`` returns the parsed data and a ``locate(loc)`` function that maps a
pydantic error location (``("parameters", "width")``) to the line number of that value
in the file, so that errors can name the file, the line, the field and the value.

Refused, each with one line naming the file and line: text that is not UTF-8,
aliases (``*name``: the "billion laughs" expansion bomb, CVE-2003-1564 for XML and
the same idea in YAML; anchors on their own are harmless), duplicate keys in a
mapping (YAML 1.2 §3.2.1.1: keys are unique; PyYAML keeps the last one silently),
non-finite numbers (``.inf``, ``.nan``), nesting deeper than ``MAX_DEPTH`` and files
larger than ``MAX_BYTES``.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

Locator = Callable[[Sequence[int | str]], int | None]

#: the largest YAML file read (bytes): templates and configuration are a few kB
MAX_BYTES = 1024 * 1024
#: the deepest nesting of mappings and lists accepted
MAX_DEPTH = 50
#: how many characters of a value an error message shows
SHOWN_CHARS = 80


#: names of keys / variables whose values are never echoed (API keys, tokens, passwords, Apprise URLs)
_SECRET_NAME = re.compile(r"(key|token|secret|passw|auth|credential|apprise_urls|private|dsn)", re.IGNORECASE)
#: values shaped like a credential whatever their key: OpenAI / Hugging Face / Replicate / GitHub / AWS / Stripe-style keys, a URL with a password
_SECRET_VALUE = re.compile(r"^(sk-|sk_|hf_|r8_|gh[pousr]_|github_pat_|AKIA|xox[abp]-|fal_|key-)|://[^/@\s]*:[^/@\s]+@")


def is_secret(name: str, value: Any = None) -> bool:
    """True when a value must not be echoed: its key / variable ``name`` names a credential,
    or the value itself is shaped like one (``sk-...``, ``hf_...``, ``user:pass@`` in a URL)."""
    if _SECRET_NAME.search(name or ""):
        return True
    return isinstance(value, str) and bool(_SECRET_VALUE.search(value.strip()))


def shown(name: str, value: Any) -> str:
    """``shorten(value)``, or ``'***' (N characters)`` when ``is_secret(name, value)``: the one
    masking rule for every message that echoes a configuration value."""
    if is_secret(name, value):
        size = f" ({len(value)} characters)" if isinstance(value, str | bytes) else ""
        return f"'***'{size}"
    return shorten(value)


def shorten(value: Any, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)`` cut to about ``limit`` characters: ``'aaaa…' (100000 characters)``."""
    text = repr(value)
    if len(text) <= limit:
        return text
    if isinstance(value, str | bytes):
        size = f" ({len(value)} characters)"
    elif isinstance(value, list | tuple | dict | set):
        size = f" ({len(value)} items)"
    else:
        size = ""
    return text[:limit] + "…" + size


class _RefusedYAML(yaml.MarkedYAMLError):
    """YAML that parses but is refused (an alias, nesting too deep, a duplicate key, a non-finite number)."""


class StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases, duplicate keys or non-finite floats."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _RefusedYAML(None, None, f"alias *{event.anchor} refused (aliases are not allowed)", event.start_mark)
        depth = getattr(self, "_depth", 0)
        if depth > MAX_DEPTH:
            event = self.peek_event()
            raise _RefusedYAML(None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        self._depth = depth + 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth = depth

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                continue  # the base class reports unhashable keys
            if key in seen:
                raise _RefusedYAML(None, None, f"duplicate key {shorten(key)} (first at line {seen[key]})", key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        value = super().construct_yaml_float(node)
        if not math.isfinite(value):
            raise _RefusedYAML(None, None, f"non-finite number {node.value!r} refused", node.start_mark)
        return float(value)


StrictLoader.add_constructor("tag:yaml.org,2002:float", StrictLoader.construct_yaml_float)
StrictLoader.add_constructor("tag:yaml.org,2002:map", StrictLoader.construct_yaml_map)


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


def parse_yaml(text: str, source: str, *, error: type[Exception]) -> tuple[Any, Locator]:
    """Parse ``text`` (named ``source`` in errors) with ``StrictLoader``; see ``load_yaml``."""
    loader = StrictLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise error(f"{source}{line}: invalid YAML: {str(exc.problem or exc)[:200]}") from None
    except yaml.YAMLError as exc:
        raise error(f"{source}: invalid YAML: {str(exc)[:200]}") from None
    except RecursionError:
        raise error(f"{source}: invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()

    def locate(loc: Sequence[int | str]) -> int | None:
        if root is None:
            return None
        node = _node_at(root, loc)
        return node.start_mark.line + 1 if node is not None else None

    return data, locate


def regular_file(path: Path, *, error: type[Exception]) -> os.stat_result:
    """``os.stat(path)`` when ``path`` (its symlinks followed) is a regular file; ``error``
    with one line otherwise, before the file is opened: reading a FIFO or a device would
    wait for a writer forever (https://docs.python.org/3/library/stat.html#stat.S_ISREG)."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        kinds = (
            (stat.S_ISDIR, "a directory"),
            (stat.S_ISFIFO, "a FIFO (named pipe)"),
            (stat.S_ISCHR, "a device"),
            (stat.S_ISBLK, "a device"),
            (stat.S_ISSOCK, "a socket"),
        )
        kind = next((name for test, name in kinds if test(info.st_mode)), "not a regular file")
        raise error(f"{path}: is {kind}, not a regular file: give the path of a file")
    return info


def load_yaml(path: Path, *, error: type[Exception]) -> tuple[Any, Locator]:
    """Parse the YAML file at ``path``.

    Returns ``(data, locate)``; ``locate(loc)`` gives the 1-based line of the value at
    ``loc`` (or of its nearest existing parent). An unreadable, oversized or non-UTF-8
    file, a syntax error, an alias, a duplicate key or a non-finite number raises
    ``error`` with the file name and line.
    """
    size = regular_file(path, error=error).st_size
    try:
        if size > MAX_BYTES:
            raise error(f"{path}: {size} bytes is over the {MAX_BYTES}-byte limit of a YAML file")
        raw = path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise error(f"{path}:{line}: not valid UTF-8 (byte {exc.start}: {raw[exc.start : exc.start + 1]!r}); save the file as UTF-8") from None
    return parse_yaml(text, str(path), error=error)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model ``annotation`` holds (``Model``, ``Model | None``, ``dict[str, Model]``,
    ``list[Model]``, ``Annotated[...]``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def known_keys(model: type[BaseModel] | None, loc: Sequence[Any]) -> list[str]:
    """The keys the mapping at ``loc`` (a pydantic error location, without its last item)
    accepts, following ``model``'s fields (and their aliases); [] when unknown."""
    for part in loc:
        if model is None:
            return []
        field = model.model_fields.get(str(part))
        if field is None:
            continue  # a key of a dict or an index of a list: the same model below
        model = _model_of(field.annotation)
    if model is None:
        return []
    return sorted({name for name, field in model.model_fields.items()} | {f.alias for f in model.model_fields.values() if isinstance(f.alias, str)})


def suggestion(key: str, known: Sequence[str]) -> str:
    """`` — did you mean 'x'?`` for the closest of ``known`` to ``key`` (difflib), else ''."""
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" — did you mean {close[0]!r}?" if close else ""


def format_validation_error(
    exc: ValidationError, *, source: str, locate: Locator | None = None, prefix: Sequence[str] = (), model: type[BaseModel] | None = None
) -> str:
    """One line per pydantic error: ``source:line: field a.b.c = 'value': message``
    (the value shortened to about 80 characters); an unknown key of ``model`` names the
    closest known key (``unknown key 'chian' — did you mean 'chain'?``)."""
    lines = []
    for err in exc.errors():
        loc = tuple(prefix) + tuple(err["loc"])
        field = ".".join(str(p) for p in loc) or "(top level)"
        line = locate(tuple(err["loc"])) if locate else None
        where = f"{source}:{line}" if line else source
        value = err.get("input")
        # a whole-mapping check (no field) names no value: the message says what is wrong
        echoed = "" if err["type"] == "missing" or not err["loc"] else f" = {shown(field, value)}"
        message = str(err["msg"])
        if len(message) > 300:
            message = message[:300] + "…"
        if err["type"] == "extra_forbidden":
            guess = suggestion(str(err["loc"][-1]), known_keys(model, err["loc"][:-1])) if err["loc"] else ""
            lines.append(f"{where}: unknown key {field!r}{echoed}{guess}")
        else:
            lines.append(f"{where}: field {field!r}{echoed}: {message}")
    return "\n".join(lines)
