"""Writing an output file so that a reader never sees half of it: the bytes go to a ``.part``
sibling, then ``os.replace`` renames it over the target in one step (atomic on POSIX and
Windows within one file system: https://docs.python.org/3/library/os.html#os.replace)."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` (bytes) to ``path`` through ``<name>.part`` and one rename."""
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)
