"""Object stores behind one small interface, selected by URL (fsspec-style).

``open_store("file:///srv/images")`` -> LocalStore. A store implements ``put``,
``get``, ``exists``, ``head`` and ``url``; keys are ``/``-separated relative paths
(``content/<category>/<yyyy>/<mm>/<file>``). Writing a key that already holds the
same bytes is a no-op (a re-run uploads nothing twice); writing different bytes to it
raises ObjectExistsError: an object is never overwritten by a different image.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from core.errors import ObjectExistsError, StorageError

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")


def check_key(key: str) -> str:
    """``key`` if it is a safe relative key (no ``..``, no absolute path, plain characters)."""
    if not _KEY.match(key) or any(part in ("..", ".") for part in key.split("/")):
        raise StorageError(f"unsafe object key {key!r}")
    return key


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class StoredObject:
    """What a store holds at a key: size in bytes, SHA-256, content type, metadata."""

    key: str
    size: int
    checksum: str
    content_type: str
    metadata: dict[str, str]


class ObjectStore(ABC):
    """The primitives every store implements."""

    @abstractmethod
    def put(self, key: str, data: bytes, *, content_type: str, metadata: dict[str, str] | None = None) -> StoredObject:
        """Store ``data`` at ``key``; idempotent for identical bytes, ObjectExistsError otherwise."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The bytes at ``key``; StorageError when absent."""

    @abstractmethod
    def head(self, key: str) -> StoredObject | None:
        """What is stored at ``key``, or None."""

    @abstractmethod
    def url(self, key: str) -> str:
        """A URL a person can open for ``key``."""

    def exists(self, key: str) -> bool:
        return self.head(key) is not None


class LocalStore(ObjectStore):
    """A folder on the local disk; writes are atomic (temporary file + rename).

    Metadata and content type live in a ``<file>.meta.json`` sidecar next to the object.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes, *, content_type: str, metadata: dict[str, str] | None = None) -> StoredObject:
        path = self._path(key)
        checksum = sha256_hex(data)
        current = self.head(key)
        if current is not None:
            if current.checksum == checksum:
                return current
            raise ObjectExistsError(f"{key!r} already holds a different object (sha256 {current.checksum[:12]})")
        obj = StoredObject(key, len(data), checksum, content_type, dict(metadata or {}))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(path.with_name(path.name + ".meta.json"), json.dumps(obj.__dict__, indent=1).encode())
            _atomic_write(path, data)
        except OSError as exc:
            raise StorageError(f"cannot write {key!r} under {self.root}: {exc}") from exc
        return obj

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except OSError as exc:
            raise StorageError(f"cannot read {key!r} under {self.root}: {exc}") from exc

    def head(self, key: str) -> StoredObject | None:
        path = self._path(key)
        if not path.is_file():
            return None
        meta_path = path.with_name(path.name + ".meta.json")
        try:
            meta = json.loads(meta_path.read_text())
            return StoredObject(**meta)
        except (OSError, ValueError, TypeError):
            data = path.read_bytes()
            return StoredObject(key, len(data), sha256_hex(data), "application/octet-stream", {})

    def url(self, key: str) -> str:
        return self._path(key).resolve().as_uri()


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def open_store(url: str) -> ObjectStore:
    """The store for ``url``: ``file:///path`` or a plain path. StorageError otherwise."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        path = unquote(parsed.path) if parsed.scheme else url
        return LocalStore(Path(path))
    raise StorageError(f"unsupported storage URL scheme {parsed.scheme!r} in storage_url (supported: file://)")
