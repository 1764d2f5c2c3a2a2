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

import math
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, UniqueConstraint, event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Field, Session, SQLModel, col, create_engine, select

from domain.model import Attempt, ImageStatus
from domain.errors import DatabaseUnavailableError
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


class Database:
    """Engine plus the few queries the pipeline needs. Thread-safe; one per process."""

    def __init__(self, url: str, *, migrate: bool = True, fail_fast_s: float | None = None) -> None:
        """Open (and by default migrate) the database at ``url``.

        ``fail_fast_s`` (seconds; None: off): on SQLite, first take and release the write
        lock waiting at most that long; on a server, the connect timeout. Raises
        DatabaseUnavailableError when the lock is held by another program (or the file
        cannot be opened); SQLAlchemy's OperationalError when a server does not answer.
        """
        self.url = url
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            path = make_url(url).database or ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                if fail_fast_s:
                    _probe_write_lock(path, fail_fast_s)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
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
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
            self.write_engine = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        if migrate:
            upgrade(self)

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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling off: _sqlite_begin emits BEGIN [IMMEDIATE] itself
    # (https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#serializable-isolation-savepoints-transactional-ddl)
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
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
