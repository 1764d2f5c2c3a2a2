"""Stage 6: upload the original and its renditions to the object store.

Keys: ``content/<category>/<yyyy>/<mm>/<slug>-<image_id>.<ext>`` for the original and
``...<slug>-<image_id>.<rendition>.<ext>`` for each rendition, and
``...<slug>-<image_id>.json`` for the provenance sidecar (tasks.provenance). A placeholder goes under
``placeholder/`` instead of ``content/``: it is never published as real content.
Uploading the same bytes again is a no-op, so a resumed run never duplicates a file.
"""

from __future__ import annotations

import re
from pathlib import Path

from core.domain import ImageStatus
from core.errors import ObjectExistsError, StorageError
from storage.db import Database, ImageRecord, RenditionRecord
from storage.objects import ObjectStore, sha256_hex
from tasks.postprocess import EXTENSIONS, RenditionFile
from tasks.provenance import Provenance, sidecar

_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(text: str, max_length: int = 60) -> str:
    """Lowercase ASCII letters, digits and dashes only: safe in any key or file name."""
    slug = _SLUG.sub("-", text.lower()).strip("-")[:max_length].strip("-")
    return slug or "image"


def base_key(row: ImageRecord) -> str:
    """``content|review|placeholder/<category>/<yyyy>/<mm>/<slug>-<image_id>`` (no extension):
    ``review/`` for a category whose review is required (tasks.review.staging_folder)."""
    from tasks.review import staging_folder

    prefix = "placeholder" if row.is_placeholder else staging_folder(row.category)
    slug = slugify(row.template or row.category)
    return f"{prefix}/{slugify(row.category)}/{row.run_date:%Y}/{row.run_date:%m}/{slug}-{row.image_id}"


def _ascii(value: object, limit: int = 1000) -> str:
    return str(value)[:limit].encode("ascii", "backslashreplace").decode()


def object_metadata(row: ImageRecord) -> dict[str, str]:
    """What travels with every stored file (ASCII, so S3 metadata accepts it)."""
    fields = {
        "image-id": row.image_id,
        "idempotency-key": row.idempotency_key,
        "prompt": row.prompt,
        "negative-prompt": row.negative_prompt,
        "seed": row.seed,
        "provider": row.provider,
        "model": row.model,
        "template": row.template,
        "template-version": row.template_version,
        "category": row.category,
        "placeholder": str(row.is_placeholder).lower(),
        "digital-source-type": "trainedAlgorithmicMedia",
    }
    if getattr(row, "prompt_private", False):  # embed_prompt: false: the prompt is never published
        fields.pop("prompt")
        fields.pop("negative-prompt")
    return {k: _ascii(v) for k, v in fields.items() if v is not None}


def upload_image(db: Database, store: ObjectStore, pk: int, renditions: list[RenditionFile]) -> ImageRecord:
    """Store row ``pk``'s original and ``renditions``; row -> ``uploaded`` with the original's key.

    Raises StorageError (ObjectExistsError when a key holds a different image). On any
    other StorageError the row keeps its status (``processed``), gets
    ``upload_pending=True`` and the error, and its files stay in the spool:
    ``tasks.pending.upload_pending_images`` (first step of every run) uploads them.
    """
    try:
        return _upload(db, store, pk, renditions)
    except ObjectExistsError:
        raise  # a permanent conflict: retrying cannot help, the error stays on the row
    except StorageError as exc:
        # the store is unreachable or refused: the files stay in the spool, the next run uploads them
        db.advance(pk, ImageStatus(db.get(pk).status), upload_pending=True, error=f"upload pending: {exc}"[:2000])
        raise


def _upload(db: Database, store: ObjectStore, pk: int, renditions: list[RenditionFile]) -> ImageRecord:
    row = db.get(pk)
    assert row.spool_path, f"image {row.idempotency_key} has no spooled original"
    key = base_key(row)
    metadata = object_metadata(row)
    # the cleaned, provenance-stamped original made by post-processing replaces the raw bytes
    cleaned = next((r for r in renditions if r.name == "original"), None)
    renditions = [r for r in renditions if r.name != "original"]
    original = cleaned.path if cleaned else Path(row.spool_path)
    data = original.read_bytes()
    fmt = {".png": "png", ".jpg": "jpeg", ".webp": "webp", ".avif": "avif"}.get(original.suffix, "png")
    original_key = f"{key}{EXTENSIONS[fmt]}"
    store.put(original_key, data, content_type=f"image/{fmt}", metadata=metadata)
    records = [
        RenditionRecord(image_pk=pk, name="original", storage_key=original_key, format=fmt,
                        width=cleaned.width if cleaned else row.width or 0,
                        height=cleaned.height if cleaned else row.height or 0, bytes=len(data), checksum=sha256_hex(data))
    ]
    for rendition in renditions:
        rendition_key = f"{key}.{rendition.name}{EXTENSIONS[rendition.format]}"
        store.put(rendition_key, rendition.path.read_bytes(), content_type=rendition.content_type,
                  metadata={**metadata, "rendition": rendition.name})
        records.append(
            RenditionRecord(image_pk=pk, name=rendition.name, storage_key=rendition_key, format=rendition.format,
                            width=rendition.width, height=rendition.height, bytes=rendition.bytes, checksum=rendition.checksum)
        )
    sidecar_key = f"{key}.json"
    files = [{"name": r.name, "key": r.storage_key, "format": r.format, "width": r.width, "height": r.height,
              "bytes": r.bytes, "sha256": r.checksum} for r in records]
    store.put(sidecar_key, sidecar(Provenance.of(row), row=row, files=files), content_type="application/json",
              metadata=metadata)
    db.replace_renditions(pk, records)
    return db.advance(pk, ImageStatus.uploaded, storage_key=original_key, sidecar_key=sidecar_key,
                      upload_pending=False, error=None)
