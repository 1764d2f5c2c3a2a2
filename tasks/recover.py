"""Step 0 of a run: close what dead runs left (expired budget reservations, pending uploads)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, TaskRunFilter, TaskRunFilterState, TaskRunFilterStateType
from prefect.client.schemas.objects import StateType
from prefect.exceptions import ObjectNotFound
from prefect.states import Crashed

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


#: Task-run states a dead flow run leaves behind (anything but a final state).
_UNFINISHED = [StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.PAUSED, StateType.CANCELLING]


@task(name="close-dead-flow-runs", cache_policy=NO_CACHE)
def close_dead_flow_runs_task(run_keys: list[str], by_run: str) -> int:
    """``close_dead_flow_runs`` as a task run (the run's history shows it)."""
    return close_dead_flow_runs(run_keys, by_run)


def close_dead_flow_runs(run_keys: Iterable[str], by_run: str) -> int:
    """Mark Crashed, through the Prefect API, the flow runs this run (``by_run``) took slots
    over from once their leases expired (generation.produce: a live run renews its leases
    every ``pipeline.lease_s / 3`` s, so an expired one means its process died: a SIGKILL,
    a machine gone), and each of their task runs not in a final state: without it a run
    whose process died stays Running in the UI for ever, its task runs too (Prefect itself
    marks nothing when a worker's machine dies). Only runs still RUNNING are touched; run
    keys that are not flow-run ids of this Prefect server (a plain script's, another
    server's) are skipped. Returns how many flow runs it marked."""
    ids = [run_id for run_id in map(_flow_run_id, run_keys) if run_id is not None]
    if not ids:
        return 0
    marked = 0
    with get_client(sync_client=True) as client:
        for run_id in ids:
            try:
                run = client.read_flow_run(run_id)
            except ObjectNotFound:
                continue
            if run.state is None or run.state.type is not StateType.RUNNING:
                continue
            message = f"Its process died: its slots' leases expired and flow run {by_run} took them over"
            client.set_flow_run_state(run_id, Crashed(message=message), force=True)
            marked += 1
            _crash_task_runs(client, run_id, message)
    return marked


def _crash_task_runs(client: SyncPrefectClient, run_id: uuid.UUID, message: str) -> None:
    only_unfinished = TaskRunFilter(state=TaskRunFilterState(type=TaskRunFilterStateType(any_=_UNFINISHED)))
    for _ in range(1000):  # pages of 200 (a run of 1,000 images has about 1,000 task runs)
        page = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])), task_run_filter=only_unfinished, limit=200)
        for task_run in page:
            client.set_task_run_state(task_run.id, Crashed(message=message), force=True)
        if len(page) < 200:
            return


def _flow_run_id(run_key: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(run_key)
    except ValueError:
        return None
