"""The thin Prefect tasks over the stage functions, and the per-image orchestration.

Tasks take only small, hashable arguments (row primary keys, a run key) and find
their resources through ``tasks.runtime.get_runtime()``. Caching is off
(``NO_CACHE``): exactly-once comes from our idempotency keys and the forward-only
status of each row, not from Prefect's cache. ``run_images`` is called inside a flow:
it records the planned rows, runs one ``produce-image`` task per image (at most
``concurrency`` at once, an in-process semaphore), evaluates alerts and publishes the
run summary artifact.
"""

from __future__ import annotations

import os
import threading
import uuid
from uuid import UUID
from dataclasses import asdict, dataclass
from typing import Any

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed

from core.domain import ImageSlot, ImageStatus
from core.errors import ContentPipelineError
from core.log import get_logger
from storage.db import ImageRecord
from tasks import alerts as alert_rules
from tasks.categorize import categorize, categorize_image  # noqa: F401  (categorize: kept for importers)
from tasks.generate import generate_image
from tasks.postprocess import RenditionFile, make_renditions, postprocess_image  # noqa: F401
from tasks.record import mark_done, record_planned
from tasks.review import publish_or_review
from tasks.runtime import get_runtime
from tasks.upload import upload_image

_semaphores: dict[int, threading.BoundedSemaphore] = {}
_semaphores_lock = threading.Lock()


def _semaphore(size: int) -> threading.BoundedSemaphore:
    with _semaphores_lock:
        return _semaphores.setdefault(size, threading.BoundedSemaphore(size))


@dataclass(frozen=True)
class ImageSummary:
    """One line of the run summary (cost USD, seconds, stored key)."""

    image_id: str
    slot: str
    template: str | None
    provider: str | None
    placeholder: bool
    cost_usd: float
    seconds: float
    status: str
    storage_key: str | None
    error: str | None

    @classmethod
    def of(cls, row: ImageRecord) -> ImageSummary:
        return cls(row.image_id, f"{row.slot}#{row.slot_index}", row.template, row.provider, row.is_placeholder,
                   round(row.cost_usd, 4), round(row.seconds, 3), row.status, row.storage_key, row.error)


@task(name="plan-images", cache_policy=NO_CACHE)
def plan_images_task(slots: list[ImageSlot], trigger: str) -> list[int]:
    rt = get_runtime()
    return record_planned(rt.db, rt.library, slots, styles=rt.settings.styles, trigger=trigger, ab=rt.settings.ab)


@task(name="generate", cache_policy=NO_CACHE, task_run_name="generate-{pk}")
def generate_task(pk: int, run_key: str) -> ImageRecord:
    rt = get_runtime()
    return generate_image(rt.db, rt.chain(run_key), pk, spool_dir=rt.settings.spool_dir, policy=rt.settings.policy)


@task(name="post-process", cache_policy=NO_CACHE, task_run_name="post-process-{pk}")
def postprocess_task(pk: int) -> list[RenditionFile]:
    rt = get_runtime()
    # safe decode (a failure sets the row failed with the typed error), safety classifier,
    # renditions with provenance, quality score and pHash: tasks.postprocess.postprocess_image
    return postprocess_image(rt.db, pk, rt.settings)


@task(name="categorize", cache_policy=NO_CACHE, task_run_name="categorize-{pk}")
def categorize_task(pk: int) -> list[str]:
    rt = get_runtime()
    # tags (+ zero-shot when configured) and the near-duplicate check: tasks.categorize.categorize_image
    return categorize_image(rt.db, pk, rt.settings)


@task(name="upload", cache_policy=NO_CACHE, task_run_name="upload-{pk}")
def upload_task(pk: int, renditions: list[RenditionFile]) -> ImageRecord:
    rt = get_runtime()
    return upload_image(rt.db, rt.store, pk, renditions)


@task(name="record", cache_policy=NO_CACHE, task_run_name="record-{pk}")
def record_task(pk: int) -> ImageRecord:
    return mark_done(get_runtime().db, pk)


