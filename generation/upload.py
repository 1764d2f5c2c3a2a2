"""Stage 6: upload the original and its renditions to the object store.

Keys: ``content/<category>/<yyyy>/<mm>/<slug>-<image_id>.<ext>`` for the original and
``...<slug>-<image_id>.<rendition>.<ext>`` for each rendition, and
``...<slug>-<image_id>.json`` for the provenance sidecar (imaging.provenance). A placeholder goes under
``placeholder/`` instead of ``content/``: it is never published as real content.
Uploading the same image again is a no-op, so a resumed run never duplicates a file: a key that
holds the same image (the same bytes, or a file made from the same provider output: equal
``source-sha256`` metadata) is adopted as it is; a key that holds a different image is never
overwritten: the new image goes under ``<slug>-<image_id>.conflict-<id8>`` (``conflict_stem``).
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


SOURCE_CHECKSUM = "source-sha256"


def same_image(current: StoredObject, checksum: str, metadata: dict[str, str]) -> bool:
    """True when ``current`` (what a key holds) is the image a put of bytes with SHA-256
    ``checksum`` and ``metadata`` would store: the same bytes, or a file made from the same
    source (equal ``source-sha256`` metadata: the provider's original as spooled, before
    post-processing and signing; a C2PA manifest carries its own time, so a re-made file's
    bytes differ) of the same rendition."""
    if current.checksum == checksum:
        return True
    source = metadata.get(SOURCE_CHECKSUM)
    return bool(source) and current.metadata.get(SOURCE_CHECKSUM) == source and current.metadata.get("rendition") == metadata.get("rendition")


def put_image_file(store: ObjectStore, key: str, data: bytes, *, content_type: str, metadata: dict[str, str]) -> StoredObject:
    """``store.put``, except that a key already holding the same image (``same_image``: an
    earlier attempt's upload, e.g. a run killed between the upload and the ledger's record,
    or a re-run after the database was lost) is adopted as it is: not written again.
    ObjectExistsError when the key holds a different image (nothing is overwritten)."""
    try:
        return store.put(key, data, content_type=content_type, metadata=metadata)
    except ObjectExistsError:
        current = store.head(key)
        if current is None or not same_image(current, sha256_hex(data), metadata):
            raise
        return current


def conflict_stem(stem: str, source_checksum: str) -> str:
    """Where an image goes when its key holds a different image: ``<stem>.conflict-<id8>``,
    ``id8`` the first 8 hex digits of its source's SHA-256 (a re-run of the same image finds
    and adopts it there)."""
    return f"{stem}.conflict-{source_checksum[:8]}"


def store_files(store: ObjectStore, row: ImageRecord, renditions: list[RenditionFile], publishing: PublishingConfig) -> StoredImage:
    """Put row's original (the cleaned one post-processing made, else the spooled bytes),
    ``renditions`` and the provenance sidecar into ``store``; returns what went where.

    Every file carries ``source-sha256``: the SHA-256 of the provider's original as spooled.
    A key that already holds the same image (``same_image``) is adopted, not written again. When
    the original's key holds a different image, nothing is overwritten: this image's files go
    under ``conflict_stem`` and the returned StoredImage says so in ``conflict`` (the caller
    reports it once and records it on the row).

    Writes nothing in the database (the orchestrator records the StoredImage). Raises
    StorageError: ObjectExistsError when a key holds a different image even so (a rendition or
    sidecar of another image: permanent), any other StorageError when the store is unreachable
    or refuses the write (the files stay in the spool).
    """
    assert row.spool_path, f"image {row.idempotency_key} has no spooled original"
    key = base_key(row, publishing)
    source = sha256_hex(Path(row.spool_path).read_bytes())
    metadata = {**object_metadata(row), SOURCE_CHECKSUM: source}
    # the cleaned, provenance-stamped original made by post-processing replaces the raw bytes
    cleaned = next((r for r in renditions if r.name == "original"), None)
    renditions = [r for r in renditions if r.name != "original"]
    original = cleaned.path if cleaned else Path(row.spool_path)
    data = original.read_bytes()
    fmt = {".png": "png", ".jpg": "jpeg", ".webp": "webp", ".avif": "avif"}.get(original.suffix, "png")
    content_type = f"image/{fmt}"
    conflict: str | None = None
    try:
        kept = put_image_file(store, f"{key}{EXTENSIONS[fmt]}", data, content_type=content_type, metadata=metadata)
    except ObjectExistsError as exc:
        taken = f"{key}{EXTENSIONS[fmt]}"
        key = conflict_stem(key, source)
        kept = put_image_file(store, f"{key}{EXTENSIONS[fmt]}", data, content_type=content_type, metadata=metadata)
        conflict = f"store conflict: {taken} already holds a different image ({exc}); this one is stored under {kept.key}"
    width, height = (cleaned.width, cleaned.height) if cleaned else (row.width or 0, row.height or 0)
    files = [StoredFile("original", kept.key, fmt, width, height, kept.size, kept.checksum)]
    for rendition in renditions:
        rendition_key = f"{key}.{rendition.name}{EXTENSIONS[rendition.format]}"
        put = put_image_file(
            store, rendition_key, rendition.path.read_bytes(), content_type=rendition.content_type, metadata={**metadata, "rendition": rendition.name}
        )
        files.append(StoredFile(rendition.name, rendition_key, rendition.format, rendition.width, rendition.height, put.size, put.checksum))
    listing = [
        {"name": f.name, "key": f.storage_key, "format": f.format, "width": f.width, "height": f.height, "bytes": f.bytes, "sha256": f.checksum} for f in files
    ]
    sidecar_key = f"{key}.json"
    put_image_file(store, sidecar_key, sidecar(Provenance.of(row), row=row, files=listing), content_type="application/json", metadata=metadata)
    return StoredImage(kept.key, sidecar_key, tuple(files), conflict)
