"""Database fixtures: every database test runs on SQLite AND on the local PostgreSQL.

PostgreSQL: 127.0.0.1:5432, trust auth, user ``postgres`` (override with
``CP_TEST_POSTGRES_URL``). One uniquely named database per test session, created here
and dropped at the end; tables are emptied between tests. ``.ci/run`` starts the
cluster when none is running; without one the PostgreSQL cases are skipped with
the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.needs import missing

PG_ADMIN_URL = os.environ.get("CP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _sqlalchemy_url(conninfo: str, dbname: str) -> str:
    base = conninfo.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{dbname}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a fresh database on the local PostgreSQL, dropped after the session."""
    import psycopg

    name = f"cp_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        missing(f"no PostgreSQL at {PG_ADMIN_URL} ({exc}): apt-get install postgresql and start it (.ci/run installs and starts one)")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _sqlalchemy_url(PG_ADMIN_URL, name)
    finally:
        from storage.db import reset_databases

        reset_databases()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _empty_postgres(url: str) -> None:
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            tables = [t for t in inspect(conn).get_table_names() if t != "alembic_version"]
            if tables:
                conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL: a new SQLite file, or the session's PostgreSQL database emptied."""
    from storage.db import reset_databases

    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'metrics.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
        _empty_postgres(url)
        yield url
    reset_databases()