def produce_image(pk: int, run_key: str) -> ImageSummary:
    """Take row ``pk`` from wherever it stands to a terminal status.

    A ContentPipelineError in a later stage (a bad file, a storage outage) is written on
    the row, whose status stays where it was: the next run picks it up from there.
    """
    rt = get_runtime()
    log = get_logger()
    with _semaphore(rt.settings.concurrency):
        row = rt.db.get(pk)
        if ImageStatus(row.status).terminal:
            return ImageSummary.of(row)
        log.info("slot %s#%s image %s (%s) starts at status %s", row.slot, row.slot_index, row.image_id,
                 row.idempotency_key, row.status)
        try:
            row = generate_task(pk, run_key)
            if ImageStatus(row.status).terminal:
                log.warning("slot %s#%s image %s ended %s: %s", row.slot, row.slot_index, row.image_id, row.status, row.error)
                return ImageSummary.of(row)
            if ImageStatus(row.status).rank < ImageStatus.uploaded.rank:
                renditions = postprocess_task(pk)
                if not ImageStatus(rt.db.get(pk).status).terminal:  # blocked by the image classifier
                    categorize_task(pk)
                row = rt.db.get(pk)
                if ImageStatus(row.status).terminal:  # blocked, or a near-duplicate skipped: never uploaded
                    log.warning("image %s ended %s: %s", row.image_id, row.status, row.error)
                    return ImageSummary.of(row)
                upload_task(pk, renditions)
            row = record_task(pk)
            log.info("slot %s#%s image %s done: %s via %s", row.slot, row.slot_index, row.image_id, row.storage_key,
                     row.provider)
        except ContentPipelineError as exc:
            log.error("slot %s#%s image %s stopped at %s: %s", row.slot, row.slot_index, row.image_id,
                      rt.db.get(pk).status, exc)
            row = rt.db.advance(pk, ImageStatus(rt.db.get(pk).status), error=str(exc)[:2000])
        return ImageSummary.of(row)


produce_image_task = task(name="produce-image", cache_policy=NO_CACHE, task_run_name="image-{pk}")(produce_image)


@task(name="upload-pending", cache_policy=NO_CACHE)
def upload_pending_task() -> dict[str, list[str]]:
    """Retry the uploads earlier runs left pending (store unreachable)."""
    from tasks.pending import upload_pending_images

    rt = get_runtime()
    return upload_pending_images(rt.db, rt.store, rt.settings)


@task(name="expire-reservations", cache_policy=NO_CACHE)
def expire_reservations_task() -> list[int]:
    """Close budget reservations a killed run never settled (counted at their estimate)."""
    rt = get_runtime()
    return rt.budget.expire_stale(rt.settings.budget.reservation_timeout_s)


@task(name="alerts", cache_policy=NO_CACHE)
def alerts_task() -> list[str]:
    rt = get_runtime()
    raised = alert_rules.dispatch_alerts(
        rt.db, rt.settings, rt.secrets, alert_rules.evaluate_rules(rt.db, rt.settings, rt.budget)
    )
    return [a.title for a in raised]


def current_trigger() -> str:
    """Who started this run: ``schedule``, ``deployment`` (UI / API), or the caller's
    ``CONTENT_PIPELINE_TRIGGER`` (the CLI sets ``cli``), else ``python``."""
    from prefect.runtime import deployment, flow_run

    if deployment.id:
        return "schedule" if "auto-scheduled" in (flow_run.tags or []) else "deployment"
    return os.environ.get("CONTENT_PIPELINE_TRIGGER", "python")


@dataclass(frozen=True)
class RunSummary:
    """What a flow run made: one ImageSummary per image, totals in USD and seconds."""

    flow: str
    images: list[ImageSummary]
    output_dir: str
    database_url: str
    alerts: list[str]

    @property
    def cost_usd(self) -> float:
        return round(sum(i.cost_usd for i in self.images), 4)

    def counts(self) -> dict[str, int]:
        result: dict[str, int] = {}
        for image in self.images:
            result[image.status] = result.get(image.status, 0) + 1
        return result


