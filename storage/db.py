"""The metrics database: one row per image slot, per provider attempt, per rendition, per alert,
plus the budget ledger (``budget_periods``, ``budget_ledger``; see generation/budget.py).

SQLModel tables on SQLite by default (WAL journal, 30 s busy timeout, ``BEGIN
IMMEDIATE`` for write transactions) or any SQLAlchemy URL (PostgreSQL:
``postgresql+psycopg://...``). A process a person waits on (the command line) turns on
a fail-fast check with ``set_fail_fast(seconds)``: a SQLite file whose write lock
another program holds longer than that, or a server that does not connect within it,
raises ``DatabaseUnavailableError`` at once instead of after the busy timeout; flows
and workers keep the 30 s wait that concurrent runs need. The schema comes from the Alembic migrations in
storage/migrations, applied when a Database starts (storage/migrate.py); a change to
these tables needs a new migration (tests/test_database.py compares them). An image row is written
with status ``planned`` before any generation; every later change of it is a typed
transition of storage/ledger.py (claims with leases, one transaction each), which is what
makes a re-run resume instead of repeat.
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, UniqueConstraint, event, inspect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, create_engine, select

from domain.model import Attempt, ImageStatus
from domain.errors import DatabaseLostError, DatabaseUnavailableError
from storage.crypto import EncryptedText
from storage.migrate import upgrade
from storage.migrate import head_revisions


def utcnow() -> datetime:
    """Now, timezone-aware UTC (the database stores UTC)."""
    return datetime.now(UTC)


class ImageRecord(SQLModel, table=True):
    """One image slot and everything known about its image. Costs in USD, times in seconds."""

    __tablename__ = "images"

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True, index=True, max_length=300)
    image_id: str = Field(index=True, max_length=32)
    flow: str = Field(index=True, max_length=40)
    run_date: date = Field(index=True)
    slot: str = Field(max_length=120)
    slot_index: int
    trigger: str = Field(default="cli", max_length=40)
    status: str = Field(default=ImageStatus.planned.value, index=True, max_length=20)
    category: str = Field(index=True, max_length=40)
    template: str | None = Field(default=None, max_length=80)
    template_version: int | None = None
    variant: str | None = Field(default=None, max_length=80)
    prompt: str | None = Field(default=None, sa_type=EncryptedText)  # encrypted at rest with PROMPT_ENCRYPTION_KEY
    negative_prompt: str | None = Field(default=None, sa_type=EncryptedText)
    width: int | None = None
    height: int | None = None
    num_inference_steps: int | None = None
    guidance_scale: float | None = None
    seed: int | None = Field(default=None, sa_type=BigInteger)  # 0..2**32-1: past PostgreSQL's INTEGER
    provider: str | None = Field(default=None, index=True, max_length=40)
    model: str | None = Field(default=None, max_length=200)
    is_placeholder: bool = False
    cost_usd: float = 0.0
    seconds: float = 0.0
    spool_path: str | None = None
    checksum: str | None = Field(default=None, max_length=64)
    storage_key: str | None = None
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False, default=list))
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    generated_at: datetime | None = None
    #: The upload failed (store unreachable): the files wait in the spool; the next run uploads them.
    upload_pending: bool = Field(default=False, index=True)
    # issue 4 (post-processing): quality score 0..1 and its measures, 64-bit pHash (16 hex),
    # the image_id this one nearly duplicates, the provenance sidecar's storage key
    quality_score: float | None = None
    quality_metrics: dict[str, float] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    phash: str | None = Field(default=None, index=True, max_length=16)
    duplicate_of: str | None = Field(default=None, max_length=32)
    sidecar_key: str | None = None
    #: A template's pins and img2img inputs, JSON: provider, model, loras [[name, weight]],
    #: reference_image / mask (absolute path or https URL), strength (0..1).
    request_options: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    #: The size (``1536x1024``) or aspect ratio (``16:9``) actually asked of the model.
    mapped_size: str | None = Field(default=None, max_length=40)
    # content safety and privacy: NudeNet detections [{"class", "score", "box"}] (imaging.safety);
    # the prompt is kept out of published files (template / category ``embed_prompt: false``)
    safety: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    prompt_private: bool = False
    #: The claim (storage/ledger.py): the run holding the slot and until when (UTC); None: free.
    run_key: str | None = Field(default=None, max_length=64)
    lease_expires_at: datetime | None = Field(default=None, index=True)
    #: Claims that sent the slot to the provider chain (retries across runs stop at ``pipeline.max_attempts``).
    attempt_count: int = 0
    #: Why a failed / placeholder / skipped slot ended so: domain.model.FailureKind.
    failure_kind: str | None = Field(default=None, max_length=20)
    #: Where a local provider made the image: ``cuda``, ``mps`` or ``cpu`` (the CPU fallback
    #: after a GPU out-of-memory); None for remote providers.
    device: str | None = Field(default=None, max_length=20)
    # publishing (publishing/review.py, publishing/publish.py): the version of the slot (1, 2, ...) and
    # the row it regenerates; who decided the review, when, and the note; when it was published
    version: int = Field(default=1)
    previous_pk: int | None = Field(default=None, foreign_key="images.id", index=True)
    reviewed_by: str | None = Field(default=None, max_length=120)
    reviewed_at: datetime | None = None
    review_note: str | None = None
    published_at: datetime | None = Field(default=None, index=True)
    #: The client (brand) owning the image's template or category (config/clients.py); None: no client.
    client: str | None = Field(default=None, index=True, max_length=40)


class AttemptRecord(SQLModel, table=True):
    """One call to one provider (or one provider skipped), with its outcome and cost."""

    __tablename__ = "attempts"

    id: int | None = Field(default=None, primary_key=True)
    image_pk: int = Field(foreign_key="images.id", index=True)
    provider: str = Field(index=True, max_length=40)
    model: str | None = Field(default=None, max_length=200)
    #: success | failed | skipped | in_flight (written before a paid call is sent: a run killed
    #: meanwhile leaves it, at its may-have-billed cost) | pending (a job left running at our
    #: timeout, billed: the next run polls it by ``job_id``) | resumed (its job's result was taken)
    status: str = Field(max_length=20)
    error_class: str | None = Field(default=None, max_length=40)
    error: str | None = None
    http_status: int | None = None
    latency_s: float = 0.0
    cost_usd: float = 0.0
    created_at: datetime = Field(default_factory=utcnow, index=True)
    #: Quota hints of the answer (rate-limit headers / provider metadata): calls left and the limit.
    quota_remaining: int | None = None
    quota_limit: int | None = None
    #: The provider's id of the job (Replicate prediction, fal request, BFL task), recorded
    #: as soon as the submit is answered: a resumed slot polls it instead of paying again.
    job_id: str | None = Field(default=None, max_length=200, index=True)
    #: The budget reservation (budget_ledger.id) of the call: its in-flight row is found by it.
    reservation_id: int | None = Field(default=None, index=True)


class RenditionRecord(SQLModel, table=True):
    """One stored file of an image: the original or a rendition (sizes in pixels and bytes)."""

    __tablename__ = "renditions"

    id: int | None = Field(default=None, primary_key=True)
    image_pk: int = Field(foreign_key="images.id", index=True)
    name: str = Field(max_length=40)
    storage_key: str
    format: str = Field(max_length=10)
    width: int
    height: int
    bytes: int
    checksum: str = Field(max_length=64)


class AlertRecord(SQLModel, table=True):
    """An alert raised by a rule: sent (``delivered``) or only logged."""

    __tablename__ = "alerts"

    id: int | None = Field(default=None, primary_key=True)
    rule: str = Field(index=True, max_length=60)
    scope: str = Field(default="", max_length=120)
    title: str
    message: str
    delivered: bool = False
    created_at: datetime = Field(default_factory=utcnow, index=True)


class BudgetPeriodRecord(SQLModel, table=True):
    """Running totals of one budget scope (``global`` or a provider) over one period (USD).

    ``period`` is ``day`` or ``month``; ``period_key`` the local date (``2026-11-21``) or
    month (``2026-11``) in the configured timezone. Reservations lock this row
    (``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so
    ``spent_usd + reserved_usd`` never passes the cap, whatever the number of workers.
    """

    __tablename__ = "budget_periods"
    __table_args__ = (UniqueConstraint("scope", "period", "period_key", name="uq_budget_period"),)

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=40)
    period: str = Field(max_length=10)
    period_key: str = Field(max_length=10)
    spent_usd: float = 0.0
    reserved_usd: float = 0.0
    updated_at: datetime = Field(default_factory=utcnow)


class BudgetLedgerRecord(SQLModel, table=True):
    """One reservation: ``reserved`` -> ``settled`` (real cost), ``released`` (failed call, 0) or
    ``expired`` (never settled: counted at its estimate); or ``refused`` (would pass a cap)."""

    __tablename__ = "budget_ledger"

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(index=True, max_length=40)
    state: str = Field(index=True, max_length=10)
    estimate_usd: float
    actual_usd: float = 0.0
    day_key: str = Field(index=True, max_length=10)
    month_key: str = Field(index=True, max_length=10)
    reason: str | None = None
    created_at: datetime = Field(default_factory=utcnow, index=True)
    settled_at: datetime | None = None
    #: The image slot and the run (claim) the call was made for: a dead run's reservations are
    #: closed when its claim's lease expires (storage/ledger.py).
    image_pk: int | None = Field(default=None, index=True)
    run_key: str | None = Field(default=None, index=True, max_length=64)
    #: The client of the slot the call was made for: its caps are counted too (None: no client).
    client: str | None = Field(default=None, index=True, max_length=40)


class ReservationRecord(SQLModel, table=True):
    """A published image reserved for a post on ``for_date`` (and ``channel``).

    ``active_image_pk`` equals ``image_pk`` while the reservation holds and is NULL once
    released: its unique index lets one image have at most one live reservation, whatever
    the number of callers (NULLs never collide), and keeps released ones as history.
    """

    __tablename__ = "reservations"
    __table_args__ = (UniqueConstraint("active_image_pk", name="uq_reservation_active_image"),)

    id: int | None = Field(default=None, primary_key=True)
    image_pk: int = Field(foreign_key="images.id", index=True)
    active_image_pk: int | None = Field(default=None)
    category: str = Field(index=True, max_length=40)
    for_date: date = Field(index=True)
    channel: str | None = Field(default=None, max_length=60)
    reserved_by: str | None = Field(default=None, max_length=120)
    created_at: datetime = Field(default_factory=utcnow)
    released_at: datetime | None = None


class DeliveryRecord(SQLModel, table=True):
    """One delivery of published images: a webhook POST per image (``kind`` ``webhook``) or
    the Apprise announcement of a batch (``apprise``); ``target`` never holds a secret (the
    webhook URL without its query, or ``apprise``). ``status`` ``delivered`` / ``failed`` /
    ``refused`` (private address); ``attempts`` made, the last ``http_status`` and error."""

    __tablename__ = "deliveries"

    id: int | None = Field(default=None, primary_key=True)
    image_pk: int | None = Field(default=None, foreign_key="images.id", index=True)
    kind: str = Field(max_length=20)
    target: str
    status: str = Field(index=True, max_length=20)
    attempts: int = 0
    http_status: int | None = None
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow, index=True)


class InstallationRecord(SQLModel, table=True):
    """The one row (``id`` 1) naming this database: ``installation_id`` (32 hex) is written
    once, when the database is created or migrated (migration 0011), and never changes; a
    run compares it at each transaction with the one it started with (``Database.check``)."""

    __tablename__ = "installation"

    id: int | None = Field(default=None, primary_key=True)
    installation_id: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow)


#: SQLite's busy timeout (seconds) unless the URL's ``?timeout=`` says otherwise.
SQLITE_BUSY_TIMEOUT_S = 30.0


class Database:
    """Engine plus the few queries the pipeline needs. Thread-safe; one per process.

    Identity: once migrated, the database's installation id and schema revision are read
    (``identity``); every later checkout of a connection (a transaction) compares them, and
    on SQLite the file's device and inode too (a ``stat``: a file deleted or replaced
    under open connections is otherwise written on unseen). A mismatch raises
    DatabaseLostError, then and at every transaction after it. A transaction that waits
    past SQLite's busy timeout (``sqlite:///file.db?timeout=SECONDS``, default 30) or
    whose server is gone raises DatabaseUnavailableError naming the cause.
    """

    def __init__(self, url: str, *, migrate: bool = True, fail_fast_s: float | None = None) -> None:
        """Open (and by default migrate) the database at ``url``.

        ``fail_fast_s`` (seconds; None: off): on SQLite, first take and release the write
        lock waiting at most that long; on a server, the connect timeout. Raises
        DatabaseUnavailableError when the lock is held by another program (or the file
        cannot be opened); SQLAlchemy's OperationalError when a server does not answer.
        """
        self.url = url
        kwargs: dict[str, Any] = {}
        #: The SQLite file (None: a server or an in-memory database).
        self.path: str | None = None
        self.busy_timeout_s = SQLITE_BUSY_TIMEOUT_S
        #: ``(installation id, schema revision)`` read once migrated; None: not checked.
        self.identity: tuple[str | None, str | None] | None = None
        self._file_id: tuple[int, int] | None = None
        #: Why the database is lost (DatabaseLostError's message), once it is.
        self.lost: str | None = None
        if url.startswith("sqlite"):
            parsed = make_url(url)
            path = parsed.database or ""
            self.busy_timeout_s = float(str(parsed.query.get("timeout", SQLITE_BUSY_TIMEOUT_S)))
            if path and path != ":memory:":
                self.path = path
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                if fail_fast_s:
                    _probe_write_lock(path, fail_fast_s)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": self.busy_timeout_s}
        elif fail_fast_s and url.startswith("postgresql"):
            # libpq's connect_timeout, whole seconds, at least 2
            # (https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNECT-CONNECT-TIMEOUT)
            kwargs["connect_args"] = {"connect_timeout": max(2, math.ceil(fail_fast_s))}
        self.engine: Engine = create_engine(url, **kwargs)
        #: Transactions that write: ``BEGIN IMMEDIATE`` on SQLite (the write lock up front, so
        #: a read-then-write never fails half-way with "database is locked").
        self.write_engine: Engine = self.engine
        self._write_lock: AbstractContextManager[Any] = nullcontext()
        if url.startswith("sqlite"):
            self._write_lock = threading.RLock()
            busy_ms = round(self.busy_timeout_s * 1000)
            event.listen(self.engine, "connect", lambda dbapi_connection, _record: _sqlite_pragmas(dbapi_connection, busy_ms))
            event.listen(self.engine, "begin", _sqlite_begin)
            self.write_engine = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        event.listen(self.engine, "handle_error", self._translate_error)
        if migrate:
            upgrade(self)
            self.identity = ensure_installation(self)
            if self.path:
                self._file_id = _file_id(self.path)
            # SQLite: every checkout (a stat and one indexed read); a server: every new connection
            event.listen(self.engine.pool, "checkout" if self.is_sqlite else "connect", self._on_connection)

    @contextmanager
    def identity_paused(self) -> Iterator[None]:
        """No identity check while migrating through this Database (``db upgrade``, a
        downgrade): the schema it checks is what changes. Read again afterwards."""
        checked, self.identity = self.identity, None
        try:
            yield
        finally:
            if checked is not None and not self.lost and _has_installation(self.engine):  # None below migration 0011: unchecked
                self.identity = ensure_installation(self)
                self._file_id = _file_id(self.path) if self.path else None

    @property
    def where(self) -> str:
        """The database as said in messages: the SQLite file, or the URL without its password."""
        return self.path or make_url(self.url).render_as_string(hide_password=True)

    def check(self, dbapi_connection: Any) -> None:
        """Raise DatabaseLostError unless the database behind ``dbapi_connection`` is the
        one this Database started with (see the class doc); a no-op before it is known."""
        if self.lost:
            raise DatabaseLostError(self.lost)
        if self.identity is None:
            return
        moved = self.path is not None and self._file_id is not None and _file_id(self.path) != self._file_id
        found = (None, None) if moved else _read_identity(dbapi_connection)
        if found != self.identity:
            expected, revision = self.identity
            seen = f"found {found[0]}" if found[0] else "none found"
            if moved:
                seen = "another file in its place" if self.path and os.path.exists(self.path) else "the file is gone"
            elif found[0] == expected:
                seen = f"schema revision {found[1]} instead of {revision}"
            self.lost = (
                f"the metrics database {self.where} was deleted or replaced during the run (installation id {expected} expected, {seen}); "
                "nothing more is recorded: restore it or run content-pipeline db rebuild"
            )
            raise DatabaseLostError(self.lost)

    def _on_connection(self, dbapi_connection: Any, *_args: Any) -> None:
        self.check(dbapi_connection)

    def _translate_error(self, context: Any) -> None:
        """SQLAlchemy's ``handle_error`` hook: a lock held past the busy timeout or a server
        gone becomes DatabaseUnavailableError (one line naming the cause); others pass."""
        original = context.original_exception
        if isinstance(original, DatabaseUnavailableError):
            raise original
        text = one_line_of(original)
        if self.is_sqlite and ("database is locked" in text or "database is busy" in text):
            raise DatabaseUnavailableError(
                f"database {self.where} is locked by another program (waited {self.busy_timeout_s:g} s): let it finish or stop it, then run again"
            ) from original
        if not self.is_sqlite and (context.is_disconnect or _connection_failure(original)):
            raise DatabaseUnavailableError(f"database: {text} (the metrics database {self.where} is unreachable: start it or fix database_url)") from original

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """A session whose transaction takes the write lock first (SQLite ``BEGIN IMMEDIATE``).

        On SQLite the threads of this process also queue on one in-process lock first: a
        thread waiting in SQLite's busy handler polls the file lock with growing sleeps
        (1, 2, 5, 10 ... 100 ms), so with a run's eight image threads writing, the lock
        sat free between holders; the in-process queue hands it over at once. Other
        processes still wait in the busy handler (``timeout``)."""
        with self._write_lock, Session(self.write_engine, expire_on_commit=False) as session:
            yield session

    # -- images (written only by storage/ledger.py, the state machine) ----------------
    def get(self, pk: int) -> ImageRecord:
        with self.session() as session:
            row = session.get(ImageRecord, pk)
            if row is None:
                raise KeyError(f"no image row {pk}")
            return row

    def images(self, *, flow: str | None = None, run_date: date | None = None, key_prefix: str | None = None) -> list[ImageRecord]:
        with self.session() as session:
            query = select(ImageRecord)
            if flow:
                query = query.where(ImageRecord.flow == flow)
            if run_date:
                query = query.where(ImageRecord.run_date == run_date)
            if key_prefix:
                query = query.where(col(ImageRecord.idempotency_key).startswith(key_prefix))
            return list(session.exec(query.order_by(col(ImageRecord.id))))

    # -- attempts and renditions ----------------------------------------------------
    def add_attempt(self, pk: int, attempt: Attempt) -> AttemptRecord:
        with self.write_session() as session:
            row = attempt_record(pk, attempt)
            session.add(row)
            session.commit()
            session.refresh(row)
            return row

    def attempts(self, pk: int | None = None) -> list[AttemptRecord]:
        with self.session() as session:
            query = select(AttemptRecord)
            if pk is not None:
                query = query.where(AttemptRecord.image_pk == pk)
            return list(session.exec(query.order_by(col(AttemptRecord.id))))

    def replace_renditions(self, pk: int, renditions: list[RenditionRecord]) -> None:
        """Store the renditions of image ``pk`` (a re-run replaces, never duplicates)."""
        with self.write_session() as session:
            for old in session.exec(select(RenditionRecord).where(RenditionRecord.image_pk == pk)):
                session.delete(old)
            for rendition in renditions:
                rendition.image_pk = pk
                session.add(rendition)
            session.commit()

    def renditions(self, pk: int) -> list[RenditionRecord]:
        with self.session() as session:
            return list(session.exec(select(RenditionRecord).where(RenditionRecord.image_pk == pk).order_by(col(RenditionRecord.id))))

    def dispose(self) -> None:
        self.engine.dispose()


def one_line_of(exc: BaseException, limit: int = 300) -> str:
    """The first line of ``exc``'s message, at most ``limit`` characters."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return text if len(text) <= limit else text[:limit] + "…"


