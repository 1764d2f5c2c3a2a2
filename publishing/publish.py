"""Publishing an image: its files to ``content/``, the ledger's ``published``, the backup copy.

Where an image's files live tells its publishing status: ``review/`` while a person has
to decide (``in_review``), ``content/`` once published (``done`` with ``published_at``), ``rejected/`` once rejected
(with ``<name>.review.json``: who, when, the note). Moving copies every file (the
original with its embedded Content Credentials, the renditions and the provenance
sidecar, byte for byte except the sidecar's list of keys), then records the new keys
in the ledger's transition, then deletes the old keys: a crash at any point leaves a
row whose keys hold its files, and the next attempt finishes the move (same bytes at
the same key is a no-op). With a backup store (``publishing.backup_url``) every
published object is then copied there, checked against its SHA-256.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from domain.model import ImageStatus
from domain.errors import StorageError
from domain.log import get_logger
from storage.backup import copy_to_backup
from generation.upload import CONTENT
from storage.db import Database, ImageRecord
from storage.ledger import ImageLedger, StoredFile, StoredImage
from storage.objects import ObjectStore

S = ImageStatus
REJECTED = "rejected"


def top_folder(key: str) -> str:
    """The first part of a key (``content`` / ``review`` / ``rejected`` / ``placeholder``)."""
    return key.split("/", 1)[0]


def moved_key(key: str, top: str) -> str:
    """``key`` with its first part replaced by ``top``."""
    return f"{top}/{key.split('/', 1)[1]}"


def relocate(db: Database, store: ObjectStore, row: ImageRecord, top: str) -> tuple[StoredImage, list[str]]:
    """Copy row's files under ``top/`` (same rest of the key); returns the new StoredImage
    and the old keys to delete once the ledger recorded the new ones. The sidecar's file
    keys are rewritten to the new ones; every other byte is kept."""
    assert row.id is not None and row.storage_key
    files = db.renditions(row.id)
    new_files: list[StoredFile] = []
    old_keys: list[str] = []
    mapping = {f.storage_key: moved_key(f.storage_key, top) for f in files}
    for f in files:
        target = mapping[f.storage_key]
        if target != f.storage_key:
            head = store.head(f.storage_key)
            if head is None and store.head(target) is None:
                raise StorageError(f"image {row.image_id}: {f.storage_key!r} is missing from the store")
            if head is not None:
                store.put(target, store.get(f.storage_key), content_type=head.content_type, metadata=head.metadata)
                old_keys.append(f.storage_key)
        new_files.append(StoredFile(f.name, target, f.format, f.width, f.height, f.bytes, f.checksum))
    sidecar_key = row.sidecar_key
    if sidecar_key and top_folder(sidecar_key) != top:
        target = moved_key(sidecar_key, top)
        head = store.head(sidecar_key)
        if head is not None:
            document = json.loads(store.get(sidecar_key))
            for entry in document.get("files", []):
                entry["key"] = mapping.get(entry.get("key"), entry.get("key"))
            data = json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False).encode("utf-8")
            store.put(target, data, content_type=head.content_type, metadata=head.metadata)
            old_keys.append(sidecar_key)
        sidecar_key = target
    return StoredImage(mapping.get(row.storage_key, moved_key(row.storage_key, top)), sidecar_key, tuple(new_files)), old_keys


def _delete(store: ObjectStore, keys: Sequence[str]) -> None:
    for key in keys:
        try:
            store.delete(key)
        except StorageError as exc:  # a leftover copy, not a lost image
            get_logger().warning("could not delete the old copy %s: %s", key, exc)


def published_keys(db: Database, row: ImageRecord) -> list[str]:
    """Every stored key of a published row (files and sidecar)."""
    assert row.id is not None
    keys = [f.storage_key for f in db.renditions(row.id)]
    return keys + ([row.sidecar_key] if row.sidecar_key else [])


def publish_image(ledger: ImageLedger, store: ObjectStore, pk: int, *, backup: ObjectStore | None = None, run_key: str | None = None) -> ImageRecord:
    """Row ``pk`` (``done`` / ``uploaded`` / ``approved``) -> published (``done`` with
    ``published_at``), its files under ``content/``; a row already published is returned as it is. Copies to ``backup`` (a
    failed backup copy is logged, never unpublishes: ``backup verify`` reports it)."""
    row = ledger.get(pk)
    status = S(row.status)
    if status is S.done and row.published_at is not None:
        return row
    if row.is_placeholder or not row.storage_key:
        raise StorageError(f"image {row.image_id} ({row.status}) has no real stored image to publish")
    stored: StoredImage | None = None
    old: list[str] = []
    if top_folder(row.storage_key) != CONTENT:
        stored, old = relocate(ledger.db, store, row, CONTENT)
    row = ledger.publish(pk, stored, run_key=run_key)
    _delete(store, old)
    if backup is not None:
        try:
            copy_to_backup(store, backup, published_keys(ledger.db, row))
        except StorageError as exc:
            get_logger().error("image %s: backup copy failed: %s", row.image_id, exc)
    return row


def reject_image(ledger: ImageLedger, store: ObjectStore, pk: int, *, reviewer: str, note: str | None) -> ImageRecord:
    """Row ``pk`` (``in_review`` / ``approved``) -> ``rejected``: files moved under
    ``rejected/`` with ``<name>.review.json`` (reviewer, time UTC, note)."""
    row = ledger.get(pk)
    if S(row.status) is S.rejected:
        return row
    stored: StoredImage | None = None
    old: list[str] = []
    if row.storage_key and top_folder(row.storage_key) != REJECTED:
        stored, old = relocate(ledger.db, store, row, REJECTED)
    if stored is not None:
        base = stored.storage_key.rsplit(".", 1)[0]
        record = {"image_id": row.image_id, "reviewer": reviewer, "note": note or "", "decided_at": datetime.now(UTC).isoformat(), "version": row.version}
        data = json.dumps(record, sort_keys=True, indent=2).encode()
        key = f"{base}.review.json"
        if store.head(key) is None:  # a re-run keeps the first record
            try:
                store.put(key, data, content_type="application/json")
            except StorageError as exc:
                get_logger().warning("image %s: review note not stored: %s", row.image_id, exc)
    row = ledger.reject(pk, reviewer, note, stored)
    _delete(store, old)
    return row
