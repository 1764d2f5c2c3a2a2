"""Alembic migrations of the metrics database, run in-process.

``upgrade(db)`` brings a database to the newest revision (``content-pipeline db
upgrade`` does the same from the command line; ``alembic upgrade head`` with the
repository's alembic.ini too). Concurrent starters are serialised: SQLite takes its
write lock (``BEGIN IMMEDIATE``) for the whole migration, PostgreSQL an advisory
transaction lock. A database made by the walking skeleton's ``create_all`` (tables,
no ``alembic_version``) is stamped at the initial revision, then upgraded.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Protocol

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
INITIAL_REVISION = "0001"
#: Key of the PostgreSQL advisory lock held while migrating (any fixed 64-bit number).
ADVISORY_LOCK_KEY = 7_212_905_310


class Database(Protocol):
    """What migrating needs of storage.db.Database (which satisfies it): its URL, its engine
    and the engine that writes (SQLite: ``BEGIN IMMEDIATE``)."""

    @property
    def url(self) -> str: ...

    @property
    def engine(self) -> Engine: ...

    @property
    def write_engine(self) -> Engine: ...


def alembic_config(url: str) -> Config:
    """An Alembic Config for ``url`` pointing at storage/migrations (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revisions() -> set[str]:
    return set(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads())


def current_revisions(db: Database) -> set[str]:
    with db.engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


def upgrade(db: Database, revision: str = "head") -> None:
    """Migrate ``db`` to ``revision`` (default the newest); a no-op when already there."""
    if revision == "head" and current_revisions(db) == head_revisions():
        return
    config = alembic_config(db.url)
    with _identity_paused(db), db.write_engine.connect() as connection:
        config.attributes["connection"] = connection
        tables = set(inspect(connection).get_table_names())
        connection.rollback()
        if "images" in tables and "alembic_version" not in tables:
            command.stamp(config, INITIAL_REVISION)
        command.upgrade(config, revision)


def downgrade(db: Database, revision: str) -> None:
    """Migrate ``db`` back to ``revision`` (``base`` drops every table)."""
    config = alembic_config(db.url)
    with _identity_paused(db), db.write_engine.connect() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def _identity_paused(db: Database) -> AbstractContextManager[None]:
    """storage.db.Database's pause of its identity check (the schema changes), else nothing."""
    paused = getattr(db, "identity_paused", None)
    return paused() if paused is not None else nullcontext()
