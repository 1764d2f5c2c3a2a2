"""Child process of the budget race test: 4 threads reserving against one shared cap."""

from __future__ import annotations

import threading
from typing import Any


def reserve_in_process(url: str, daily_usd: float, estimate_usd: float, threads: int, barrier: Any, results: Any) -> None:
    """Run ``threads`` concurrent reservations in this process; put (ok, refused) on ``results``."""
    from domain.errors import BudgetExceededError
    from config.generation import BudgetConfig
    from storage.db import Database
    from generation.budget import BudgetLedger

    db = Database(url, migrate=False)
    ledger = BudgetLedger(db, BudgetConfig(daily_usd=daily_usd, monthly_usd=1000.0))
    outcome = {"ok": 0, "refused": 0}
    lock = threading.Lock()
    local_barrier = threading.Barrier(threads)

    def one() -> None:
        local_barrier.wait()
        try:
            token = ledger.reserve("paid-provider", estimate_usd)
        except BudgetExceededError:
            with lock:
                outcome["refused"] += 1
            return
        ledger.settle(token, estimate_usd)
        with lock:
            outcome["ok"] += 1

    barrier.wait()  # every process starts its threads at the same moment
    workers = [threading.Thread(target=one) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    db.dispose()
    results.put((outcome["ok"], outcome["refused"]))


def reserve_for_clients(url: str, caps: dict[str, float], slots: list[tuple[int, str]], estimate_usd: float, barrier: Any, results: Any) -> None:
    """Reserve ``estimate_usd`` once for each ``(image pk, client)`` of ``slots``, one thread
    each, against the clients' daily ``caps`` (the client is read from the slot's row, as a
    run's reservations do); put {client: (ok, refused)} on ``results``."""
    from domain.errors import BudgetExceededError
    from config.clients import ClientsConfig
    from config.generation import BudgetConfig
    from storage.db import Database
    from generation.budget import BudgetLedger

    db = Database(url, migrate=False)
    clients = ClientsConfig.model_validate({name: {"budget": {"daily_usd": cap}} for name, cap in caps.items()})
    ledger = BudgetLedger(db, BudgetConfig(daily_usd=1000.0, monthly_usd=1000.0), clients=clients)
    outcome: dict[str, list[int]] = {}
    lock = threading.Lock()
    local_barrier = threading.Barrier(len(slots))

    def one(pk: int, client: str) -> None:
        local_barrier.wait()
        try:
            token = ledger.reserve("paid-provider", estimate_usd, image_pk=pk, run_key=f"run-{pk}")
        except BudgetExceededError:
            with lock:
                outcome.setdefault(client, [0, 0])[1] += 1
            return
        ledger.settle(token, estimate_usd)
        with lock:
            outcome.setdefault(client, [0, 0])[0] += 1

    barrier.wait()  # every process starts its threads at the same moment
    workers = [threading.Thread(target=one, args=slot) for slot in slots]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    db.dispose()
    results.put({client: tuple(counts) for client, counts in outcome.items()})
