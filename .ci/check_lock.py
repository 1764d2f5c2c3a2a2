"""Fail when pyproject.toml and the lock disagree.

Every requirement of the project (its dependencies and the ``test`` and ``local`` extras
that ``make install`` installs) must be pinned in the lock at a version its specifier
accepts, with hashes; ``torch`` is installed outside the lock (see the Makefile). Run by
``make check-lock`` and .ci/run; ``make lock`` refreshes the lock.

Usage: python .ci/check_lock.py pyproject.toml requirements.lock
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

NOT_LOCKED = {"torch"}
EXTRAS = ("test", "local")


def locked(lock_text: str) -> dict[str, tuple[Version, bool]]:
    """name -> (pinned version, has hashes) for every ``name==version`` entry of the lock."""
    entries: dict[str, tuple[Version, bool]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", lock_text):
        found = re.match(r"([A-Za-z0-9_.\-\[\]]+)==([^\s;\\]+)", block)
        if found:
            name = canonicalize_name(found.group(1).split("[")[0])
            entries[name] = (Version(found.group(2)), "--hash=sha256:" in block)
    return entries


def main(pyproject: Path, lock: Path) -> int:
    project = tomllib.loads(pyproject.read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in EXTRAS:
        wanted += project["optional-dependencies"][extra]
    pins = locked(lock.read_text())
    problems = []
    for text in wanted:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        if name in NOT_LOCKED or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        if name not in pins:
            problems.append(f"{req.name}: in pyproject.toml but not in {lock.name}")
            continue
        version, hashed = pins[name]
        if not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req.name}: {lock.name} pins {version}, pyproject.toml asks {req.specifier}")
        if not hashed:
            problems.append(f"{req.name}: {lock.name} has no hash for it")
    for line in problems:
        print(f"error: {line}; run `make lock`", file=sys.stderr)
    if not problems:
        print(f"{lock.name} agrees with {pyproject.name} ({len(pins)} packages pinned with hashes)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
