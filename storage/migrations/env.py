"""Alembic environment: the SQLModel metadata of storage.db, one transaction per run.

Used in-process by storage.migrate (which passes its connection in
``config.attributes["connection"]``) or by ``alembic upgrade head`` with alembic.ini
(URL from ``-x url=...``, ``CONTENT_PIPELINE_DATABASE_URL`` or the configuration).
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import storage.db  # noqa: F401  (registers the tables on SQLModel.metadata)
from storage.migrate import ADVISORY_LOCK_KEY
from storage.db import Database
from config.settings import get_settings

config = context.config
target_metadata = SQLModel.metadata


def _run(connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    with connection.begin():  # BEGIN IMMEDIATE on SQLite (storage.db write engine)
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK_KEY})")
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=sqlite, transactional_ddl=True, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return

    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        url = get_settings().database_url
    db = Database(str(url), migrate=False)
    try:
        with db.write_engine.connect() as connection:
            _run(connection)
    finally:
        db.dispose()


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
