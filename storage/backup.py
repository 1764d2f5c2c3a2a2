"""The backup store: a second object store that every published object is copied to.

``publishing.backup_url`` (``file:///path`` or ``s3://bucket/prefix``; S3 options and
credentials as for ``storage_url``) names it. ``copy_to_backup`` copies objects after
checking their bytes against the SHA-256 the primary store recorded, and ``verify``
compares both stores: every object under ``content/`` in the primary store must be in
the backup with the same SHA-256, computed from the backup's bytes (a corrupted copy
whose metadata still claims the old checksum is found). ``content-pipeline backup
verify`` prints the report and exits 1 when anything is missing or differs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from domain.errors import StorageError
from storage.objects import ObjectStore, open_store, sha256_hex

PUBLISHED_PREFIX = "content/"


def open_backup(settings: object, secrets: object) -> ObjectStore | None:
    """The backup store of ``settings.publishing.backup_url`` (None when not configured)."""
    url = settings.publishing.backup_url  # type: ignore[attr-defined]
    if not url:
        return None
    return open_store(url, s3=settings.s3, credentials=secrets.aws_credentials())  # type: ignore[attr-defined]


def copy_to_backup(primary: ObjectStore, backup: ObjectStore, keys: Iterable[str]) -> list[str]:
    """Copy ``keys`` from ``primary`` to ``backup`` (same keys, content type, metadata);
    returns the keys copied. An object whose bytes no longer match the SHA-256 the primary
    recorded is not copied: StorageError. Copying bytes the backup already holds is a no-op."""
    copied: list[str] = []
    for key in keys:
        head = primary.head(key)
        if head is None:
            raise StorageError(f"cannot back up {key!r}: not in the primary store")
        data = primary.get(key)
        checksum = sha256_hex(data)
        if head.checksum and head.checksum != checksum:
            raise StorageError(f"cannot back up {key!r}: its bytes (sha256 {checksum[:12]}) differ from the recorded sha256 {head.checksum[:12]}")
        backup.put(key, data, content_type=head.content_type, metadata=head.metadata)
        copied.append(key)
    return copied


@dataclass
class VerifyReport:
    """What ``verify`` found: keys checked, missing from the backup, differing (key, primary
    SHA-256, backup SHA-256)."""

    checked: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    differing: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.differing


def verify(primary: ObjectStore, backup: ObjectStore, prefix: str = PUBLISHED_PREFIX) -> VerifyReport:
    """Compare every object under ``prefix`` of ``primary`` with ``backup`` (bytes hashed)."""
    report = VerifyReport()
    for key in primary.keys(prefix):
        report.checked.append(key)
        head = primary.head(key)
        expected = head.checksum if head is not None and head.checksum else sha256_hex(primary.get(key))
        if backup.head(key) is None:
            report.missing.append(key)
            continue
        actual = sha256_hex(backup.get(key))
        if actual != expected:
            report.differing.append((key, expected, actual))
    return report
