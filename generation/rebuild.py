"""``content-pipeline db rebuild``: the image ledger recovered from the store's provenance
sidecars after the database was lost, so that a re-run of a date pays for nothing stored.

Every upload (generation.upload) writes ``<base>.json`` next to an image's files: the
provenance (image id, provider, model, seed, template, template version, variant,
category, placeholder, prompt unless private), the idempotency key
(``flow:run_date:slot:index``), sizes in pixels, tags, quality, pHash and each stored file
(name, key, format, pixels, bytes, SHA-256). Each sidecar whose original is still in the
store with that SHA-256 becomes one image row (``done`` and published under ``content/``,
``in_review`` under ``review/``, ``placeholder`` under ``placeholder/``) with its renditions;
the run's planner then finds those slots finished. A slot already in the database is left
as it is. Not in a sidecar, so not recovered: a private prompt (``embed_prompt: false``:
the row keeps ``prompt_private`` and no prompt), the cost in USD (recorded 0.0), the
provider attempts and the budget ledger.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from domain.errors import StorageError
from domain.model import ImageStatus, key_digest
from storage.db import Database, ImageRecord, RenditionRecord, utcnow
from storage.objects import ObjectStore

SCHEMA = "content-pipeline/provenance/1"
#: The store's top folders and the status an image found there had.
FOLDERS = {"content/": ImageStatus.done, "review/": ImageStatus.in_review, "placeholder/": ImageStatus.placeholder}


@dataclass
class RebuildReport:
    """What a rebuild did: image ids recovered, and the sidecars skipped by reason."""

    recovered: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        """``N images recovered, M skipped (reason: count, ...)``."""
        reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(self.skipped.items()))
        skipped = sum(self.skipped.values())
        return f"{len(self.recovered)} images recovered, {skipped} skipped" + (f" ({reasons})" if reasons else "")


class _Skip(Exception):
    """A sidecar that does not become a row; the message is the reason."""


def rebuild(db: Database, store: ObjectStore) -> RebuildReport:
    """Insert a row (and its renditions) per usable sidecar in ``store`` into ``db``; returns
    the report. StorageError when the store cannot be listed."""
    report = RebuildReport()
    for folder, status in FOLDERS.items():
        for key in store.keys(folder):
            if not key.endswith(".json"):
                continue
            try:
                image_id = _recover(db, store, key, status)
            except _Skip as skip:
                report.skipped[str(skip)] += 1
            else:
                report.recovered.append(image_id)
    return report


def _recover(db: Database, store: ObjectStore, key: str, status: ImageStatus) -> str:
    try:
        document = json.loads(store.get(key))
    except (StorageError, ValueError) as exc:
        raise _Skip("unreadable sidecar") from exc
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise _Skip("not a provenance sidecar")
    row, files = _row(document, key, status)
    original = next((f for f in files if f.name == "original"), None)
    found = store.head(original.storage_key) if original else None
    if original is None or found is None or found.checksum != original.checksum:
        raise _Skip("original missing or changed in the store")
    with db.write_session() as session:
        if session.exec(_by_key(row.idempotency_key)).first() is not None:
            raise _Skip("already in the database")
        session.add(row)
        session.flush()
        assert row.id is not None
        for rendition in files:
            rendition.image_pk = row.id
            session.add(rendition)
        session.commit()
    return row.image_id


def _by_key(idempotency_key: str) -> Any:
    from sqlmodel import select  # noqa: PLC0415 - only a rebuild needs it

    return select(ImageRecord).where(ImageRecord.idempotency_key == idempotency_key)


def _row(document: dict[str, Any], key: str, status: ImageStatus) -> tuple[ImageRecord, list[RenditionRecord]]:
    """The image row and renditions a sidecar describes; _Skip when it does not add up."""
    provenance = document.get("provenance") or {}
    idempotency_key = str(document.get("idempotency_key") or "")
    image_id = str(provenance.get("image_id") or "")
    parts = idempotency_key.split(":", 2)
    if len(parts) != 3 or ":" not in parts[2] or key_digest(idempotency_key) != image_id:
        raise _Skip("image id does not match its idempotency key")
    flow, day, rest = parts
    slot, index = rest.rsplit(":", 1)
    try:
        run_date, slot_index = date.fromisoformat(day), int(index)
        generated_at = datetime.fromisoformat(document["generated_at"]) if document.get("generated_at") else None
        files = [
            RenditionRecord(
                image_pk=0,
                name=str(f["name"]),
                storage_key=str(f["key"]),
                format=str(f["format"]),
                width=int(f["width"]),
                height=int(f["height"]),
                bytes=int(f["bytes"]),
                checksum=str(f["sha256"]),
            )
            for f in document.get("files") or []
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise _Skip("malformed sidecar") from exc
    private = bool(provenance.get("prompt_private"))
    now = utcnow()
    row = ImageRecord(
        idempotency_key=idempotency_key,
        image_id=image_id,
        flow=flow,
        run_date=run_date,
        slot=slot,
        slot_index=slot_index,
        trigger="rebuild",
        status=status.value,
        category=str(provenance.get("category") or "uncategorized"),
        template=provenance.get("template"),
        template_version=provenance.get("template_version"),
        variant=provenance.get("variant"),
        prompt=None if private else provenance.get("prompt"),
        negative_prompt=None if private else provenance.get("negative_prompt"),
        prompt_private=private,
        width=document.get("width"),
        height=document.get("height"),
        num_inference_steps=document.get("num_inference_steps"),
        guidance_scale=document.get("guidance_scale"),
        seed=provenance.get("seed"),
        provider=provenance.get("provider"),
        model=provenance.get("model"),
        is_placeholder=bool(provenance.get("placeholder")),
        checksum=next((f.checksum for f in files if f.name == "original"), None),
        storage_key=next((f.storage_key for f in files if f.name == "original"), None),
        sidecar_key=key,
        tags=list(document.get("tags") or []),
        quality_score=document.get("quality_score"),
        quality_metrics=document.get("quality_metrics"),
        phash=document.get("phash"),
        generated_at=generated_at,
        published_at=(generated_at or now) if status is ImageStatus.done else None,
        created_at=now,
        updated_at=now,
    )
    return row, files
