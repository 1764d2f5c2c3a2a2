"""The database's identity and faults, function level (issue 19): an installation id written
once; a database deleted or replaced under a live Database raises DatabaseLostError at the
next transaction (SQLite and PostgreSQL); a lock held past the busy timeout is one
DatabaseUnavailableError naming it; ``db rebuild``'s recovery of the ledger from the store's
sidecars (local folder and S3 through moto's server)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import text

from config.publishing import PublishingConfig
from domain.errors import DatabaseLostError, DatabaseUnavailableError
from domain.model import ImageSlot
from generation.rebuild import rebuild
from generation.upload import store_files
from storage.db import Database, utcnow
from storage.migrate import head_revisions
from storage.ledger import ClaimState, ImageLedger, PlannedImage
from storage.objects import ObjectStore, S3Config, open_store
from tests.s3server import S3Server
from tests.servers import photo


def test_the_installation_id_is_written_once_and_kept(db_url: str) -> None:
    db = Database(db_url)
    first = db.identity
    assert first is not None and first[0] and len(first[0]) == 32 and {first[1]} == head_revisions()
    db.dispose()
    again = Database(db_url)
    assert again.identity == first  # opened again (and migrated again: a no-op), the same id
    again.dispose()


def test_a_sqlite_file_deleted_under_a_live_database_stops_every_transaction(tmp_path: Path) -> None:
    path = tmp_path / "metrics.db"
    db = Database(f"sqlite:///{path}")
    assert db.images() == []
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        name.unlink(missing_ok=True)
    for _ in range(2):  # and every one after it: nothing more is recorded
        with pytest.raises(DatabaseLostError, match=r"the file is gone\); nothing more is recorded: restore it or run content-pipeline db rebuild"):
            ImageLedger(db).plan([planned(0)])
    assert not path.exists() or sqlite3.connect(path).execute("select count(*) from sqlite_master where name = 'images'").fetchone()[0] == 0
    db.dispose()


def test_another_database_in_place_is_detected(db_url: str, tmp_path: Path) -> None:
    """SQLite: another file moved in place; PostgreSQL: the database restored from another
    installation (its id changed) and the server's connections ended, as a restore does."""
    db = Database(db_url)
    expected = db.identity[0] if db.identity else None
    assert db.images() == []
    if db.is_sqlite:
        other = tmp_path / "other.db"
        Database(f"sqlite:///{other}").dispose()
        os.replace(other, db.path or "")
    else:
        with db.engine.begin() as connection:
            connection.execute(text("UPDATE installation SET installation_id = 'ffffffffffffffffffffffffffffffff'"))
        admin = Database(db_url, migrate=False)
        with admin.engine.begin() as connection:
            connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"))
        admin.dispose()
        with pytest.raises(DatabaseUnavailableError):  # the pooled connection that the server ended
            db.images()
    with pytest.raises(DatabaseLostError, match=f"installation id {expected} expected"):
        db.images()
    db.dispose()


def test_a_lock_held_past_the_busy_timeout_is_one_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "metrics.db"
    db = Database(f"sqlite:///{path}?timeout=0.5")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(DatabaseUnavailableError) as caught:
            ImageLedger(db).plan([planned(0)])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert str(caught.value) == f"database {path} is locked by another program (waited 0.5 s): let it finish or stop it, then run again"
    assert len(ImageLedger(db).plan([planned(0)])) == 1  # the lock gone, it works again
    db.dispose()


# -- db rebuild --------------------------------------------------------------------------------
def planned(index: int, *, private: bool = False) -> PlannedImage:
    slot = ImageSlot("daily", date(2026, 11, 24), "food", index, "food")
    return PlannedImage(slot, "pasta-dish", 2, f"pasta number {index}", "blurry", 320, 240, 20, 7.0, 1000 + index, prompt_private=private)


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ObjectStore:
    if request.param == "file":
        return open_store((tmp_path / "store").as_uri())
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)  # dummy credentials for moto, never real ones
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    server: S3Server = request.getfixturevalue("s3")
    bucket = f"rebuild-{tmp_path.name.lower().replace('_', '-')[-40:]}"
    server.client().create_bucket(Bucket=bucket)
    return open_store(f"s3://{bucket}/studio", s3=S3Config(endpoint_url=server.url))


def test_rebuild_recovers_the_stored_images_so_the_planner_finds_them_done(store: ObjectStore, tmp_path: Path) -> None:
    lost = Database(f"sqlite:///{tmp_path / 'lost.db'}")
    rows = ImageLedger(lost).plan([planned(0), planned(1, private=True), planned(2)])
    for row in rows[:2]:  # two images uploaded; the third never was
        spool = tmp_path / f"{row.image_id}.png"
        spool.write_bytes(photo(320, 240))
        row.spool_path, row.provider, row.model, row.generated_at, row.tags = str(spool), "automatic1111", "sdxl", utcnow(), ["food", "pasta"]
        stored = store_files(store, row, [], PublishingConfig())
        row.storage_key = stored.storage_key
    lost.dispose()

    db = Database(f"sqlite:///{tmp_path / 'rebuilt.db'}")
    report = rebuild(db, store)
    assert report.line() == "2 images recovered, 0 skipped"
    found = {r.idempotency_key: r for r in db.images()}
    assert set(found) == {rows[0].idempotency_key, rows[1].idempotency_key}
    public, private = found[rows[0].idempotency_key], found[rows[1].idempotency_key]
    assert (public.status, public.image_id, public.seed, public.provider, public.template, public.template_version) == (
        "done",
        rows[0].image_id,
        1000,
        "automatic1111",
        "pasta-dish",
        2,
    )
    assert public.published_at is not None and public.storage_key == rows[0].storage_key and public.tags == ["food", "pasta"]
    assert public.prompt == "pasta number 0" and len(db.renditions(public.id or 0)) == 1
    assert private.prompt is None and private.prompt_private  # never in the public sidecar, not needed
    # the planner finds the recovered slots finished: a re-run claims only the third
    ledger = ImageLedger(db)
    states = [ledger.claim(r.id or 0, "rerun").state for r in ledger.plan([planned(0), planned(1, private=True), planned(2)])]
    assert states == [ClaimState.finished, ClaimState.finished, ClaimState.claimed]

    assert rebuild(db, store).line() == "0 images recovered, 2 skipped (already in the database: 2)"
    store.delete(rows[0].storage_key or "")
    fresh = Database(f"sqlite:///{tmp_path / 'fresh.db'}")
    assert rebuild(fresh, store).line() == "1 images recovered, 1 skipped (original missing or changed in the store: 1)"
    db.dispose()
    fresh.dispose()