def run_images(flow_name: str, slots: list[ImageSlot]) -> RunSummary:
    """Plan, produce, alert and summarise ``slots`` inside the current flow run."""
    from prefect.runtime import flow_run

    rt = get_runtime()
    run_key = str(flow_run.id or uuid.uuid4())
    try:
        expire_reservations_task()
        upload_pending_task()
        pks = plan_images_task(slots, current_trigger())
        progress = ProgressReporter(flow_name, len(pks))
        futures = [produce_image_task.submit(pk, run_key) for pk in pks]
        for future in as_completed(futures):
            progress.image_finished(future.result())
        images = [f.result() for f in futures]
        # publishing: publish the stored images or send them to review (a deployment run suspends for it)
        images = [ImageSummary.of(row) for row in publish_or_review(pks, run_key)]
    finally:
        rt.end_run(run_key)
    raised = alerts_task()
    summary = RunSummary(flow_name, images, str(rt.settings.output_dir), _safe_db_url(rt.settings.database_url or ""), raised)
    create_table_artifact(
        key=f"{flow_name}-run-summary",
        table=[{k: v for k, v in asdict(i).items() if k in ("image_id", "template", "provider", "cost_usd", "seconds", "status", "storage_key")}
               for i in images],
        description=f"{flow_name}: {len(images)} images, USD {summary.cost_usd:.2f}, {summary.counts()}",
    )
    publish_gallery(flow_name, images)
    return summary


def _safe_db_url(url: str) -> str:
    """The database URL with any password masked."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparseable URL)"


class ProgressReporter:
    """The run's progress artifact (``<flow>-progress``, percent of images finished),
    updated each time an image reaches a terminal or resumable status."""

    def __init__(self, flow_name: str, total: int) -> None:
        from prefect.artifacts import create_progress_artifact

        self.total = total
        self.finished = 0
        self.counts: dict[str, int] = {}
        artifact_id = create_progress_artifact(
            progress=0.0 if total else 100.0, key=f"{flow_name}-progress",
            description=f"{flow_name}: 0 of {total} images finished",
        )
        assert isinstance(artifact_id, UUID)  # sync_compatible: a value, not a coroutine, in a sync flow
        self.artifact_id = artifact_id

    def image_finished(self, image: ImageSummary) -> float:
        """Count ``image``; return the new progress in percent (0..100)."""
        from prefect.artifacts import update_progress_artifact

        self.finished += 1
        self.counts[image.status] = self.counts.get(image.status, 0) + 1
        percent = round(100.0 * self.finished / max(self.total, 1), 1)
        get_logger().info("progress %s/%s (%.0f%%): slot %s image %s is %s", self.finished, self.total, percent,
                          image.slot, image.image_id, image.status)
        update_progress_artifact(self.artifact_id, progress=percent,
                                 description=f"{self.finished} of {self.total} images finished: {self.counts}")
        return percent


def gallery_markdown(flow_name: str, images: list[ImageSummary]) -> str:
    """A markdown gallery: one row per image with its smallest rendition as thumbnail.

    Links come from the object store (``store.url(key)``): presigned HTTPS URLs for an
    S3 store, ``file://`` paths for a local folder (the path is printed too, since a
    browser may refuse to show ``file://`` images inside an ``http://`` page).
    """
    rt = get_runtime()
    lines = [f"# {flow_name}: {len(images)} images", "",
             "| thumbnail | image | slot | template | provider | status | file |",
             "|---|---|---|---|---|---|---|"]
    for image in images:
        thumb, original = "", ""
        if image.storage_key:
            renditions = _renditions_of(image.image_id)
            smallest = min(renditions, key=lambda r: r.width * r.height) if renditions else None
            if smallest is not None:
                thumb = f"![{image.image_id}]({rt.store.url(smallest.storage_key)})"
            original = f"[{image.storage_key}]({rt.store.url(image.storage_key)})"
        lines.append(f"| {thumb or '-'} | {image.image_id} | {image.slot} | {image.template or '-'} | "
                     f"{image.provider or '-'}{' (placeholder)' if image.placeholder else ''} | {image.status} | "
                     f"{original or (image.error or '-')[:120]} |")
    return "\n".join(lines)


def _renditions_of(image_id: str) -> list[Any]:
    from sqlmodel import select

    from storage.db import RenditionRecord

    rt = get_runtime()
    with rt.db.session() as session:
        row = session.exec(select(ImageRecord).where(ImageRecord.image_id == image_id)).first()
        if row is None:
            return []
        return list(session.exec(select(RenditionRecord).where(RenditionRecord.image_pk == row.id)).all())


def publish_gallery(flow_name: str, images: list[ImageSummary]) -> None:
    """Publish ``gallery_markdown`` as the ``<flow>-gallery`` markdown artifact."""
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(markdown=gallery_markdown(flow_name, images), key=f"{flow_name}-gallery",
                             description=f"{flow_name}: thumbnails of the {len(images)} images")
