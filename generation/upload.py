"""Stage 6: upload the original and its renditions to the object store.

Keys: ``content/<category>/<yyyy>/<mm>/<slug>-<image_id>.<ext>`` for the original and
``...<slug>-<image_id>.<rendition>.<ext>`` for each rendition, and
``...<slug>-<image_id>.json`` for the provenance sidecar (imaging.provenance). A placeholder goes under
``placeholder/`` instead of ``content/``: it is never published as real content.
Uploading the same bytes again is a no-op, so a resumed run never duplicates a file.
``store_files`` only talks to the store; the orchestrator records the StoredImage it returns.
"""

from __future__ import annotations

import re
from pathlib import Path

from config.publishing import PublishingConfig
from storage.db import ImageRecord
from storage.ledger import StoredFile, StoredImage
from domain.errors import ObjectExistsError
from storage.objects import ObjectStore, StoredObject, sha256_hex
from imaging.postprocess import EXTENSIONS, RenditionFile
from imaging.provenance import Provenance, sidecar

_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(text: str, max_length: int = 60) -> str:
    """Lowercase ASCII letters, digits and dashes only: safe in any key or file name."""
    slug = _SLUG.sub("-", text.lower()).strip("-")[:max_length].strip("-")
    return slug or "image"


#: The top folders of the store: published content, images waiting for review, placeholders.
CONTENT, REVIEW, PLACEHOLDER = "content", "review", "placeholder"


def staging_folder(category: str, publishing: PublishingConfig) -> str:
    """Where the upload stores a real image of ``category``: ``review`` when its review is
    required (``publishing.review``), else ``content``."""
    return REVIEW if publishing.review_mode(category) == "required" else CONTENT


def base_key(row: ImageRecord, publishing: PublishingConfig) -> str:
    """``content|review|placeholder/<category>/<yyyy>/<mm>/<slug>-<image_id>`` (no extension):
    ``review/`` for a category whose review is required (``staging_folder``)."""
    prefix = PLACEHOLDER if row.is_placeholder else staging_folder(row.category, publishing)
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


def put_own(store: ObjectStore, key: str, data: bytes, *, content_type: str, metadata: dict[str, str]) -> StoredObject:
    """``store.put``, except that an object left at ``key`` by an earlier attempt at the same
    image (its ``image-id`` metadata is this one's: a run killed between the upload and the
    ledger's record) is replaced: its bytes differ from this attempt's only by what signing
    adds (a C2PA manifest carries its own time and instance id). A key holding another
    image still raises ObjectExistsError."""
    try:
        return store.put(key, data, content_type=content_type, metadata=metadata)
    except ObjectExistsError:
        current = store.head(key)
        if current is None or current.metadata.get("image-id") != metadata.get("image-id"):
            raise
        store.delete(key)
        return store.put(key, data, content_type=content_type, metadata=metadata)


def store_files(store: ObjectStore, row: ImageRecord, renditions: list[RenditionFile], publishing: PublishingConfig) -> StoredImage:
    """Put row's original (the cleaned one post-processing made, else the spooled bytes),
    ``renditions`` and the provenance sidecar into ``store``; returns what went where.

    Writes nothing in the database (the orchestrator records the StoredImage). Raises
    StorageError: ObjectExistsError when a key holds a different image (permanent), any
    other StorageError when the store is unreachable (the files stay in the spool).
    """
    assert row.spool_path, f"image {row.idempotency_key} has no spooled original"
    key = base_key(row, publishing)
    metadata = object_metadata(row)
    # the cleaned, provenance-stamped original made by post-processing replaces the raw bytes
    cleaned = next((r for r in renditions if r.name == "original"), None)
    renditions = [r for r in renditions if r.name != "original"]
    original = cleaned.path if cleaned else Path(row.spool_path)
    data = original.read_bytes()
    fmt = {".png": "png", ".jpg": "jpeg", ".webp": "webp", ".avif": "avif"}.get(original.suffix, "png")
    original_key = f"{key}{EXTENSIONS[fmt]}"
    put_own(store, original_key, data, content_type=f"image/{fmt}", metadata=metadata)
    files = [
        StoredFile(
            "original",
            original_key,
            fmt,
            cleaned.width if cleaned else row.width or 0,
            cleaned.height if cleaned else row.height or 0,
            len(data),
            sha256_hex(data),
        )
    ]
    for rendition in renditions:
        rendition_key = f"{key}.{rendition.name}{EXTENSIONS[rendition.format]}"
        put_own(store, rendition_key, rendition.path.read_bytes(), content_type=rendition.content_type, metadata={**metadata, "rendition": rendition.name})
        files.append(StoredFile(rendition.name, rendition_key, rendition.format, rendition.width, rendition.height, rendition.bytes, rendition.checksum))
    sidecar_key = f"{key}.json"
    listing = [
        {"name": f.name, "key": f.storage_key, "format": f.format, "width": f.width, "height": f.height, "bytes": f.bytes, "sha256": f.checksum} for f in files
    ]
    put_own(store, sidecar_key, sidecar(Provenance.of(row), row=row, files=listing), content_type="application/json", metadata=metadata)
    return StoredImage(original_key, sidecar_key, tuple(files))
