"""Stage 5: categorize and tag an image.

Category comes from the template. Tags: the category, the slot's extra tags and the
template's tags (stored on the row when it was planned), keywords from the prompt
(words of 4+ letters that are not stop words or photo jargon, first 8) unless the
prompt is private (``embed_prompt: false``: tags are published and sent in webhooks)
or encrypted at rest (``PROMPT_ENCRYPTION_KEY``: tags are stored in clear), and
``placeholder`` for a placeholder image; with ``tagging.clip_model`` configured, the
zero-shot tags of an open_clip model (imaging.tagging). ``categorize_row`` also runs
the near-duplicate check against the published images (imaging.quality).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from imaging.quality import nearest_duplicate
from storage.crypto import cipher
from pathlib import Path
from imaging.decode import decode_image
from imaging.tagging import zero_shot_tags
import uuid
from domain.model import FailureKind
from storage.ledger import ClaimState, ImageLedger, ProcessedImage

if TYPE_CHECKING:
    from config.settings import Settings
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


def categorize(category: str, prompt: str, tags: Iterable[str], *, is_placeholder: bool = False, prompt_words: bool = True) -> list[str]:
    """The image's tag list: category first, then the given tags, then prompt keywords
    (none when ``prompt_words`` is false)."""
    result: list[str] = []
    words = prompt_keywords(prompt) if prompt_words else []
    for tag in [category, *tags, *words, *(["placeholder"] if is_placeholder else [])]:
        tag = tag.strip().lower()
        if tag and tag not in result:
            result.append(tag)
    return result


def published_hashes(db: Database, *, category: str | None = None, exclude_pk: int | None = None) -> list[tuple[str, str]]:
    """``(image_id, phash)`` of every published real image (storage.ledger.ImageLedger.published_hashes)."""

    return ImageLedger(db).published_hashes(category=category, exclude_pk=exclude_pk)


@dataclass(frozen=True)
class Categorized:
    """The image's tags, the published image it nearly duplicates (pHash), and, when the
    near-duplicate check says ``skip``, the reason to skip it."""

    tags: tuple[str, ...]
    duplicate_of: str | None = None
    skip_reason: str | None = None


def categorize_row(row: Any, phash: str | None, settings: Settings, published: Callable[[str | None], list[tuple[str, str]]], image: Any = None) -> Categorized:
    """Tag image ``row`` and check its pHash against the published images (pure: no write).

    Tags: ``categorize`` (no prompt words for a private or encrypted prompt) plus, when ``tagging.clip_model`` is configured, zero-shot tags
    (imaging.tagging) of ``image`` (decoded from the spool when not given).
    Near-duplicate check (``dedup``): a real image whose pHash is within
    ``dedup.max_distance`` bits of one in ``published(category or None)`` gets
    ``duplicate_of``; with ``dedup.action: skip`` also a ``skip_reason``. Placeholders are
    never compared (they are never published as content). Raises ConfigError for a
    missing open_clip or weights file.
    """

    private = bool(getattr(row, "prompt_private", False)) or cipher() is not None
    tags = categorize(row.category, row.prompt or "", row.tags, is_placeholder=row.is_placeholder, prompt_words=not private)
    if settings.tagging.clip_model and settings.tagging.vocabulary and row.spool_path:
        if image is None:
            image = decode_image(Path(row.spool_path), config=settings.decode).image
        tags += [t for t in (tag.lower() for tag in zero_shot_tags(image, settings.tagging)) if t not in tags]
    dedup = settings.dedup
    if dedup.enabled and phash and not row.is_placeholder:
        match = nearest_duplicate(phash, published(row.category if dedup.scope == "category" else None), dedup.max_distance)
        if match is not None:
            other, distance = match
            if dedup.action == "skip":
                reason = f"near-duplicate of published image {other} (pHash Hamming distance {distance} <= dedup.max_distance {dedup.max_distance})"
                return Categorized(tuple(tags), other, reason)
            return Categorized(tuple(tags), other)
    return Categorized(tuple(tags))


def categorize_image(db: Database, pk: int, settings: Settings) -> list[str]:
    """Tag image row ``pk`` and check it against the published images, outside a flow
    (tools, tests): ``categorize_row``, then the row keeps its status with its tags and
    ``duplicate_of``, or becomes ``skipped`` (a near-duplicate with ``dedup.action: skip``).
    Returns the tags."""

    ledger = ImageLedger(db)
    run_key = f"local-{uuid.uuid4().hex[:12]}"
    claim = ledger.claim(pk, run_key)
    if claim.state is not ClaimState.claimed:
        raise RuntimeError(f"image {claim.row.idempotency_key} is {claim.state.value}")
    row = claim.row
    found = categorize_row(row, row.phash, settings, lambda category: ledger.published_hashes(category=category, exclude_pk=pk))
    processed = ProcessedImage(row.quality_score, row.quality_metrics, row.phash, found.tags, found.duplicate_of)
    if found.skip_reason:
        ledger.mark_skipped(pk, run_key, FailureKind.duplicate, found.skip_reason, duplicate_of=found.duplicate_of, processed=processed)
    else:
        ledger.mark_processed(pk, run_key, processed)
        ledger.release(pk, run_key)
    return list(found.tags)
