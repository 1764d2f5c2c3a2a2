"""A run of the per-image process without Prefect, for the crash tests: ``python -m
tests.ledger_worker RUN_DATE COUNT SIZE [THREADS]`` plans COUNT slots of SIZE x SIZE pixels for
the daily flow of RUN_DATE and produces them (generation.batching.produce_all, THREADS threads:
default twice the concurrency) with the settings of $CONTENT_PIPELINE_CONFIG; prints
``run-key <key>`` first. Exit code 0 when every image is done as real content, else 1."""

from __future__ import annotations

import sys
import threading
import uuid
from datetime import date


def main(run_date: str, count: int, size: int, threads: int = 0) -> int:
    from domain.model import ImageSlot
    from config.settings import get_secrets, get_settings
    from providers.chain import ProviderChain
    from providers.registry import build_providers
    from storage.db import Database
    from storage.ledger import ImageLedger, PlannedImage
    from storage.objects import open_store
    from generation.budget import BudgetLedger
    from generation.batching import produce_all
    from generation.produce import Worker

    settings = get_settings()
    assert settings.database_url and settings.storage_url
    db = Database(settings.database_url)
    budget = BudgetLedger(db, settings.budget, timezone=settings.timezone)
    ledger = ImageLedger(
        db, lease_s=settings.pipeline.lease_s, max_attempts=settings.pipeline.max_attempts, settle=budget.settle_in, on_takeover=budget.close_for_claim
    )
    day = date.fromisoformat(run_date)
    planned = [
        PlannedImage(
            slot=ImageSlot("daily", day, "0600-food", i, "food"),
            template="pasta-dish",
            template_version=1,
            prompt=f"overhead photo of pesto linguine, plate {i}",
            negative_prompt="blurry",
            width=size,
            height=size,
            num_inference_steps=30,
            guidance_scale=7.5,
            seed=1000 + i,
        )
        for i in range(count)
    ]
    pks = [row.id for row in ledger.plan(planned)]
    run_key = f"worker-{uuid.uuid4().hex[:12]}"
    print(f"run-key {run_key}", flush=True)
    budget.expire_stale(settings.budget.reservation_timeout_s)
    chain = ProviderChain(build_providers(settings, get_secrets()), retry=settings.retry, budget=budget)
    store = open_store(settings.storage_url)
    worker = Worker(ledger, chain, store, settings, run_key, threading.BoundedSemaphore(settings.concurrency))
    rows = produce_all(worker, [pk for pk in pks if pk is not None], threads=threads or settings.concurrency * 2)
    chain.close()
    return 0 if all(r.status == "done" and not r.is_placeholder for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *(int(arg) for arg in sys.argv[4:5])))
