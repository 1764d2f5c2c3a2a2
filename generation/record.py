"""Stage 1 and 7: record. Planned rows before any generation; spool files freed at the end.

``record_planned`` writes one ``planned`` row per slot (template chosen, variation
made, seed fixed) before a provider is called, keyed by the slot's idempotency key;
an existing row is kept as it is, which is what makes a re-run resume. One read of the
slots' existing rows and one write for the new ones (storage/ledger.py ``plan``).
``free_spool`` removes an image's spool files once they are stored.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from domain.model import ImageSlot
from domain.errors import TemplateError
from config.generation import ABConfig
from config.clients import ClientsConfig
from config.imaging import PrivacyConfig
from domain.templates import TemplateLibrary
from storage.db import Database, ImageRecord
from storage.ledger import ImageLedger, PlannedImage
from generation.ab import make_chooser
from generation.select import select_template
from generation.variations import create_variation, request_options
from config.settings import get_settings


def record_planned(
    db: Database,
    library: TemplateLibrary,
    slots: Sequence[ImageSlot],
    *,
    styles: Sequence[str] = (),
    trigger: str = "cli",
    ab: ABConfig | None = None,
    privacy: PrivacyConfig | None = None,
    clients: ClientsConfig | None = None,
) -> list[int]:
    """Primary keys of the rows of ``slots`` (created as ``planned`` where missing).

    All images of one slot share the template chosen for its first image. ``privacy``
    (default: the configuration's) decides whether the prompt may be published
    (``prompt_private`` on the row: template ``embed_prompt``, then the category's).
    ``clients`` (default: the configuration's) names the client of each row (the template's
    client, else its category's: config/clients.py).
    Raises TemplateError when a chosen template is not in the slot's category.
    """
    if privacy is None:
        privacy = get_settings().privacy
    if clients is None:
        clients = get_settings().clients
    ledger = ImageLedger(db)
    existing = ledger.by_keys(slot.idempotency_key for slot in slots)
    chosen: dict[str, str] = {r.slot: r.template for r in existing.values() if r.template}
    new: list[PlannedImage] = []
    recent: dict[date, set[tuple[str, str]]] = {}  # the template rotation reads each previous day once
    for slot in slots:
        if slot.idempotency_key in existing:
            continue
        if slot.slot in chosen:
            template = library.get(chosen[slot.slot])
        else:
            template = select_template(library, slot, db, recent=recent)
        if template.category != slot.category:
            raise TemplateError(f"template {template.name!r} is in category {template.category!r}, not {slot.category!r}")
        chosen.setdefault(slot.slot, template.name)
        chooser = make_chooser(db, template.name, ab) if ab is not None and template.variants else None
        variation = create_variation(template, slot, styles, chooser)
        request = variation.request
        new.append(
            PlannedImage(
                slot=slot,
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
                trigger=trigger,
                tags=(*slot.extra_tags, *template.tags),
                request_options=request_options(template, slot, library.folder),
                prompt_private=not privacy.embeds(template.category, template.embed_prompt),
                client=clients.client_of(template.category, template.name),
            )
        )
    rows = {r.idempotency_key: r for r in ledger.plan(new)} | existing
    pks = [rows[slot.idempotency_key].id for slot in slots]
    assert all(pk is not None for pk in pks)
    return [pk for pk in pks if pk is not None]


def free_spool(row: ImageRecord) -> None:
    """Remove the row's spooled original and its renditions folder (once stored)."""
    if row.spool_path:
        spool = Path(row.spool_path)
        spool.unlink(missing_ok=True)
        shutil.rmtree(spool.with_suffix(""), ignore_errors=True)
