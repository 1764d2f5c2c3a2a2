"""Versions of an image slot: finding an image, producing a new version (the chain of versions:
storage.ledger.ImageLedger.versions)."""

from __future__ import annotations

from sqlmodel import select

from storage.db import Database, ImageRecord


def find_image(db: Database, image_id: str) -> ImageRecord:
    """The row of ``image_id`` (the 12-character id); KeyError naming it when unknown."""
    with db.session() as session:
        row = session.exec(select(ImageRecord).where(ImageRecord.image_id == image_id)).first()
    if row is None:
        raise KeyError(f"no image with id {image_id!r}")
    return row
