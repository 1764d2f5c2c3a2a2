"""The image state machine (storage/ledger.py) on SQLite and PostgreSQL: typed transitions,
claims with leases (busy, take-over of an expired lease, lost lease), retries across runs,
and claims racing from several processes."""

from __future__ import annotations

import multiprocessing
from datetime import date, timedelta

import pytest
from sqlalchemy import update

from domain.model import Attempt, FailureKind, ImageSlot, ImageStatus
from storage.db import Database, ImageRecord, utcnow
from storage.ledger import (
    ClaimState,
    GeneratedImage,
    ImageLedger,
    LeaseLostError,
    PlannedImage,
    ProcessedImage,
    StoredFile,
    StoredImage,
    TransitionError,
)

DAY = date(2026, 11, 21)


def planned(index: int, slot: str = "0600-food") -> PlannedImage:
    return PlannedImage(
        slot=ImageSlot("daily", DAY, slot, index, "food"),
        template="pasta-dish",
        template_version=1,
        prompt="overhead photo of pesto linguine",
        negative_prompt="blurry",
        width=512,
        height=512,
        num_inference_steps=30,
        guidance_scale=7.5,
        seed=100 + index,
        tags=("food",),
    )


def generated(path: str = "/spool/x.png") -> GeneratedImage:
    return GeneratedImage(
        provider="automatic1111", model="sd15", seed=1, width=512, height=512, is_placeholder=False, seconds=0.5, spool_path=path, checksum="0" * 64
    )


