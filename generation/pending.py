"""Uploads left pending by an unreachable store, retried at the start of every run.

An image whose upload failed keeps status ``processed`` with ``upload_pending=True``
and its original in the local spool. Any later run, of any flow or date, first calls
``upload_pending_images``: each such row is claimed (a row another live run holds is
left to it), its renditions are made again from the spooled original (deterministic),
uploaded, and the row closed as ``done`` (or ``placeholder``). A real image then goes
through publishing like any other (``stage``: published, or ``in_review`` when its
category's review is required), so a late upload never skips a review. A store still
down leaves the rows pending for the run after.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from domain.errors import StorageError
from domain.log import get_logger
from config.settings import Settings
from storage.ledger import ClaimState, ImageLedger, ProcessedImage
from storage.objects import ObjectStore
from generation.generate import spool_intact
from imaging.postprocess import make_renditions, sign_published
from imaging.provenance import Provenance
from imaging.watermark import watermark_for
from generation.record import free_spool
from generation.upload import store_files


def upload_pending_images(
    ledger: ImageLedger, store: ObjectStore, settings: Settings, run_key: str, *, stage: Callable[[int], object] | None = None
) -> dict[str, list[str]]:
    """Upload every pending image; ``{"uploaded": [image_id...], "pending": [...], "lost": [...]}``.
    ``stage(pk)`` is called for each real image once it is ``done`` (the publishing step:
    publishing.review.Publisher.stage).

    ``lost``: the spooled original is gone or corrupt (checksum mismatch): the row keeps
    its error; re-running its date makes the image again.
    """
    log = get_logger()
    outcome: dict[str, list[str]] = {"uploaded": [], "pending": [], "lost": []}
    for row in ledger.pending_uploads():
        assert row.id is not None
        if not spool_intact(row):
            log.error("image %s: spooled original %s is missing or corrupt; cannot upload", row.image_id, row.spool_path)
            outcome["lost"].append(row.image_id)
            continue
        pk = row.id
        claim = ledger.claim(pk, run_key)
        if claim.state is not ClaimState.claimed:
            continue
        row = claim.row
        original = Path(row.spool_path or "")
        processed = ProcessedImage(row.quality_score, row.quality_metrics, row.phash, tuple(row.tags), row.duplicate_of)
        try:
            mark = watermark_for(row.image_id, placeholder=bool(row.is_placeholder), config=settings.watermark)
            # the same files post-processing made: published provenance (no private prompt),
            # the watermark, then C2PA credentials (imaging.postprocess.sign_published)
            files = make_renditions(
                original, settings.renditions, original.with_suffix(""), decode=settings.decode, provenance=Provenance.of(row).published(), watermark=mark
            )
            files = sign_published(files, row, settings)
            stored = store_files(store, row, files, settings.publishing)
        except StorageError as exc:
            log.warning("image %s: upload still pending: %s", row.image_id, exc)
            ledger.mark_upload_pending(pk, run_key, f"upload pending: {exc}")
            outcome["pending"].append(row.image_id)
            continue
        if row.is_placeholder:
            ledger.mark_placeholder(pk, run_key, stored, processed, reason="placeholder: no real provider answered; a later run replaces it")
        else:
            ledger.mark_done(pk, run_key, stored, processed)
            if stage is not None:
                stage(pk)
        free_spool(row)
        log.info("image %s: pending upload done", row.image_id)
        outcome["uploaded"].append(row.image_id)
    return outcome
