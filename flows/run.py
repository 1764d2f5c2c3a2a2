"""The body every image-making flow shares (daily, weekly, ad hoc), step by step:

    close what dead runs left -> select templates and make variations (planned rows) ->
    produce each image (generate, post-process, categorize and tag, upload, record) ->
    review and publish -> alerts -> summary

It runs inside a flow: each step is a Prefect task of tasks/, except the review, which is
in the flow body because a run from a deployment suspends there until a person decides
(publishing.review.publish_or_review).

The run's end tells the truth: Completed only when every planned image is ``done`` as
real content (published), rejected or superseded by a reviewer, or waiting ``in_review``;
otherwise the flow run ends Failed with a message counting the images that are not
(placeholders, failures, blocked, skipped, approved but not published, held by another
run), so that automations fire, and calling the flow raises IncompleteRunError carrying
the summary (reporting.summary).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any

from prefect.futures import PrefectFuture, as_completed, wait
from prefect.runtime import deployment, flow_run
from prefect.states import Failed

from domain.log import get_logger
from domain.model import ImageSlot
from domain.templates import Schedules
from flows.parameters import only_categories
from publishing.review import publish_or_review
from reporting.artifacts import ProgressReporter, publish_gallery, publish_summary
from reporting.summary import ImageSummary, IncompleteRunError, RunSummary, safe_db_url
from storage.db import ImageRecord, utcnow
from tasks.alerts import alerts_task
from tasks.produce import generate_batches_task, produce_image_task
from tasks.recover import close_dead_flow_runs_task, close_dead_runs_task
from wiring.runtime import Runtime


def current_trigger() -> str:
    """Who started this run: ``schedule``, ``deployment`` (UI / API), or the caller's
    ``CONTENT_PIPELINE_TRIGGER`` (the CLI sets ``cli``), else ``python``."""
    if deployment.id:
        return "schedule" if "auto-scheduled" in (flow_run.tags or []) else "deployment"
    return os.environ.get("CONTENT_PIPELINE_TRIGGER", "python")


@contextmanager
def image_run(rt: Runtime) -> Iterator[str]:
    """The scope of one run's image work: yields its run key (the flow run id) after closing
        what dead runs left; at the end, the run's provider chain and worker are closed (the body
    waits for every task it submitted first: ``each_result``)."""
    run_key = str(flow_run.id or uuid.uuid4())
    try:
        close_dead_runs_task(rt, run_key)
        yield run_key
    finally:
        rt.end_run(run_key)


def select_templates(rt: Runtime, plan: Callable[[Schedules, date], list[ImageSlot]], day: date, categories: Sequence[str] | None) -> list[ImageSlot]:
    """The slots ``plan`` schedules for ``day`` (templates/schedules.yaml), only those of
    ``categories`` (default: every slot; an unknown category raises TemplateError before any
    image is planned)."""
    assert rt.library.schedules is not None
    return only_categories(plan(rt.library.schedules, day), categories, rt.library)


def produce_images(rt: Runtime, flow_name: str, pks: list[int], run_key: str, retry_failed: bool) -> None:
    """Produce every planned image, one task run each (batched generation first where a
    provider batches), reporting progress as they finish."""
    generate_batches_task(rt, pks, run_key, retry_failed)
    progress = ProgressReporter(flow_name, len(pks))
    alerts = AlertsAsTheRunGoes(rt)

    def finished(image: ImageSummary) -> None:
        progress.image_finished(image)
        alerts.image_finished()

    each_result([produce_image_task.submit(rt, pk, run_key, retry_failed) for pk in pks], finished)
    dead = [key for key in sorted(rt.worker(run_key).took_over_from) if not _holds_a_live_lease(rt, key)]
    if dead:  # runs whose process died (their leases expired, none renewed since): their Prefect history closed
        try:
            close_dead_flow_runs_task(dead, run_key)
        except Exception:  # the images are made; the history of the dead run is the only loss
            get_logger().exception("could not mark the dead flow runs %s crashed", dead)


def _holds_a_live_lease(rt: Runtime, run_key: str) -> bool:
    """True when a slot of ``run_key`` is still under a lease that has not expired: that run
    still renews (its heartbeat was late, not dead), so it is not marked Crashed."""
    from sqlmodel import select  # noqa: PLC0415 - only when a slot was taken over

    with rt.db.session() as session:
        query = select(ImageRecord.id).where(ImageRecord.run_key == run_key, ImageRecord.lease_expires_at > utcnow())  # type: ignore[operator]
        return session.exec(query.limit(1)).first() is not None


class AlertsAsTheRunGoes:
    """The alert rules evaluated while the images are produced, at most every
    ``alerts.during_run_every_s`` seconds (a task run each time: tasks.alerts), so that a
    provider failing in the first hour of a long batch alerts then, not at the end. Each
    condition is sent once per cooldown (reporting.alerts.dispatch_alerts), so the run's
    final evaluation does not repeat it."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.every_s = rt.settings.alerts.during_run_every_s
        self._last = time.monotonic()

    def image_finished(self) -> None:
        now = time.monotonic()
        if now - self._last < self.every_s:
            return
        self._last = now
        try:
            alerts_task(self.rt)
        except Exception:  # an alert path that fails must not stop the images: the run's end evaluates again
            get_logger().exception("alert rules during the run failed")


def each_result(futures: list[PrefectFuture[Any]], on_result: Callable[[Any], object]) -> None:
    """Give ``on_result`` each future's result as it finishes. When one raises (a database
    locked mid-run), every other future is waited for before the error goes on: the run's
    provider chain and worker (closed when ``image_run`` ends) are never closed under a
    task still running (issue 19: calls failing with "client has been closed")."""
    try:
        for future in as_completed(futures):
            on_result(future.result())
    finally:
        wait(futures)


def review_and_publish(rt: Runtime, pks: list[int], run_key: str, retry_failed: bool) -> list[ImageRecord]:
    """Publish the stored images or send them to review (a run from a deployment suspends
    here until a person decides); regenerated versions are produced as tasks. Returns the
    rows of ``pks`` and of the versions made."""
    return publish_or_review(rt.publisher(), pks, run_key, produce=lambda pk, key: produce_image_task(rt, pk, key, retry_failed))


def summarise(rt: Runtime, flow_name: str, rows: list[ImageRecord]) -> Any:
    """Evaluate the alerts, publish the summary and gallery artifacts, and end the run with
    the truth: the RunSummary when every image is done as real content, else a Failed state
    whose message counts the others and whose data is IncompleteRunError (calling the flow
    raises it; ``return_state=True`` gives it)."""
    images = [ImageSummary.of(row) for row in rows]
    raised = alerts_task(rt)
    summary = RunSummary(flow_name, images, str(rt.settings.output_dir), safe_db_url(rt.settings.database_url or ""), raised)
    publish_summary(flow_name, images)
    publish_gallery(flow_name, images, rt.store, rt.db)
    if summary.complete:
        return summary
    get_logger().warning("%s run: %s", flow_name, summary.verdict())
    return Failed(message=summary.verdict(), data=IncompleteRunError(summary))
