"""The Prefect layer of a run: one task per image over tasks/produce.py, and the run's end.

``run_images`` is called inside a flow. It closes what dead runs left (budget
reservations whose lease expired, uploads left pending), records the planned rows, runs
one ``produce-image`` task per image (the whole per-image process: claim, generate,
post-process, categorize, upload, record), evaluates alerts and publishes the run
summary and gallery artifacts. Tasks take only small, hashable arguments (row primary
keys, a run key) and find their resources through ``tasks.runtime.get_runtime()``.
Caching is off (``NO_CACHE``): exactly-once comes from the claims and idempotency keys
of storage/ledger.py, not from Prefect's cache.

Once produced, the images are published or sent to review (tasks.review.publish_or_review,
in the flow body: a run from a deployment suspends there until a person decides).

The run's end tells the truth: Completed only when every planned image is ``done`` as
real content (published), rejected or superseded by a reviewer, or waiting ``in_review``
(a run outside a deployment does not wait for the reviewer; its summary says how many
wait); otherwise the flow run ends Failed with a message counting the images that are
not (placeholders, failures, blocked, skipped, approved but not published, held by
another run), so that automations fire, and calling the flow raises IncompleteRunError
carrying the summary.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed

from core.domain import ImageSlot, ImageStatus
from core.errors import ContentPipelineError
from core.log import get_logger, image_line
from storage.db import ImageRecord
from tasks import alerts as alert_rules
from tasks.artifacts import (count_outcomes, gallery_markdown, outcome_of, outcome_words,  # noqa: F401
                             publish_gallery, publish_summary)
from tasks.batching import generate_batches_task
from tasks.produce import produce_image
from tasks.record import record_planned
from tasks.review import publish_or_review
from tasks.runtime import get_runtime


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

    @property
    def done(self) -> bool:
        """Done as real content (not a placeholder): published, or stored when nothing publishes."""
        return self.status == ImageStatus.done.value and not self.placeholder

    @property
    def decided(self) -> bool:
        """A person's review decision ended it: ``rejected`` (also the version a regenerate
        replaced) or ``superseded`` by a newer published version. Not a failure."""
        return self.status in (ImageStatus.rejected.value, ImageStatus.superseded.value)

    @property
    def waiting(self) -> bool:
        """Made as real content and waiting for a person's review (``in_review``)."""
        return self.status == ImageStatus.in_review.value


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
        """Images per outcome in words: done, placeholder, failed, blocked, skipped (tasks/artifacts.py)."""
        return count_outcomes(self.images)

    @property
    def complete(self) -> bool:
        """Every planned image is done as real content, decided by a reviewer (rejected,
        superseded) or waiting for one (``in_review``: nothing more the run can do)."""
        return all(i.done or i.decided or i.waiting for i in self.images)

    def verdict(self) -> str:
        """One line: ``8 of 8 images done``, ``6 of 8 images done, 1 rejected, 1 waits for review``
        or ``3 of 8 images not done as real content: 2 placeholder, 1 failed``."""
        missing = [i for i in self.images if not (i.done or i.decided or i.waiting)]
        if not missing:
            line = f"{sum(i.done for i in self.images)} of {len(self.images)} images done"
            decided = {s: sum(i.status == s for i in self.images) for s in ("rejected", "superseded")}
            line += "".join(f", {n} {s}" for s, n in decided.items() if n)
            waiting = sum(i.waiting for i in self.images)
            if waiting:
                line += f", {waiting} wait{'s' if waiting == 1 else ''} for review (content-pipeline review list)"
            return line
        by_status: dict[str, int] = {}
        for image in missing:
            key = image.status if image.status in {s.value for s in ImageStatus if s.terminal} else "held by another run"
            by_status[key] = by_status.get(key, 0) + 1
        detail = ", ".join(f"{n} {status}" for status, n in sorted(by_status.items()))
        return f"{len(missing)} of {len(self.images)} images not done as real content: {detail}"


class IncompleteRunError(ContentPipelineError):
    """A run ended with images that are not done as real content; ``summary`` is its RunSummary."""

    def __init__(self, summary: RunSummary) -> None:
        super().__init__(summary.verdict())
        self.summary = summary

    def __reduce__(self) -> tuple[Any, ...]:
        return (IncompleteRunError, (self.summary,))


@task(name="plan-images", cache_policy=NO_CACHE)
def plan_images_task(slots: list[ImageSlot], trigger: str) -> list[int]:
    rt = get_runtime()
    return record_planned(rt.db, rt.library, slots, styles=rt.settings.styles, trigger=trigger, ab=rt.settings.ab)