def expire(db: Database, pk: int) -> None:
    with db.write_session() as session:
        session.execute(
            update(ImageRecord.__table__)
            .where(ImageRecord.id == pk)  # type: ignore[attr-defined]
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()


def test_plan_is_idempotent_and_one_row_per_slot(db_url: str) -> None:
    db = Database(db_url)
    ledger = ImageLedger(db)
    first = ledger.plan([planned(0), planned(1)])
    again = ledger.plan([planned(1), planned(0), planned(2)])
    assert [r.id for r in again[:2]] == [first[1].id, first[0].id]
    assert {r.status for r in again} == {"planned"} and len(db.images()) == 3
    db.dispose()


def test_a_real_image_walks_the_whole_way_each_step_one_transition(db_url: str) -> None:
    db = Database(db_url)
    ledger = ImageLedger(db, lease_s=60)
    [row] = ledger.plan([planned(0)])
    assert row.id is not None
    claim = ledger.claim(row.id, "run-a")
    assert claim.state is ClaimState.claimed and claim.row.run_key == "run-a"
    assert ledger.mark_generating(row.id, "run-a").attempt_count == 1
    paid = Attempt("automatic1111", "sd15", "success", 0.5, cost_usd=0.04)
    row = ledger.mark_generated(row.id, "run-a", generated(), attempts=[paid])
    assert row.status == "generated" and row.cost_usd == pytest.approx(0.04) and len(db.attempts(row.id)) == 1
    processed = ProcessedImage(0.7, {"sharpness": 0.5}, "ab" * 8, ("food", "pasta"))
    ledger.mark_processed(row.id, "run-a", processed)
    stored = StoredImage("content/food/x.png", "content/food/x.json", (StoredFile("original", "content/food/x.png", "png", 512, 512, 10, "1" * 64),))
    row = ledger.mark_done(row.id, "run-a", stored)
    assert row.status == "done" and row.run_key is None and row.lease_expires_at is None
    assert row.tags == ["food", "pasta"] and [r.name for r in db.renditions(row.id)] == ["original"]
    # nothing moves a done slot: no claim, no transition
    assert ledger.claim(row.id, "run-b").state is ClaimState.finished
    with pytest.raises(LeaseLostError):
        ledger.mark_generating(row.id, "run-a")
    db.dispose()


def test_forbidden_moves_raise(db_url: str) -> None:
    db = Database(db_url)
    ledger = ImageLedger(db)
    [row] = ledger.plan([planned(0)])
    assert row.id is not None
    ledger.claim(row.id, "run-a")
    with pytest.raises(TransitionError, match="planned -> generated"):
        ledger.mark_generated(row.id, "run-a", generated())
    with pytest.raises(TransitionError, match="planned -> done"):
        ledger.mark_done(row.id, "run-a")
    assert ledger.get(row.id).status == "planned"  # the refused move changed nothing
    db.dispose()


def test_a_live_lease_is_busy_an_expired_one_is_taken_over_and_the_old_holder_stops(db_url: str) -> None:
    db = Database(db_url)
    closed: list[tuple[int, str]] = []
    ledger = ImageLedger(db, lease_s=60, on_takeover=lambda session, pk, dead: closed.append((pk, dead)))
    [row] = ledger.plan([planned(0)])
    assert row.id is not None
    assert ledger.claim(row.id, "run-a").state is ClaimState.claimed
    ledger.mark_generating(row.id, "run-a")
    assert ledger.claim(row.id, "run-b").state is ClaimState.busy
    assert ledger.claim(row.id, "run-a").state is ClaimState.claimed  # our own claim again: still ours
    assert ledger.renew([row.id], "run-a") == 1 and ledger.renew([row.id], "run-b") == 0
    expire(db, row.id)  # run-a died: its lease runs out
    claim = ledger.claim(row.id, "run-b")
    assert claim.state is ClaimState.claimed and claim.took_over_from == "run-a"
    assert closed == [(row.id, "run-a")]
    with pytest.raises(LeaseLostError):  # run-a comes back late: its result is never written
        ledger.mark_generated(row.id, "run-a", generated())
    assert ledger.mark_generating(row.id, "run-b").attempt_count == 2
    db.dispose()


def test_retries_across_runs_follow_the_failure_kind_and_the_attempt_limit(db_url: str) -> None:
    db = Database(db_url)
    ledger = ImageLedger(db, max_attempts=2)
    transient, rejected = (r.id for r in ledger.plan([planned(0), planned(1)]))
    assert transient is not None and rejected is not None
    for pk, kind in ((transient, FailureKind.transient), (rejected, FailureKind.rejected)):
        ledger.claim(pk, "run-1")
        ledger.mark_generating(pk, "run-1")
        ledger.mark_failed(pk, "run-1", kind, "HTTP 503")
    assert ledger.claim(rejected, "run-2").state is ClaimState.finished  # a rejection stays failed
    assert ledger.claim(transient, "run-2").state is ClaimState.claimed  # a transient failure is retried
    ledger.mark_generating(transient, "run-2")
    ledger.mark_failed(transient, "run-2", FailureKind.transient, "connection refused")
    assert ledger.claim(transient, "run-3").state is ClaimState.finished  # 2 attempts: the limit
    assert ledger.claim(transient, "run-3", retry_failed=True).state is ClaimState.claimed
    assert ledger.claim(rejected, "run-3", retry_failed=True).state is ClaimState.claimed
    db.dispose()


def test_a_placeholder_is_replaced_by_a_later_run(db_url: str) -> None:
    db = Database(db_url)
    ledger = ImageLedger(db)
    [row] = ledger.plan([planned(0)])
    assert row.id is not None
    ledger.claim(row.id, "run-1")
    ledger.mark_generating(row.id, "run-1")
    ledger.mark_generated(row.id, "run-1", generated())
    ledger.mark_placeholder(row.id, "run-1", reason="every real provider failed")
    assert ledger.get(row.id).status == "placeholder"
    assert ledger.claim(row.id, "run-2").state is ClaimState.claimed
    assert ledger.mark_generating(row.id, "run-2").status == "generating"
    db.dispose()


def _claim_all(url: str, pks: list[int], run_key: str, barrier: object, results: object) -> None:
    db = Database(url, migrate=False)
    ledger = ImageLedger(db, lease_s=600)
    barrier.wait()  # type: ignore[attr-defined]
    won = [pk for pk in pks if ledger.claim(pk, run_key).state is ClaimState.claimed]
    db.dispose()
    results.put((run_key, won))  # type: ignore[attr-defined]


def test_processes_racing_for_the_same_slots_each_get_a_slot_once(db_url: str) -> None:
    db = Database(db_url)
    ledger = ImageLedger(db)
    pks = [r.id for r in ledger.plan([planned(i) for i in range(30)])]
    db.dispose()
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    workers = [ctx.Process(target=_claim_all, args=(db_url, pks, f"run-{n}", barrier, results)) for n in range(4)]
    for worker in workers:
        worker.start()
    won = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    claimed = [pk for _, pks_won in won for pk in pks_won]
    assert sorted(claimed) == sorted(pks), "every slot claimed by exactly one process"
    db = Database(db_url)
    holders = {r.id: r.run_key for r in db.images()}
    for run_key, pks_won in won:
        assert all(holders[pk] == run_key for pk in pks_won)
    db.dispose()
    assert ImageStatus.placeholder.terminal
