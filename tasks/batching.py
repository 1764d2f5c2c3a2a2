"""Stage 3, batched: the variations of one template in one provider call.

A batch-capable provider (one whose class has ``generate_batch``: the local diffusers
pipelines) renders several images of the same size, steps and guidance in one pipeline
call, which is what makes a GPU fast. ``group_for_batch`` says which planned rows form a
batch: same template (and version), A/B variant, width, height, num_inference_steps and
guidance_scale; they differ in seed and, through wildcards and styles, in prompt.
``generate_batch_images`` generates one such group through
``ProviderChain.generate_batch`` and leaves every row exactly as ``generate_image``
(tasks/generate.py) would: one row per image with its own seed, attempts, cost and
status, the content policy checked per prompt, the row moved to ``generating`` before
the call, and a row already ``generated`` with an intact spool file never made again.
The provider decides how many images go into one pipeline call (its ``batch_limit``:
``max_batch_size`` and the free GPU memory).

``generate_batches`` is the stage a run calls once after planning: it does nothing
unless the chain's first provider is batch-capable, and it leaves single images (and
every image when batching does not apply) to the per-image path.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from core.domain import Attempt, GenerationResult, ImageStatus
from core.errors import ContentPipelineError, ContentPolicyError, ProviderError
from core.log import get_logger
from core.policy import check_prompt
from core.settings import PolicyConfig
from providers.chain import ProviderChain
from storage.db import Database, ImageRecord, utcnow
from tasks.generate import _suffix, request_of, spool_intact


def batch_key(row: ImageRecord) -> tuple[Any, ...]:
    """Rows with equal keys can share one pipeline call."""
    return (row.template, row.template_version, row.variant, row.width, row.height, row.num_inference_steps,
            row.guidance_scale)


def needs_generation(row: ImageRecord) -> bool:
    """True when row ``row`` has no image yet (or lost its spool file) and is not finished."""
    status = ImageStatus(row.status)
    return not status.terminal and not (status.rank >= ImageStatus.generated.rank and spool_intact(row))


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
    """True when the chain's first provider renders batches (its class has ``generate_batch``).

    A provider wrapped in a Prefect global concurrency limit (tasks/limits.py) is not:
    its images go one by one through the limit."""
    first = chain.providers[0]
    return callable(getattr(type(first), "generate_batch", None))


def generate_batch_images(
    db: Database, chain: ProviderChain, pks: Sequence[int], *, spool_dir: Path, policy: PolicyConfig
) -> list[ImageRecord]:
    """Generate rows ``pks`` (one group of ``group_for_batch``) in one ``chain.generate_batch``
    call; returns the updated rows in the order of ``pks``.

    Each row ends as with ``generate_image``: ``generated`` (bytes in
    ``<spool_dir>/<image_id>.<ext>``, SHA-256, provider, model, seed, device, cost = sum of
    its attempts), ``blocked`` (content policy: that row is not sent), ``skipped`` (every
    provider stopped by a budget cap) or ``failed``. Rows already generated or finished
    are returned unchanged. Every attempt is recorded on its own row as it happens.
    """
    todo: list[tuple[int, ImageRecord]] = []
    for pk in pks:
        row = db.get(pk)
        if not needs_generation(row):
            continue
        request = request_of(row)
        try:
            check_prompt(f"{request.prompt}\n{row.template or ''}", deny_terms=policy.deny_terms,
                         private_people=policy.private_people)
        except ContentPolicyError as exc:
            db.advance(pk, ImageStatus.blocked, error=f"content policy: {exc.reason}")
            continue
        if ImageStatus(row.status).rank < ImageStatus.generating.rank:
            row = db.advance(pk, ImageStatus.generating)  # a lost spool file is made again from its status
        todo.append((pk, row))
    if todo:
        seen: list[list[Attempt]] = [[] for _ in todo]

        def on_attempt(index: int, attempt: Attempt) -> None:
            seen[index].append(attempt)
            db.add_attempt(todo[index][0], attempt)

        outcomes = chain.generate_batch([request_of(row) for _, row in todo], on_attempt)
        for (pk, row), outcome, attempts in zip(todo, outcomes, seen, strict=True):
            if isinstance(outcome, GenerationResult):
                _store(db, pk, row, outcome, spool_dir)
            else:
                _fail(db, pk, outcome, attempts)
    return [db.get(pk) for pk in pks]


def generate_batches(
    db: Database, chain: ProviderChain, pks: Sequence[int], *, spool_dir: Path, policy: PolicyConfig
) -> list[int]:
    """Generate every group of two or more of rows ``pks`` as one batch when the chain's
    first provider is batch-capable; returns the primary keys it handled (the per-image
    path finds them generated, or finished, and goes on from there)."""
    if not pks or not batch_capable(chain):
        return []
    handled: list[int] = []
    for group in group_for_batch([db.get(pk) for pk in pks]):
        if len(group) < 2:
            continue
        ids = [row.id for row in group if row.id is not None]
        try:
            generate_batch_images(db, chain, ids, spool_dir=spool_dir, policy=policy)
        except ContentPipelineError as exc:  # a spool or database failure: the per-image path retries them
            get_logger().error("batch of %s images (template %s) stopped: %s", len(ids), group[0].template, exc)
            continue
        handled.extend(ids)
    return handled


@task(name="generate-batches", cache_policy=NO_CACHE)
def generate_batches_task(pks: list[int], run_key: str) -> list[int]:
    """``generate_batches`` with the run's resources (tasks.runtime)."""
    from tasks.runtime import get_runtime

    rt = get_runtime()
    return generate_batches(rt.db, rt.chain(run_key), pks, spool_dir=rt.settings.spool_dir, policy=rt.settings.policy)


def _store(db: Database, pk: int, row: ImageRecord, result: GenerationResult, spool_dir: Path) -> ImageRecord:
    """Spool ``result``'s bytes and move row ``pk`` to ``generated`` (as generate_image does)."""
    spool_dir.mkdir(parents=True, exist_ok=True)
    path = spool_dir / f"{row.image_id}{_suffix(result.image)}"
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(result.image)
    os.replace(tmp, path)
    return db.advance(
        pk,
        ImageStatus.generated,
        provider=result.provider,
        model=result.model,
        seed=result.seed,
        width=result.width,
        height=result.height,
        is_placeholder=result.is_placeholder,
        cost_usd=sum(a.cost_usd for a in db.attempts(pk)),
        seconds=round(result.latency_s, 4),
        spool_path=str(path),
        checksum=hashlib.sha256(result.image).hexdigest(),
        device=result.metadata.get("device"),
        generated_at=utcnow(),
        error=None,
    )


def _fail(db: Database, pk: int, error: ProviderError, attempts: Sequence[Attempt]) -> ImageRecord:
    """Row ``pk`` -> ``skipped`` when only budget caps stopped it, else ``failed``."""
    if any(a.error_class == "budget" for a in attempts) and all(a.status == "skipped" for a in attempts):
        return db.advance(pk, ImageStatus.skipped, error=f"budget: {str(error)[:1990]}")
    return db.advance(pk, ImageStatus.failed, error=str(error)[:2000])
