"""Step 0 of a run: close what dead runs left (expired budget reservations, pending uploads)."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from generation.pending import upload_pending_images
from publishing.review import Publisher
from wiring.runtime import Runtime


@task(name="close-dead-runs", cache_policy=NO_CACHE)
def close_dead_runs_task(rt: Runtime, run_key: str) -> dict[str, Any]:
    """Close what dead runs left: budget reservations whose run's lease expired (counted at
    their reservation) and uploads an unreachable store left pending (then published, or
    sent to review, as the run's own images are). Returns the counts."""
    expired = rt.budget.expire_stale(rt.settings.budget.reservation_timeout_s)
    publishers: list[Publisher] = []

    def stage(pk: int) -> None:  # a late upload is published or reviewed like the run's own images
        if not publishers:
            publishers.append(rt.publisher())
        publishers[0].stage(pk)

    uploads = upload_pending_images(rt.ledger, rt.store, rt.settings, run_key, stage=stage)
    for publisher in publishers:
        publisher.deliver_new()
    return {"expired_reservations": expired, **uploads}