def _connection_failure(exc: BaseException) -> bool:
    """A server's error that says the connection failed or was ended (SQLSTATE class 08,
    57P admin shutdown; https://www.postgresql.org/docs/current/errcodes-appendix.html), or
    a driver error with no SQLSTATE at all (refused, timed out)."""
    state = getattr(exc, "sqlstate", "") or ""
    return type(exc).__name__ == "OperationalError" and (not state or state.startswith(("08", "57P")))


def _file_id(path: str) -> tuple[int, int] | None:
    """``(device, inode)`` of ``path``; None when it is gone."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return (found.st_dev, found.st_ino)


#: One indexed read: the installation id and the schema revision (one head).
_IDENTITY_SQL = "SELECT installation_id, (SELECT MAX(version_num) FROM alembic_version) FROM installation WHERE id = 1"


def _read_identity(dbapi_connection: Any) -> tuple[str | None, str | None]:
    """``(installation id, revision)`` through a raw DB-API connection; ``(None, None)``
    when the tables are gone (a new empty file). PostgreSQL's failed read is rolled back."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(_IDENTITY_SQL)
        row = cursor.fetchone()
    except Exception:  # no such table: another database, or an empty one
        row = None
    finally:
        cursor.close()
        with contextlib.suppress(Exception):
            dbapi_connection.rollback()  # no transaction left open on the checked connection
    return (row[0], row[1]) if row else (None, None)


