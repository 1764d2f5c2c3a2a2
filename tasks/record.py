"""Stage 7: record. Planned rows before any generation; the final ``done`` after upload.

``record_planned`` writes one ``planned`` row per slot (template chosen, variation
made, seed fixed) before a provider is called, keyed by the slot's idempotency key;
an existing row is kept as it is, which is what makes a re-run resume. ``mark_done``
closes a row once its files are stored and frees its spool files.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from core.domain import ImageSlot, ImageStatus
from core.errors import TemplateError
from core.settings import ABConfig, PrivacyConfig
from core.templates import TemplateLibrary
from storage.db import Database, ImageRecord
from tasks.select import select_template
from tasks.variations import create_variation, request_options
from tasks.ab import make_chooser


def record_planned(
    db: Database, library: TemplateLibrary, slots: Sequence[ImageSlot], *, styles: Sequence[str] = (), trigger: str = "cli",
    ab: ABConfig | None = None, privacy: PrivacyConfig | None = None,
) -> list[int]:
    """Primary keys of the rows of ``slots`` (created as ``planned`` where missing).

    All images of one slot share the template chosen for its first image. ``privacy``
    (default: the configuration's) decides whether the prompt may be published
    (``prompt_private`` on the row: template ``embed_prompt``, then the category's).
    """
    if privacy is None:
        from core.settings import get_settings

        privacy = get_settings().privacy
    pks: list[int] = []
    chosen: dict[str, str] = {}
    for slot in slots:
        existing = db.images(key_prefix=slot.idempotency_key)
        row = next((r for r in existing if r.idempotency_key == slot.idempotency_key), None)
        if row is None:
            if slot.slot in chosen:
                template = library.get(chosen[slot.slot])
            else:
                template = select_template(library, slot, db)
            if template.category != slot.category:
                raise TemplateError(f"template {template.name!r} is in category {template.category!r}, not {slot.category!r}")
            chooser = make_chooser(db, template.name, ab) if ab is not None and template.variants else None
            variation = create_variation(template, slot, styles, chooser)
            request = variation.request
            row = db.ensure_planned(
                slot,
                trigger=trigger,
                template=template.name,
                template_version=template.version,
                variant=variation.variant,
                prompt=request.prompt,
                negative_prompt=request.negative_prompt,
                width=request.width,
                height=request.height,
                num_inference_steps=request.num_inference_steps,
                guidance_scale=request.guidance_scale,
                seed=request.seed,
                tags=[*slot.extra_tags, *template.tags],
                request_options=request_options(template, slot, library.folder),
                prompt_private=not privacy.embeds(template.category, template.embed_prompt),
            )
        if row.template:
            chosen.setdefault(slot.slot, row.template)
        assert row.id is not None
        pks.append(row.id)
    return pks


def mark_done(db: Database, pk: int) -> ImageRecord:
    """Row ``pk`` -> ``done``; its spool files (original and renditions) are removed."""
    row = db.advance(pk, ImageStatus.done)
    if row.spool_path:
        spool = Path(row.spool_path)
        spool.unlink(missing_ok=True)
        shutil.rmtree(spool.with_suffix(""), ignore_errors=True)
    return row
