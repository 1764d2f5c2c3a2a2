"""What a flow run shows in the Prefect UI: the run summary table and the gallery.

* ``outcome_of(image)``: an image's outcome in words, after core.domain.ImageStatus:
  ``done`` (a real image, stored), ``placeholder`` (status ``placeholder``, or made by a
  placeholder provider: stored under ``placeholder/``, never published), ``failed``,
  ``blocked``, ``skipped`` or ``unfinished`` (a status a later run resumes from, e.g. an
  upload still pending, or a slot another run holds).
* ``summary_words(images)``: ``"6 images: 2 done, 4 placeholders, 0 failed, 0 blocked,
  0 skipped; USD 0.12"``, the summary artifact's description and the CLI's title line.
* ``gallery_markdown`` / ``publish_gallery``: one markdown row per image with a
  thumbnail of its smallest rendition. A browser shows an ``<img>`` of a page served over
  http(s) only from http(s) or ``data:`` URLs (a ``file://`` image is blocked: Chromium's
  "Not allowed to load local resource"), so a store whose URLs are http(s) (S3:
  presigned GET URLs) is linked, and a local folder's thumbnail is inlined as a
  ``data:image/jpeg`` URI, re-encoded to at most ``THUMB_SIDE`` pixels and
  ``THUMB_MAX_BYTES`` bytes, within ``GALLERY_MAX_BYTES`` for the whole artifact.

Images are duck-typed (``tasks.pipeline.ImageSummary``: image_id, slot, template,
provider, placeholder, cost_usd, seconds, status, storage_key, error) so this module
does not import the pipeline.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlparse

from core.errors import StorageError

#: The outcomes, in the order they are counted and printed.
OUTCOMES = ("done", "placeholder", "failed", "blocked", "skipped", "unfinished")
#: Largest side (pixels) of an inlined thumbnail.
THUMB_SIDE = 192
#: Largest inlined thumbnail (bytes of JPEG, before base64).
THUMB_MAX_BYTES = 24_000
#: Largest gallery markdown (bytes); past it thumbnails are left out, each row says so.
GALLERY_MAX_BYTES = 1_500_000


def outcome_of(image: Any) -> str:
    """``done``, ``placeholder``, ``failed``, ``blocked``, ``skipped`` or ``unfinished``."""
    status = str(getattr(image.status, "value", image.status))
    if status == "placeholder":  # ImageStatus.placeholder: a stand-in while real providers were down
        return "placeholder"
    if status == "done":
        return "placeholder" if image.placeholder else "done"
    if status in ("failed", "blocked", "skipped"):
        return status
    return "unfinished"


def count_outcomes(images: Iterable[Any]) -> dict[str, int]:
    """Every outcome of OUTCOMES (in that order) with its count; ``unfinished`` only when > 0."""
    counts = dict.fromkeys(OUTCOMES, 0)
    for image in images:
        counts[outcome_of(image)] += 1
    if not counts["unfinished"]:
        del counts["unfinished"]
    return counts


def _plural(word: str, count: int) -> str:
    return f"{word}s" if word == "placeholder" and count != 1 else word


def outcome_words(counts: dict[str, int]) -> str:
    """``{"done": 2, "placeholder": 4}`` -> ``"2 done, 4 placeholders"``."""
    return ", ".join(f"{n} {_plural(word, n)}" for word, n in counts.items())


def summary_words(images: Sequence[Any], cost_usd: float | None = None) -> str:
    """``"6 images: 2 done, 4 placeholders, 0 failed, 0 blocked, 0 skipped; USD 0.12"``
    (``unfinished`` appears when some image waits for a later run)."""
    counts = count_outcomes(images)
    cost = sum(float(i.cost_usd) for i in images) if cost_usd is None else cost_usd
    parts = outcome_words(counts)
    return f"{len(images)} image{'' if len(images) == 1 else 's'}: {parts}; USD {cost:.2f}"


def summary_rows(images: Iterable[Any]) -> list[dict[str, Any]]:
    """The summary table: one row per image, its outcome in words, stored key or error."""
    return [{"image_id": i.image_id, "slot": i.slot, "template": i.template, "provider": i.provider,
             "outcome": outcome_of(i), "status": i.status, "cost_usd": i.cost_usd, "seconds": i.seconds,
             "storage_key": i.storage_key, "error": (i.error or "")[:300] or None} for i in images]


def publish_summary(flow_name: str, images: Sequence[Any]) -> None:
    """The ``<flow>-run-summary`` table artifact, described in words (``summary_words``)."""
    from prefect.artifacts import create_table_artifact

    create_table_artifact(key=f"{flow_name}-run-summary", table=summary_rows(images),
                          description=f"{flow_name}: {summary_words(images)}")


def thumbnail_data_uri(data: bytes, side: int = THUMB_SIDE, max_bytes: int = THUMB_MAX_BYTES) -> str | None:
    """``data`` (any image Pillow opens) as a ``data:image/jpeg;base64,...`` URI at most
    ``side`` pixels and ``max_bytes`` bytes (lower JPEG quality, then a smaller side,
    until it fits); None when the bytes do not decode."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as opened:
            picture = opened.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    size = side
    while size >= 32:
        copy = picture.copy()
        copy.thumbnail((size, size))
        for quality in (75, 60, 45, 30):
            buffer = io.BytesIO()
            copy.save(buffer, "JPEG", quality=quality, optimize=True)
            if buffer.tell() <= max_bytes:
                return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
        size //= 2
    return None


