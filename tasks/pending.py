"""Uploads left pending by an unreachable store, retried at the start of every run.

An image whose upload failed keeps status ``processed`` with ``upload_pending=True``
(the status machine stays forward-only) and its original in the local spool. Any
later run, of any flow or date, first calls ``upload_pending_images``: renditions are
made again from the spooled original (deterministic), uploaded, and the row closed
as ``done``. A store still down leaves the rows pending for the run after.
"""

from __future__ import annotations

from pathlib import Path

from sqlmodel import col, select

from core.domain import ImageStatus
from core.errors import StorageError
from core.log import get_logger
from core.settings import Settings
from storage.db import Database, ImageRecord
from storage.objects import ObjectStore
from tasks.generate import spool_intact
from tasks.postprocess import make_renditions
from tasks.record import mark_done
from tasks.upload import upload_image


def pending_uploads(db: Database) -> list[ImageRecord]:
    """Rows waiting for an upload (``upload_pending`` and not yet uploaded), oldest first."""
    with db.session() as session:
        query = select(ImageRecord).where(ImageRecord.upload_pending == True,  # noqa: E712 - SQL expression
                                          ImageRecord.status == ImageStatus.processed.value)
        return list(session.exec(query.order_by(col(ImageRecord.id))))


def upload_pending_images(db: Database, store: ObjectStore, settings: Settings) -> dict[str, list[str]]:
    """Upload every pending image; ``{"uploaded": [image_id...], "pending": [...], "lost": [...]}``.

    ``lost``: the spooled original is gone or corrupt (checksum mismatch): the row keeps
    its error; re-running its date makes the image again.
    """
    log = get_logger()
    outcome: dict[str, list[str]] = {"uploaded": [], "pending": [], "lost": []}
    for row in pending_uploads(db):
        assert row.id is not None
        if not spool_intact(row):
            log.error("image %s: spooled original %s is missing or corrupt; cannot upload", row.image_id, row.spool_path)
            outcome["lost"].append(row.image_id)
            continue
        original = Path(row.spool_path or "")
        try:
            files = make_renditions(original, settings.renditions, original.with_suffix(""))
            upload_image(db, store, row.id, files)
        except StorageError as exc:
            log.warning("image %s: upload still pending: %s", row.image_id, exc)
            outcome["pending"].append(row.image_id)
            continue
        mark_done(db, row.id)
        log.info("image %s: pending upload done", row.image_id)
        outcome["uploaded"].append(row.image_id)
    return outcome
