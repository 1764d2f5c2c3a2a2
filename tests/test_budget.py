"""The budget ledger on SQLite and PostgreSQL: reservations that cannot overspend."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import UTC, datetime, timedelta

import pytest

from domain.errors import BudgetExceededError
from config.generation import BudgetConfig, ProviderBudgetConfig
from storage.db import BudgetPeriodRecord, Database
from generation.budget import BudgetLedger
from tests.budget_worker import reserve_in_process

ESTIMATE = 0.25  # exact in binary floating point: 10 x 0.25 = 2.5 exactly
CAP = 2.5  # fits exactly 10 reservations


def global_day(db: Database) -> BudgetPeriodRecord | None:
    from sqlmodel import select

    with db.session() as session:
        return session.exec(select(BudgetPeriodRecord).where(BudgetPeriodRecord.scope == "global", BudgetPeriodRecord.period == "day")).first()


def test_race_16_threads_exactly_10_succeed(db_url: str) -> None:
    db = Database(db_url)
    ledger = BudgetLedger(db, BudgetConfig(daily_usd=CAP, monthly_usd=100.0))
    barrier = threading.Barrier(16)
    tokens: list[int] = []
    refused: list[str] = []
    lock = threading.Lock()
    seen_totals: list[float] = []
    stop = threading.Event()

    def reserve() -> None:
        barrier.wait()
        try:
            token = ledger.reserve("paid-provider", ESTIMATE)
        except BudgetExceededError as exc:
            with lock:
                refused.append(str(exc))
            return
        with lock:
            tokens.append(token)

    def watch() -> None:  # the committed spent + reserved never passes the cap, at any moment
        while not stop.is_set():
            row = global_day(db)
            if row is not None:
                seen_totals.append(row.spent_usd + row.reserved_usd)

    watcher = threading.Thread(target=watch)
    watcher.start()
    threads = [threading.Thread(target=reserve) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for token in tokens:
        ledger.settle(token, ESTIMATE)
    stop.set()
    watcher.join()

    assert len(tokens) == 10 and len(refused) == 6
    assert "would pass the cap of USD 2.50" in refused[0]
    row = global_day(db)
    assert row is not None and row.spent_usd == pytest.approx(CAP) and row.reserved_usd == pytest.approx(0.0)
    assert seen_totals and max(seen_totals) <= CAP + 1e-9
    assert ledger.spent()[0] == pytest.approx(CAP)
    states = [e.state for e in ledger.entries()]
    assert states.count("settled") == 10 and states.count("refused") == 6
    db.dispose()


def test_race_4_processes_exactly_10_succeed(db_url: str) -> None:
    Database(db_url).dispose()  # migrate once, before the children start
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(4)
    results = ctx.Queue()
    processes = [ctx.Process(target=reserve_in_process, args=(db_url, CAP, ESTIMATE, 4, barrier, results)) for _ in range(4)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert sum(ok for ok, _ in outcomes) == 10
    assert sum(refused for _, refused in outcomes) == 6
    db = Database(db_url)
    row = global_day(db)
    assert row is not None and row.spent_usd == pytest.approx(CAP) and row.spent_usd <= CAP + 1e-9
    db.dispose()


def test_settle_real_cost_release_and_caps(db_url: str) -> None:
    db = Database(db_url)
    config = BudgetConfig(daily_usd=1.0, monthly_usd=1.5, providers={"stability": ProviderBudgetConfig(daily_usd=0.3)})
    ledger = BudgetLedger(db, config, timezone="Europe/Paris")
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    first = ledger.reserve("stability", 0.2, now=now)
    with pytest.raises(BudgetExceededError, match="stability's daily budget .* cap of USD 0.30"):
        ledger.reserve("stability", 0.2, now=now)  # 0.2 reserved + 0.2 > the provider's 0.3
    ledger.settle(first, 0.05)  # the real cost was lower than the estimate
    second = ledger.reserve("stability", 0.2, now=now)  # 0.05 + 0.2 fits now
    ledger.release(second)  # the call failed: nothing spent
    ledger.settle(second, 0.2)  # settling twice changes nothing
    other = ledger.reserve("openai", 0.9, now=now)  # global daily: 0.05 + 0.9 <= 1.0
    with pytest.raises(BudgetExceededError, match="global daily budget"):
        ledger.reserve("openai", 0.1, now=now)
    ledger.settle(other, 0.9)
    status = {(s.scope, s.period): s for s in ledger.status(now)}
    assert status[("global", "day")].spent_usd == pytest.approx(0.95)
    assert status[("stability", "day")].spent_usd == pytest.approx(0.05)
    assert status[("global", "month")].period_key == "2026-11"
    next_day = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    with pytest.raises(BudgetExceededError, match="global monthly budget"):
        ledger.reserve("openai", 0.6, now=next_day)  # a new day, but the month holds 0.95 of 1.5
    ledger.settle(ledger.reserve("openai", 0.5, now=next_day), 0.5)
    assert ledger.status(next_day)[0].spent_usd == pytest.approx(0.5)
    with pytest.raises(KeyError):
        ledger.settle(999_999, 0.1)
    db.dispose()


def test_chain_falls_back_when_the_cap_would_be_crossed(make_config, a1111) -> None:  # type: ignore[no-untyped-def]
    """A paid provider over the cap is skipped (attempt recorded); the free placeholder answers."""
    from domain.model import Attempt, GenerationRequest
    from wiring.runtime import get_runtime
    from tests.conftest import a1111_config

    make_config(**a1111_config(a1111.url, cost_usd=0.08), budget={"daily_usd": 0.1})
    rt = get_runtime()
    chain = rt.chain("budget-test")
    attempts: list[Attempt] = []
    request = GenerationRequest(prompt="a red apple", width=256, height=256, num_inference_steps=2)
    first = chain.generate(request, attempts.append)
    second = chain.generate(request, attempts.append)
    assert (first.provider, second.provider) == ("automatic1111", "placeholder")
    assert [(a.provider, a.status, a.error_class) for a in attempts] == [
        ("automatic1111", "success", None),
        ("automatic1111", "skipped", "budget"),
        ("placeholder", "success", None),
    ]
    assert len(a1111.requests) == 1  # the refused call never reached the provider
    assert rt.budget.spent()[0] == pytest.approx(0.08)
    rt.end_run("budget-test")


def test_slot_skipped_when_no_free_provider_and_alert(make_config, a1111) -> None:  # type: ignore[no-untyped-def]
    from datetime import date

    from domain.model import ImageSlot
    from reporting.alerts import evaluate_rules
    from generation.generate import generate_image
    from generation.record import record_planned
    from wiring.runtime import get_runtime
    from tests.conftest import a1111_config

    config = a1111_config(a1111.url, cost_usd=0.08)
    config["chain"] = ["automatic1111"]
    make_config(**config, budget={"daily_usd": 0.05})
    rt = get_runtime()
    [pk] = record_planned(rt.db, rt.library, [ImageSlot("daily", date(2026, 11, 21), "0600-products", 0, "products")])
    row = generate_image(rt.db, rt.chain("skip-test"), pk, spool_dir=rt.settings.spool_dir, policy=rt.settings.policy)
    assert row.status == "skipped" and "budget" in (row.error or "")
    assert a1111.requests == []
    alerts = {a.rule: a for a in evaluate_rules(rt.db, rt.settings, rt.budget)}
    assert "budget-refused" in alerts and "1 paid calls refused" in alerts["budget-refused"].title
    assert "raise the cap" in alerts["budget-refused"].message
    rt.end_run("skip-test")


def test_stale_reservation_of_a_killed_run_is_counted_as_spent(db_url: str) -> None:
    db = Database(db_url)
    ledger = BudgetLedger(db, BudgetConfig(daily_usd=1.0, monthly_usd=10.0))
    stale = ledger.reserve("stability", 0.4)  # its process "dies": never settled
    fresh = ledger.reserve("stability", 0.3)
    assert ledger.expire_stale(3600) == []  # nothing is old yet
    later = datetime.now(UTC) + timedelta(hours=3)
    assert ledger.expire_stale(3600, now=later) == [stale, fresh]
    ledger.settle(fresh, 0.0)  # a late settle of an expired entry changes nothing
    [day] = [s for s in ledger.status() if (s.scope, s.period) == ("global", "day")]
    assert day.spent_usd == pytest.approx(0.7) and day.reserved_usd == pytest.approx(0.0)
    assert {e.state for e in ledger.entries()} == {"expired"}
    db.dispose()