def _has_installation(engine: Engine) -> bool:
    with engine.connect() as connection:
        return inspect(connection).has_table(InstallationRecord.__tablename__)


def ensure_installation(db: Database) -> tuple[str | None, str | None]:
    """The database's ``(installation id, revision)``, writing the installation row first
    when it is missing (a database whose row was emptied by hand). Two processes opening such
    a database at once both try: the second's insert meets the first's row (IntegrityError)
    and reads it."""
    with contextlib.suppress(IntegrityError), db.write_session() as session:  # IntegrityError: another process wrote it first
        if session.get(InstallationRecord, 1) is None:
            session.add(InstallationRecord(id=1, installation_id=uuid.uuid4().hex))
            session.commit()
    with db.engine.connect() as connection:
        return _read_identity(connection.connection.dbapi_connection)


def _sqlite_pragmas(dbapi_connection: Any, busy_ms: int = round(SQLITE_BUSY_TIMEOUT_S * 1000)) -> None:
    # pysqlite's own transaction handling off: _sqlite_begin emits BEGIN [IMMEDIATE] itself
    # (https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#serializable-isolation-savepoints-transactional-ddl)
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _probe_write_lock(path: str, seconds: float) -> None:
    """Read the schema revision of ``path``, then take SQLite's write lock (``BEGIN
    IMMEDIATE``) and release it, each waiting at most ``seconds``: DatabaseUnavailableError
    when another program holds the lock (an open write transaction, or an exclusive lock
    that also stops readers) or the file cannot be opened. A database not at the newest
    revision skips the write check: a concurrent run may be migrating it, holding the
    lock for the whole migration, and this one must wait for that, not fail. Locking: https://www.sqlite.org/lockingv3.html, https://www.sqlite.org/wal.html"""
    try:
        connection = sqlite3.connect(path, timeout=seconds, isolation_level=None)
    except sqlite3.Error as exc:
        raise DatabaseUnavailableError(f"database {path}: {exc}") from exc
    try:
        try:
            revisions = {row[0] for row in connection.execute("SELECT version_num FROM alembic_version")}
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            revisions = set()

        if revisions != head_revisions():
            return  # a new or older schema: another run may be migrating it, and writers wait for that
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise DatabaseUnavailableError(
                f"database {path} is locked by another program (waited {seconds:g} s): let it finish or stop it, then run again"
            ) from exc
        raise DatabaseUnavailableError(f"database {path}: {exc}") from exc
    except sqlite3.Error as exc:
        raise DatabaseUnavailableError(f"database {path}: {exc}") from exc
    finally:
        connection.close()


