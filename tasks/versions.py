"""Versions of an image slot: finding an image, producing a new version (the chain of versions:
storage.ledger.ImageLedger.versions)."""

from __future__ import annotations

import uuid

from sqlmodel import select

from storage.db import Database, ImageRecord


def find_image(db: Database, image_id: str) -> ImageRecord:
    """The row of ``image_id`` (the 12-character id); KeyError naming it when unknown."""
    with db.session() as session:
        row = session.exec(select(ImageRecord).where(ImageRecord.image_id == image_id)).first()
    if row is None:
        raise KeyError(f"no image with id {image_id!r}")
    return row


def produce_planned(pk: int, run_key: str) -> ImageRecord:
    """Take slot ``pk`` as far as run ``run_key`` can (tasks.produce.produce_image with the
    runtime's worker of that run); returns its row."""
    from tasks.produce import produce_image
    from tasks.runtime import get_runtime

    return produce_image(get_runtime().worker(run_key), pk)


def produce_version(pk: int, provider: str | None = None) -> ImageRecord:
    """Generate, post-process and store the planned version ``pk`` (tasks.produce.produce_image),
    with only ``provider`` when given (its chain: that provider alone). ValueError when
    ``provider`` is not enabled."""
    from tasks.runtime import get_runtime

    rt = get_runtime()
    run_key = f"regenerate-{uuid.uuid4().hex[:12]}"
    try:
        if provider:
            rt.use_providers(run_key, [provider])
        produce_planned(pk, run_key)
    finally:
        rt.end_run(run_key)
    return rt.db.get(pk)

