"""Stage 3, batched: the variations of one template in one provider call.

A batch-capable provider (one whose class has ``generate_batch``: the local diffusers
pipelines) renders several images of the same size, steps and guidance in one pipeline
call, which is what makes a GPU fast. ``group_for_batch`` says which rows form a batch:
same template (and version), A/B variant, width, height, num_inference_steps and
guidance_scale; they differ in seed and, through wildcards and styles, in prompt.

``generate_batch_images`` takes one such group through the state machine of
storage/ledger.py exactly as the per-image process (generation/produce.py) takes one image:
each row is claimed in its own transaction (the claim moves it to ``generating`` and
counts the attempt), prepared and checked against the content policy
(generation/generate.py ``prepare_step``), then ONE ``ProviderChain.generate_batch`` call runs
with a budget guard per claim, held under the run's concurrency slot, and each row's
outcome is recorded with its own attempts and budget settlements in one transition
(``record_outcome``: generated / skipped / failed). The rows it generated stay claimed
by the run: the per-image process (``produce_image``) claims them again with the same
run key and goes on from ``generated`` (post-process, categorize, upload, record), so
per-image rows, costs and idempotency keys are those of one-by-one generation. Rows the
batch ended (failed, blocked, skipped) are not tried again in the same run
(``Worker.batch_ended``), as with one-by-one generation.

The provider decides how many images go into one pipeline call (its ``batch_limit``:
``max_batch_size`` and the free GPU memory).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, suppress
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any


from domain.model import Attempt, FailureKind, GenerationRequest, GenerationResult, ImageStatus
from domain.errors import ContentPipelineError
from domain.log import get_logger, image_line
from providers.chain import BudgetGuard, ProviderChain
from storage.db import ImageRecord
from storage.ledger import ClaimState, LeaseLostError
from generation.generate import ChainOutcome, ClaimBudget, prepare_step, record_outcome
from generation.produce import Worker, needs_provider, produce_image


def batch_key(row: ImageRecord) -> tuple[Any, ...]:
    """Rows with equal keys can share one pipeline call."""
    return (row.template, row.template_version, row.variant, row.width, row.height, row.num_inference_steps, row.guidance_scale)


def needs_generation(row: ImageRecord) -> bool:
    """True when row ``row`` has no image yet (or lost its spool file) and is not finished."""
    status = ImageStatus(row.status)
    return not status.terminal and needs_provider(row)


def group_for_batch(rows: Sequence[ImageRecord]) -> list[list[ImageRecord]]:
    """The rows still to generate, grouped by ``batch_key`` (first-seen order, rows in
    their given order); rows already generated or finished are left out. A group of one
    is returned too: the caller decides whether a batch of one is worth it."""
    groups: dict[tuple[Any, ...], list[ImageRecord]] = {}
    for row in rows:
        if needs_generation(row):
            groups.setdefault(batch_key(row), []).append(row)
    return list(groups.values())


def batch_capable(chain: ProviderChain) -> bool:
    """True when the chain's first provider renders batches (its class has ``generate_batch``
    and its ``renders_batches``, where it has one, is true: AUTOMATIC1111 with ``batch_limit`` > 1).

    A provider wrapped in a Prefect global concurrency limit (generation/limits.py) is not:
    its images go one by one through the limit."""
    first = chain.providers[0]
    return callable(getattr(type(first), "generate_batch", None)) and bool(getattr(first, "renders_batches", True))


def generate_batch_images(worker: Worker, pks: Sequence[int]) -> list[ImageRecord]:
    """Generate rows ``pks`` (one group of ``group_for_batch``) with one
    ``chain.generate_batch`` call; returns the rows in the order of ``pks``.

    Each row this run can claim ends ``generated`` (bytes in the spool, still claimed by
    the run for the per-image process), ``blocked`` (content policy: not sent),
    ``skipped`` (every provider stopped by a budget cap) or ``failed``, with its own
    attempts, cost and budget settlements. A row another live run holds, or one with
    nothing to generate, is left as it is. ConfigError: a prompt encrypted with a key
    that is not set (the rows claimed so far are released).
    """
    ledger, run_key = worker.ledger, worker.run_key
    todo: list[tuple[ImageRecord, GenerationRequest]] = []
    with ExitStack() as held:
        current: int | None = None
        try:
            for pk in pks:
                current = None
                claim = ledger.claim(pk, run_key, retry_failed=worker.retry_failed, begin_generation=True)
                if claim.state is not ClaimState.claimed:
                    continue
                current = pk
                row = claim.row
                if not needs_provider(row, claim.began_generation):
                    continue  # generated before (spool intact): the per-image process resumes it
                if worker.heartbeat is not None:
                    held.enter_context(worker.heartbeat.hold(pk))
                prepared = prepare_step(ledger, row, run_key, policy=worker.settings.policy, begun=claim.began_generation)
                if isinstance(prepared, ImageRecord):  # blocked, or its reference image cannot be read
                    worker.batch_ended.add(pk)
                    continue
                todo.append((row, prepared))
        except ContentPipelineError:  # nothing was sent: every slot claimed here is given back as it is
            for held_pk in [*(row.id for row, _ in todo), current]:
                if held_pk is not None:
                    with suppress(LeaseLostError):
                        ledger.release(held_pk, run_key)
            raise
        if todo:
            _generate(worker, todo)
    return ledger.rows(list(pks))


def _generate(worker: Worker, todo: list[tuple[ImageRecord, GenerationRequest]]) -> None:
    """One chain batch call for the prepared rows, then one outcome transition per row."""
    chain, ledger, run_key = worker.chain, worker.ledger, worker.run_key
    guards: list[ClaimBudget | None] = [
        ClaimBudget(chain.budget, row.id, run_key) if chain.budget is not None and row.id is not None else None for row, _ in todo
    ]
    attempts: list[list[Attempt]] = [[] for _ in todo]

    def on_attempt(index: int, attempt: Attempt) -> None:
        attempts[index].append(replace(attempt, at=attempt.at or datetime.now(UTC)))

    budgets: list[BudgetGuard | None] = list(guards)
    with worker.semaphore:  # the concurrency slot: around the provider call only
        outcomes = chain.generate_batch([request for _, request in todo], on_attempt, budgets=budgets)
    log = get_logger()
    for (row, _), outcome, seen, guard in zip(todo, outcomes, attempts, guards, strict=True):
        assert row.id is not None
        settlements = guard.settlements if guard is not None else []
        result = ChainOutcome(outcome, None, seen, settlements) if isinstance(outcome, GenerationResult) else ChainOutcome(None, outcome, seen, settlements)
        try:
            try:
                done = record_outcome(ledger, row, run_key, result, spool_dir=worker.settings.spool_dir)
            except OSError as exc:  # the spool cannot take the bytes: the call is still counted on its row
                log.error("%s: spool: %s", image_line(row, "generate"), exc)
                done = ledger.mark_failed(row.id, run_key, FailureKind.error, f"spool: {type(exc).__name__}: {exc}", attempts=seen, settlements=settlements)
        except LeaseLostError as exc:
            log.warning("%s: %s; leaving it to that run", image_line(row, "claim"), exc)
            continue
        if ImageStatus(done.status).terminal:
            worker.batch_ended.add(row.id)
            log.warning("%s: ended %s: %s", image_line(done, "generate"), done.status, done.error)


def generate_batches(worker: Worker, pks: Sequence[int]) -> list[int]:
    """Generate every group of two or more of rows ``pks`` as one batch when the chain's
    first provider is batch-capable; returns the primary keys it handled (the per-image
    process finds them generated, or finished, and goes on from there)."""
    if not pks or not batch_capable(worker.chain):
        return []
    handled: list[int] = []
    for group in group_for_batch(worker.ledger.rows(list(pks))):
        if len(group) < 2:
            continue
        ids = [row.id for row in group if row.id is not None]
        try:
            generate_batch_images(worker, ids)
        except ContentPipelineError as exc:  # a spool or database failure: the per-image process retries them
            get_logger().error("batch of %s images (template %s) stopped: %s", len(ids), group[0].template, exc)
            continue
        handled.extend(ids)
    return handled


def produce_all(worker: Worker, pks: Sequence[int], *, threads: int = 16) -> list[ImageRecord]:
    """``produce_image`` for every slot of ``pks`` in a thread pool (outside Prefect); the
    variations of a template first go to a batch-capable provider as one batch
    (generation/batching.py)."""
    worker.start()
    try:
        generate_batches(worker, pks)
        with ThreadPoolExecutor(max_workers=threads) as pool:
            return list(pool.map(lambda pk: produce_image(worker, pk), pks))
    finally:
        worker.stop()