@task(name="produce-image", cache_policy=NO_CACHE, task_run_name="image-{pk}")
def produce_image_task(pk: int, run_key: str, retry_failed: bool = False) -> ImageSummary:
    """The whole process of one image (tasks/produce.py): one task run per image."""
    rt = get_runtime()
    return ImageSummary.of(produce_image(rt.worker(run_key, retry_failed=retry_failed), pk))


@task(name="close-dead-runs", cache_policy=NO_CACHE)
def close_dead_runs_task(run_key: str) -> dict[str, Any]:
    """Close what dead runs left: budget reservations whose run's lease expired (counted at
    their reservation) and uploads an unreachable store left pending (then published, or
    sent to review, as the run's own images are)."""
    from tasks.pending import upload_pending_images

    from tasks.review import Publisher

    rt = get_runtime()
    expired = rt.budget.expire_stale(rt.settings.budget.reservation_timeout_s)
    publishers: list[Publisher] = []

    def stage(pk: int) -> None:  # a late upload is published or reviewed like the run's own images
        if not publishers:
            publishers.append(Publisher(rt))
        publishers[0].stage(pk)

    uploads = upload_pending_images(rt.ledger, rt.store, rt.settings, run_key, stage=stage)
    for publisher in publishers:
        publisher.deliver_new()
    return {"expired_reservations": expired, **uploads}


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


def run_images(flow_name: str, slots: list[ImageSlot], *, retry_failed: bool = False) -> Any:
    """Plan, produce, alert and summarise ``slots`` inside the current flow run.

    Returns the RunSummary when every image is done as real content; otherwise a Failed
    state whose message counts the others and whose data is IncompleteRunError (the
    flow run ends Failed; calling the flow raises it, ``return_state=True`` gives it).
    ``retry_failed`` also retries rejected failures and slots past ``pipeline.max_attempts``.
    """
    from prefect.runtime import flow_run
    from prefect.states import Failed

    rt = get_runtime()
    run_key = str(flow_run.id or uuid.uuid4())
    try:
        close_dead_runs_task(run_key)
        pks = plan_images_task(slots, current_trigger())
        generate_batches_task(pks, run_key, retry_failed)  # a batch-capable provider renders each template's variations at once
        progress = ProgressReporter(flow_name, len(pks))
        futures = [produce_image_task.submit(pk, run_key, retry_failed) for pk in pks]
        for future in as_completed(futures):
            progress.image_finished(future.result())
        # publishing, in the flow body (a deployment run suspends here for the review): publish
        # the stored images or send them to review; regenerated versions are produced as tasks
        images = [ImageSummary.of(row) for row in publish_or_review(
            pks, run_key, produce=lambda pk, key: produce_image_task(pk, key, retry_failed))]
    finally:
        rt.end_run(run_key)
    raised = alerts_task()
    summary = RunSummary(flow_name, images, str(rt.settings.output_dir), _safe_db_url(rt.settings.database_url or ""), raised)
    publish_summary(flow_name, images)  # tasks/artifacts.py: outcomes in words, thumbnails that load
    publish_gallery(flow_name, images)
    if summary.complete:
        return summary
    get_logger().warning("%s run: %s", flow_name, summary.verdict())
    return Failed(message=summary.verdict(), data=IncompleteRunError(summary))


def _safe_db_url(url: str) -> str:
    """The database URL with any password masked."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparseable URL)"


class ProgressReporter:
    """The run's progress artifact (``<flow>-progress``, percent of images finished),
    updated when an image reaches a terminal or resumable status, at most once every
    ``interval_s`` seconds (each update is a call to the Prefect API) and always for the
    last image; every image's line is logged."""

    def __init__(self, flow_name: str, total: int, *, interval_s: float = 1.0) -> None:
        from prefect.artifacts import create_progress_artifact

        self.total = total
        self.finished = 0
        self.interval_s = interval_s
        self._updated = time.monotonic()
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
        self.counts[outcome_of(image)] = self.counts.get(outcome_of(image), 0) + 1
        percent = round(100.0 * self.finished / max(self.total, 1), 1)
        get_logger().info("%s: %s (%s/%s, %.0f%%)", image_line(image, "progress"), outcome_of(image), self.finished,
                          self.total, percent)
        now = time.monotonic()
        if self.finished >= self.total or now - self._updated >= self.interval_s:
            self._updated = now
            words = outcome_words(self.counts)
            update_progress_artifact(self.artifact_id, progress=percent,
                                     description=f"{self.finished} of {self.total} images finished: {words}")
        return percent