def _sqlite_begin(connection: Any) -> None:
    mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


_databases: dict[str, Database] = {}
_databases_lock = threading.Lock()
#: The fail-fast wait (seconds) of get_database; None: off (see set_fail_fast).
_fail_fast_s: float | None = None


def set_fail_fast(seconds: float | None) -> None:
    """Make get_database's databases opened from now on in this process fail fast (see
    Database's ``fail_fast_s``): for processes a person waits on, such as the command line."""
    global _fail_fast_s
    _fail_fast_s = seconds


def get_database(url: str) -> Database:
    """One Database per URL per process."""
    with _databases_lock:
        if url not in _databases:
            _databases[url] = Database(url, fail_fast_s=_fail_fast_s)
        return _databases[url]


def reset_databases() -> None:
    """Dispose every cached engine (tests, after a settings change)."""
    with _databases_lock:
        for db in _databases.values():
            db.dispose()
        _databases.clear()


def attempt_record(pk: int, attempt: Attempt) -> AttemptRecord:
    """The attempts row of ``attempt`` on image ``pk`` (its time: ``attempt.at``, else now)."""
    return AttemptRecord(
        image_pk=pk,
        provider=attempt.provider,
        model=attempt.model,
        status=attempt.status,
        error_class=attempt.error_class,
        error=attempt.error,
        http_status=attempt.http_status,
        latency_s=attempt.latency_s,
        cost_usd=attempt.cost_usd,
        quota_remaining=attempt.quota_remaining,
        quota_limit=attempt.quota_limit,
        created_at=attempt.at or utcnow(),
        job_id=attempt.job_id,
        reservation_id=attempt.reservation_id,
    )
