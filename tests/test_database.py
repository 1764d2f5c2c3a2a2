"""The metrics database on SQLite and PostgreSQL through the same tests: Alembic
migrations, the audit trail of every generation, forward-only status, concurrent writers."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import inspect
from sqlmodel import SQLModel, select
from typer.testing import CliRunner

from domain.model import Attempt, ImageSlot
from storage.db import AttemptRecord, Database, ImageRecord
from storage.ledger import (
    ClaimState,
    GeneratedImage,
    ImageLedger,
    LeaseLostError,
    PlannedImage,
)
from storage.migrate import current_revisions, head_revisions
from tests.rows import flow_summary, plan_row

TABLES = {"images", "attempts", "renditions", "alerts", "budget_periods", "budget_ledger", "reservations", "deliveries", "alembic_version"}


def test_migrations_create_every_table_and_match_the_models(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    db = Database(db_url)
    assert current_revisions(db) == head_revisions()
    with db.engine.connect() as connection:
        assert TABLES <= set(inspect(connection).get_table_names())
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == [], f"models and migrations differ (add a migration): {diff}"
    Database(db_url).dispose()  # a second start finds the schema current
    db.dispose()


def test_downgrade_to_base_and_back(db_url: str) -> None:
    from storage.migrate import downgrade, upgrade

    db = Database(db_url)
    downgrade(db, "base")
    with db.engine.connect() as connection:
        assert set(inspect(connection).get_table_names()) <= {"alembic_version"}
    upgrade(db)
    with db.engine.connect() as connection:
        assert TABLES <= set(inspect(connection).get_table_names())
    db.dispose()


def test_skeleton_database_is_stamped_then_upgraded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A database made by the walking skeleton's create_all (no alembic_version) keeps its rows."""
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE images (id INTEGER PRIMARY KEY, idempotency_key VARCHAR(300) NOT NULL UNIQUE,
              image_id VARCHAR(32) NOT NULL, flow VARCHAR(40) NOT NULL, run_date DATE NOT NULL, slot VARCHAR(120) NOT NULL,
              slot_index INTEGER NOT NULL, "trigger" VARCHAR(40) NOT NULL, status VARCHAR(20) NOT NULL,
              category VARCHAR(40) NOT NULL, template VARCHAR(80), template_version INTEGER, variant VARCHAR(80),
              prompt VARCHAR, negative_prompt VARCHAR, width INTEGER, height INTEGER, num_inference_steps INTEGER,
              guidance_scale FLOAT, seed INTEGER, provider VARCHAR(40), model VARCHAR(200), is_placeholder BOOLEAN NOT NULL,
              cost_usd FLOAT NOT NULL, seconds FLOAT NOT NULL, spool_path VARCHAR, checksum VARCHAR(64), storage_key VARCHAR,
              tags JSON NOT NULL, error VARCHAR, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL, generated_at DATETIME);
            CREATE TABLE attempts (id INTEGER PRIMARY KEY, image_pk INTEGER NOT NULL REFERENCES images(id),
              provider VARCHAR(40) NOT NULL, model VARCHAR(200), status VARCHAR(20) NOT NULL, error_class VARCHAR(40),
              error VARCHAR, http_status INTEGER, latency_s FLOAT NOT NULL, cost_usd FLOAT NOT NULL, created_at DATETIME NOT NULL);
            CREATE TABLE renditions (id INTEGER PRIMARY KEY, image_pk INTEGER NOT NULL, name VARCHAR(40) NOT NULL,
              storage_key VARCHAR NOT NULL, format VARCHAR(10) NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
              bytes INTEGER NOT NULL, checksum VARCHAR(64) NOT NULL);
            CREATE TABLE alerts (id INTEGER PRIMARY KEY, rule VARCHAR(60) NOT NULL, scope VARCHAR(120) NOT NULL,
              title VARCHAR NOT NULL, message VARCHAR NOT NULL, delivered BOOLEAN NOT NULL, created_at DATETIME NOT NULL);
            INSERT INTO images VALUES (1, 'daily:2026-11-20:0600:0', 'abc', 'daily', '2026-11-20', '0600', 0, 'cli', 'done',
              'food', 'pasta-dish', 1, NULL, 'pasta', NULL, 1024, 1024, 30, 7.5, 1, 'placeholder', 'p', 1, 0, 0.1, NULL, NULL,
              'placeholder/food/x.png', '[]', NULL, '2026-11-20 06:00:00', '2026-11-20 06:00:00', NULL);
        """)
    db = Database(f"sqlite:///{path}")
    assert current_revisions(db) == head_revisions()
    [row] = db.images()
    assert row.idempotency_key == "daily:2026-11-20:0600:0" and row.upload_pending is False
    db.dispose()


def test_db_upgrade_command(db_url: str, make_config) -> None:  # type: ignore[no-untyped-def]
    from cli.main import app

    make_config(database_url=db_url.replace("postgres@", "postgres:s3cret@"))  # trust auth ignores the password
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert f"at revision {max(head_revisions())}" in result.output
    assert "s3cret" not in result.output  # a password is never printed
    current = CliRunner().invoke(app, ["db", "current"])
    assert current.exit_code == 0 and f"current: {max(head_revisions())}" in current.output


def test_audit_trail_every_generation_is_queryable(db_url: str) -> None:
    """Who triggered it, prompt, provider, cost, outcome: one query answers for each generation."""
    db = Database(db_url)
    slot = ImageSlot("daily", date(2026, 11, 21), "0600-food", 0, "food")
    ledger = ImageLedger(db)
    plan = PlannedImage(
        slot=slot,
        trigger="schedule",
        template="pasta-dish",
        template_version=1,
        prompt="overhead food photography of pesto linguine",
        negative_prompt="blurry",
        width=1024,
        height=1024,
        num_inference_steps=30,
        guidance_scale=7.5,
        seed=7,
    )
    [row] = ledger.plan([plan])
    assert ledger.plan([plan])[0].id == row.id  # the idempotency key: one row per slot
    assert ledger.claim(row.id, "run-1").state is ClaimState.claimed
    ledger.mark_generating(row.id, "run-1")
    attempts = [
        Attempt("automatic1111", "sd15", "failed", 1.5, error_class="transient", error="HTTP 500", http_status=500),
        Attempt("stability", "sd3", "success", 4.2, cost_usd=0.035, quota_remaining=90, quota_limit=100),
    ]
    image = GeneratedImage(
        provider="stability", model="sd3", seed=7, width=1024, height=1024, is_placeholder=False, seconds=4.2, spool_path="/spool/x.png", checksum="0" * 64
    )
    assert ledger.mark_generated(row.id, "run-1", image, attempts=attempts).cost_usd == pytest.approx(0.035)
    ledger.mark_done(row.id, "run-1")
    with pytest.raises(LeaseLostError):  # a done slot is nobody's: no transition moves it back
        ledger.mark_generating(row.id, "run-1")
    with db.session() as session:
        trail = session.exec(
            select(
                ImageRecord.trigger,
                ImageRecord.prompt,
                AttemptRecord.provider,
                AttemptRecord.model,
                AttemptRecord.cost_usd,
                AttemptRecord.status,
                AttemptRecord.error,
                AttemptRecord.quota_remaining,
            )
            .join(AttemptRecord, AttemptRecord.image_pk == ImageRecord.id)
            .where(ImageRecord.run_date == date(2026, 11, 21))
            .order_by(AttemptRecord.id)
        ).all()
    assert [tuple(t) for t in trail] == [
        ("schedule", "overhead food photography of pesto linguine", "automatic1111", "sd15", 0.0, "failed", "HTTP 500", None),
        ("schedule", "overhead food photography of pesto linguine", "stability", "sd3", 0.035, "success", None, 90),
    ]
    db.dispose()


def test_concurrent_writers_never_fail(db_url: str) -> None:
    """8 threads planning and advancing rows at once: no 'database is locked', no lost update."""
    db = Database(db_url)
    ledger = ImageLedger(db)
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(worker: int) -> None:
        try:
            barrier.wait()
            for index in range(5):
                [row] = ledger.plan(
                    [
                        PlannedImage(
                            slot=ImageSlot("daily", date(2026, 11, 21), f"w{worker}", index, "food"),
                            template="t",
                            template_version=1,
                            prompt="p",
                            negative_prompt="",
                            width=512,
                            height=512,
                            num_inference_steps=30,
                            guidance_scale=7.5,
                            seed=index,
                        )
                    ]
                )
                assert ledger.claim(row.id, f"run-{worker}").state is ClaimState.claimed
                ledger.mark_generating(row.id, f"run-{worker}")
                ledger.mark_generated(
                    row.id,
                    f"run-{worker}",
                    GeneratedImage(
                        provider="placeholder",
                        model="p",
                        seed=index,
                        width=512,
                        height=512,
                        is_placeholder=True,
                        seconds=0.01,
                        spool_path="/spool/p.png",
                        checksum="0" * 64,
                    ),
                    attempts=[Attempt("placeholder", "p", "success", 0.01)],
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    rows = db.images()
    assert len(rows) == 40 and all(r.status == "generated" for r in rows)
    assert len(db.attempts()) == 40
    db.dispose()


def test_sqlite_pragmas_and_immediate_writes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    statements: list[str] = []
    from sqlalchemy import event

    event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    plan_row(db, ImageSlot("daily", date(2026, 11, 21), "s", 0, "food"))
    assert "BEGIN IMMEDIATE" in statements
    db.dispose()


@pytest.mark.usefixtures("prefect_server")
def test_flow_end_to_end_on_postgresql(postgres_url: str, make_config) -> None:  # type: ignore[no-untyped-def]
    """A real flow run with its metrics on PostgreSQL: rows, attempts, renditions, the ledger."""
    from domain.model import ImageFormat, Quality
    from flows.adhoc import generate
    from tests.dbfixtures import _empty_postgres

    _empty_postgres(postgres_url)
    make_config(database_url=postgres_url, budget={"daily_usd": 2.0})
    state = generate(template="pasta-dish", count=2, quality=Quality.standard, format=ImageFormat.square, batch="pg", return_state=True)
    # offline defaults: placeholders stand in, so the run tells it did not make real content
    assert state.is_failed() and "2 of 2 images not done as real content: 2 placeholder" in (state.message or "")
    summary = flow_summary(state)
    assert [i.status for i in summary.images] == ["placeholder", "placeholder"]
    again = flow_summary(generate(template="pasta-dish", count=2, quality=Quality.standard, format=ImageFormat.square, batch="pg", return_state=True))
    assert [i.image_id for i in again.images] == [i.image_id for i in summary.images]  # the same slots resumed
    from wiring.runtime import get_runtime

    db = get_runtime().db
    assert db.engine.dialect.name == "postgresql"
    rows = db.images()
    assert len(rows) == 2 and all(r.trigger == "python" and r.tags for r in rows)
    # the re-run tried the real chain again for each placeholder slot (it would replace them)
    assert len(db.attempts()) == 4 and all(len(db.renditions(r.id)) == 3 for r in rows)
    assert all(r.attempt_count == 2 and r.run_key is None and r.lease_expires_at is None for r in rows)
