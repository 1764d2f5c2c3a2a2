"""Stage 5: categorize and tag an image.

Category comes from the template. Tags: the category, the slot's extra tags and the
template's tags (stored on the row when it was planned), keywords from the prompt
(words of 4+ letters that are not stop words or photo jargon, first 8), and
``placeholder`` for a placeholder image; with ``tagging.clip_model`` configured, the
zero-shot tags of an open_clip model (tasks.tagging). ``categorize_image`` also runs
the near-duplicate check against the published images (tasks.quality).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.settings import Settings
    from storage.db import Database

_STOP = set(
    """
    with from that this into onto over under above below their there about after before
    while where which very more most some such than then them they have been being were
    also just like only other your ours its high detail details detailed photo photograph
    photography shot image picture style light lighting soft natural golden hour studio
    composition minimalist shallow depth field wide angle close macro crisp clean bright
    warm cool sharp focus background backdrop quality
    """.split()
)
_WORD = re.compile(r"[a-z][a-z-]{3,}")


def prompt_keywords(prompt: str, limit: int = 8) -> list[str]:
    """Distinct content words of ``prompt``, in order of appearance."""
    seen: list[str] = []
    for word in _WORD.findall(prompt.lower()):
        word = word.strip("-")
        if len(word) >= 4 and word not in _STOP and word not in seen:
            seen.append(word)
        if len(seen) >= limit:
            break
    return seen


def categorize(category: str, prompt: str, tags: Iterable[str], *, is_placeholder: bool = False) -> list[str]:
    """The image's tag list: category first, then the given tags, then prompt keywords."""
    result: list[str] = []
    for tag in [category, *tags, *prompt_keywords(prompt), *(["placeholder"] if is_placeholder else [])]:
        tag = tag.strip().lower()
        if tag and tag not in result:
            result.append(tag)
    return result


def published_hashes(db: Database, *, category: str | None = None, exclude_pk: int | None = None) -> list[tuple[str, str]]:
    """``(image_id, phash)`` of every published image (status uploaded or done, a real
    image, hashed), of ``category`` when given."""
    from sqlmodel import select

    from core.domain import ImageStatus
    from storage.db import ImageRecord

    published = [ImageStatus.uploaded.value, ImageStatus.done.value]
    with db.session() as session:
        query = select(ImageRecord.id, ImageRecord.image_id, ImageRecord.phash).where(
            ImageRecord.status.in_(published),  # type: ignore[attr-defined]
            ImageRecord.phash.is_not(None),  # type: ignore[union-attr]
            ImageRecord.is_placeholder == False,  # noqa: E712
        )
        if category:
            query = query.where(ImageRecord.category == category)
        rows = session.exec(query).all()
    return [(image_id, phash) for pk, image_id, phash in rows if pk != exclude_pk and phash is not None]


def categorize_image(db: Database, pk: int, settings: Settings) -> list[str]:
    """Tag image row ``pk`` and check it against the published images.

    Tags: ``categorize`` plus, when ``tagging.clip_model`` is configured, zero-shot
    tags (tasks.tagging). Near-duplicate check (``dedup``): a real image whose pHash is
    within ``dedup.max_distance`` bits of a published one gets ``duplicate_of``; with
    ``dedup.action: skip`` the row becomes ``skipped`` with the reason and is never
    uploaded. Placeholders are never compared (they are never published as content).
    Returns the tags. Raises ConfigError for a missing open_clip or weights file.
    """
    from pathlib import Path

    from core.domain import ImageStatus
    from tasks.quality import nearest_duplicate

    row = db.get(pk)
    tags = categorize(row.category, row.prompt or "", row.tags, is_placeholder=row.is_placeholder)
    if settings.tagging.clip_model and settings.tagging.vocabulary and row.spool_path:
        from tasks.decode import decode_image
        from tasks.tagging import zero_shot_tags

        image = decode_image(Path(row.spool_path), config=settings.decode).image
        tags += [t for t in (tag.lower() for tag in zero_shot_tags(image, settings.tagging)) if t not in tags]
    status = ImageStatus(row.status)
    dedup = settings.dedup
    if dedup.enabled and row.phash and not row.is_placeholder and not status.terminal:
        scope = row.category if dedup.scope == "category" else None
        match = nearest_duplicate(row.phash, published_hashes(db, category=scope, exclude_pk=pk), dedup.max_distance)
        if match is not None:
            other, distance = match
            if dedup.action == "skip":
                reason = (f"near-duplicate of published image {other} (pHash Hamming distance {distance} "
                          f"<= dedup.max_distance {dedup.max_distance})")
                db.advance(pk, ImageStatus.skipped, tags=tags, duplicate_of=other, error=reason)
                return tags
            db.advance(pk, status, tags=tags, duplicate_of=other)
            return tags
    db.advance(pk, status, tags=tags)
    return tags