def _renditions_of(db: Any, image_id: str) -> list[Any]:
    from sqlmodel import select

    from storage.db import ImageRecord, RenditionRecord

    with db.session() as session:
        row = session.exec(select(ImageRecord).where(ImageRecord.image_id == image_id)).first()
        if row is None:
            return []
        return list(session.exec(select(RenditionRecord).where(RenditionRecord.image_pk == row.id)).all())


def _is_web_url(url: str) -> bool:
    return urlparse(url).scheme in ("http", "https")


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return " ".join(str(text).replace("|", "\\|").split())


def gallery_markdown(flow_name: str, images: Sequence[Any], store: Any = None, db: Any = None) -> str:
    """A markdown gallery: a title line in words, then one row per image with a thumbnail
    of its smallest rendition (see the module docstring), outcome, and where it went.
    ``store`` / ``db`` default to the runtime's."""
    if store is None or db is None:
        from tasks.runtime import get_runtime

        rt = get_runtime()
        store, db = store or rt.store, db or rt.db
    lines = [f"### {flow_name}: {summary_words(images)}", "",
             "| thumbnail | image | slot | template | provider | outcome | stored at / error |",
             "|---|---|---|---|---|---|---|"]
    used = sum(len(line) + 1 for line in lines)
    for image in images:
        thumb, where = "-", _cell((image.error or "-")[:160])
        if image.storage_key:
            renditions = _renditions_of(db, image.image_id)
            smallest = min(renditions, key=lambda r: r.width * r.height) if renditions else None
            key = smallest.storage_key if smallest is not None else image.storage_key
            try:
                url = store.url(key)
            except StorageError:
                url = ""
            if _is_web_url(url):
                thumb = f"![{image.image_id}]({url})"
                original = store.url(image.storage_key)
                where = f"[{_cell(image.storage_key)}]({original})"
            else:
                where = f"`{_cell(image.storage_key)}`"
                try:
                    uri = thumbnail_data_uri(store.get(key))
                except StorageError:
                    uri = None
                if uri is None:
                    thumb = "(thumbnail unreadable)"
                elif used + len(uri) > GALLERY_MAX_BYTES:
                    thumb = "(thumbnail left out: gallery size cap)"
                else:
                    thumb = f"![{image.image_id}]({uri})"
        provider = (image.provider or "-") + (" (placeholder)" if image.placeholder else "")
        line = (f"| {thumb} | {image.image_id} | {_cell(image.slot)} | {_cell(image.template or '-')} | "
                f"{_cell(provider)} | {outcome_of(image)} | {where} |")
        used += len(line) + 1
        lines.append(line)
    return "\n".join(lines)


def publish_gallery(flow_name: str, images: Sequence[Any], store: Any = None, db: Any = None) -> None:
    """Publish ``gallery_markdown`` as the ``<flow>-gallery`` markdown artifact."""
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(markdown=gallery_markdown(flow_name, images, store, db), key=f"{flow_name}-gallery",
                             description=f"{flow_name}: thumbnails of the {len(images)} images")
