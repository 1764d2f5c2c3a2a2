"""The image state machine: one row per image slot, typed transitions, claims with leases.

Every change of an image row goes through one method of ``ImageLedger``; each method
is ONE database transaction that reads the row under a write lock (``SELECT ... FOR
UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), checks the move against
``TRANSITIONS`` and the caller's claim, and writes. Nothing else writes ``images``.

Claims. A run works on a slot only after ``claim`` gave it the slot: the same
transaction that reads the status writes the run's key (``run_key``) and a lease
expiry (``lease_expires_at``, now + ``lease_s``). Another run finds the slot
``busy`` while the lease is live and skips it (or waits for it); once the lease has
expired (the holder was killed, its machine lost) the next claim takes the slot over,
and the dead run's open budget reservations for that slot are closed in the same
transaction (``on_takeover``). Each transition renews the lease; ``renew`` does it for
long steps (the orchestrator's heartbeat). A holder whose slot was taken over gets
LeaseLostError at its next transition and stops: its late result is never written over
the new holder's. Leases use this machine's UTC clock: machines sharing a database keep
their clocks in sync (NTP), which ``lease_s`` (minutes) tolerates by far.

Retries across runs. ``claim`` re-opens a ``failed`` slot whose FailureKind is
retryable (transient, error) while it has had fewer than ``max_attempts`` generation
attempts, and a ``placeholder`` slot likewise; ``retry_failed=True`` re-opens every
failed, placeholder or budget-skipped slot. ``done``, ``blocked`` and other skipped
slots stay as they are.

Adding a status is one entry in domain.model.ImageStatus, its edges in ``TRANSITIONS``
and one typed method built on ``_transition``: publishing (review, versions,
reservations) is built so, from ``send_to_review`` on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from domain.model import PUBLISHING_STATUSES, Attempt, FailureKind, ImageSlot, ImageStatus, key_digest
from storage.db import AttemptRecord, Database, ImageRecord, RenditionRecord, attempt_record, utcnow
from sqlalchemy import func

S = ImageStatus

#: Every allowed move: from a status to the statuses a transition may set. Resuming a
#: slot (a later stage failed, or a run died) re-enters at the step where it stood;
#: ``failed`` and ``placeholder`` re-open to ``generating`` when a run retries them.
TRANSITIONS: dict[ImageStatus, frozenset[ImageStatus]] = {
    S.planned: frozenset({S.generating, S.blocked, S.skipped, S.failed}),
    S.generating: frozenset({S.generating, S.generated, S.failed, S.blocked, S.skipped}),
    S.generated: frozenset({S.generating, S.processed, S.uploaded, S.done, S.placeholder, S.failed, S.blocked, S.skipped}),
    S.processed: frozenset({S.generating, S.processed, S.uploaded, S.done, S.placeholder, S.failed, S.blocked, S.skipped}),
    S.uploaded: frozenset({S.done, S.placeholder, S.failed, S.in_review}),
    S.failed: frozenset({S.generating, S.processed, S.uploaded, S.done, S.placeholder, S.failed, S.blocked, S.skipped}),
    S.placeholder: frozenset({S.generating}),
    S.skipped: frozenset({S.generating}),
    S.blocked: frozenset(),
    # publishing (publishing/review.py): ``done`` + ``published_at`` is published; a category with a
    # required review sends its stored images to a person first
    S.done: frozenset({S.done, S.in_review, S.superseded}),
    S.in_review: frozenset({S.in_review, S.approved, S.rejected}),
    S.approved: frozenset({S.done, S.rejected}),
    S.rejected: frozenset(),
    S.superseded: frozenset(),
}


class TransitionError(ValueError):
    """A move that ``TRANSITIONS`` does not allow (e.g. ``done -> generating``)."""


class LeaseLostError(RuntimeError):
    """The slot is no longer this run's: another run claimed it after the lease expired."""


class ClaimState(str, Enum):
    """What ``claim`` found: ``claimed`` (the slot is this run's), ``busy`` (a live run
    holds it), ``finished`` (nothing to do: done, blocked, or failed beyond retrying)."""

    claimed = "claimed"
    busy = "busy"
    finished = "finished"


@dataclass(frozen=True)
class Claim:
    """The outcome of ``claim``: its state and the row as read in the claim's transaction."""

    state: ClaimState
    row: ImageRecord
    #: The run whose expired lease this claim took over (None: the slot was free or ours).
    took_over_from: str | None = None
    #: The claim moved the slot to ``generating`` (``begin_generation``).
    began_generation: bool = False


@dataclass(frozen=True)
class PlannedImage:
    """What a slot will generate, fixed before any money is spent (sizes in pixels)."""

    slot: ImageSlot
    template: str
    template_version: int
    prompt: str
    negative_prompt: str
    width: int
    height: int
    num_inference_steps: int
    guidance_scale: float
    seed: int | None
    variant: str | None = None
    trigger: str = "cli"
    tags: tuple[str, ...] = ()
    #: A template's pins and img2img inputs (provider, model, loras, reference_image, mask, strength).
    request_options: dict[str, Any] | None = None
    #: The prompt stays out of published files (template / category ``embed_prompt: false``).
    prompt_private: bool = False
    #: The client owning the template or category (config/clients.py); None: no client.
    client: str | None = None


@dataclass(frozen=True)
class GeneratedImage:
    """A provider's image in the spool: ``spool_path`` with its SHA-256 ``checksum``;
    ``cost_usd`` of this call in USD, ``seconds`` its latency, sizes in pixels."""

    provider: str
    model: str
    seed: int | None
    width: int
    height: int
    is_placeholder: bool
    seconds: float
    spool_path: str
    checksum: str
    #: The size (``1536x1024``) or aspect ratio (``16:9``) actually asked of the model.
    mapped_size: str | None = None
    #: Where a local provider made it (``cuda``, ``mps``, ``cpu``); None for remote providers.
    device: str | None = None


@dataclass(frozen=True)
class ProcessedImage:
    """What post-processing and categorizing found: quality score 0..1 and its measures,
    the 64-bit pHash (16 hex), the tags, and the published image this one nearly duplicates."""

    quality_score: float | None
    quality_metrics: dict[str, float] | None
    phash: str | None
    tags: tuple[str, ...]
    duplicate_of: str | None = None
    #: NudeNet detections [{"class", "score", "box"}] (imaging.safety), when image safety is on.
    safety: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class StoredFile:
    """One stored file of an image: the original or a rendition (pixels, bytes, SHA-256)."""

    name: str
    storage_key: str
    format: str
    width: int
    height: int
    bytes: int
    checksum: str


@dataclass(frozen=True)
class StoredImage:
    """Where an image's files went: the original's key, the provenance sidecar's, every file;
    ``conflict``: why they went under a conflict key (the first key held a different image),
    recorded as the row's ``error`` when it ends done."""

    storage_key: str
    sidecar_key: str | None
    files: tuple[StoredFile, ...] = field(default_factory=tuple)
    conflict: str | None = None


#: ``(session, reservation token, actual USD)``: settles a budget reservation inside the
#: transition's transaction (generation.budget.BudgetLedger.settle_in).
Settle = Callable[[Session, int, float], None]
#: ``(session, image pk, dead run key)``: closes the dead run's reservations for the slot.
Takeover = Callable[[Session, int, str], object]


class ImageLedger:
    """The typed transitions of image rows in ``db``; thread-safe, one per process is enough.

    ``lease_s``: seconds a claim lasts without renewal; ``max_attempts``: generation
    attempts (claims that reached the provider chain) after which a transient failure
    is no longer retried by later runs.
    """

    def __init__(
        self, db: Database, *, lease_s: float = 300.0, max_attempts: int = 3, settle: Settle | None = None, on_takeover: Takeover | None = None
    ) -> None:
        if lease_s <= 0:
            raise ValueError(f"lease_s must be > 0 seconds, not {lease_s!r}")
        self.db = db
        self.lease_s = lease_s
        self.max_attempts = max_attempts
        self._settle = settle
        self._on_takeover = on_takeover

    # -- reading ------------------------------------------------------------------------
    def get(self, pk: int) -> ImageRecord:
        """Row ``pk``; KeyError when there is none."""
        return self.db.get(pk)

    def rows(self, pks: Sequence[int]) -> list[ImageRecord]:
        """Rows ``pks``, in that order (one query)."""
        with self.db.session() as session:
            found = {r.id: r for r in session.exec(select(ImageRecord).where(ImageRecord.id.in_(list(pks))))}  # type: ignore[union-attr]
        return [found[pk] for pk in pks]

    def by_keys(self, keys: Iterable[str]) -> dict[str, ImageRecord]:
        """Existing rows by idempotency key (one query)."""
        wanted = list(keys)
        if not wanted:
            return {}
        with self.db.session() as session:
            query = select(ImageRecord).where(ImageRecord.idempotency_key.in_(wanted))  # type: ignore[attr-defined]
            return {r.idempotency_key: r for r in session.exec(query)}

    def of_run(self, flow: str, run_date: date) -> list[ImageRecord]:
        """Every row of one flow and date, in slot order."""
        return self.db.images(flow=flow, run_date=run_date)

    def finished_count(self, key_prefix: str) -> int:
        """How many slots whose idempotency key starts with ``key_prefix`` are finished for
        now (ImageStatus.terminal): one COUNT query (the CLI's progress bar)."""

        finished = [s.value for s in S if s.terminal]
        with self.db.session() as session:
            query = (
                select(func.count())
                .select_from(ImageRecord)
                .where(col(ImageRecord.idempotency_key).startswith(key_prefix), col(ImageRecord.status).in_(finished))
            )
            return int(session.exec(query).one())

    def pending_uploads(self) -> list[ImageRecord]:
        """Rows whose upload failed (store unreachable): ``processed`` with ``upload_pending``."""
        with self.db.session() as session:
            query = select(ImageRecord).where(
                ImageRecord.upload_pending == True,  # noqa: E712 - SQL expression
                ImageRecord.status == S.processed.value,
            )
            return list(session.exec(query.order_by(ImageRecord.id)))  # type: ignore[arg-type]

    def published_hashes(self, *, category: str | None = None, exclude_pk: int | None = None) -> list[tuple[str, str]]:
        """``(image_id, phash)`` of every published image (status uploaded or done, a real
        image, hashed), of ``category`` when given (one query)."""
        published = [S.uploaded.value, S.done.value]
        with self.db.session() as session:
            query = select(ImageRecord.id, ImageRecord.image_id, ImageRecord.phash).where(
                ImageRecord.status.in_(published),  # type: ignore[attr-defined]
                ImageRecord.phash.is_not(None),  # type: ignore[union-attr]
                ImageRecord.is_placeholder == False,  # noqa: E712 - SQL expression
            )
            if category:
                query = query.where(ImageRecord.category == category)
            rows = session.exec(query).all()
        return [(image_id, phash) for pk, image_id, phash in rows if pk != exclude_pk and phash]

    # -- planning -----------------------------------------------------------------------
    def plan(self, planned: Sequence[PlannedImage]) -> list[ImageRecord]:
        """The rows of ``planned`` (created ``planned`` where missing; an existing row is
        kept as it is: a re-run resumes). One transaction; safe against a concurrent run
        planning the same slots (the idempotency key is unique)."""
        if not planned:
            return []
        table = ImageRecord.__table__  # type: ignore[attr-defined]
        insert = sqlite.insert if self.db.is_sqlite else postgresql.insert
        now = utcnow()
        values = [
            {
                "idempotency_key": p.slot.idempotency_key,
                "image_id": key_digest(p.slot.idempotency_key),
                "flow": p.slot.flow,
                "run_date": p.slot.run_date,
                "slot": p.slot.slot,
                "slot_index": p.slot.index,
                "trigger": p.trigger,
                "status": S.planned.value,
                "category": p.slot.category,
                "template": p.template,
                "template_version": p.template_version,
                "variant": p.variant,
                "prompt": p.prompt,
                "negative_prompt": p.negative_prompt,
                "width": p.width,
                "height": p.height,
                "num_inference_steps": p.num_inference_steps,
                "guidance_scale": p.guidance_scale,
                "seed": p.seed,
                "is_placeholder": False,
                "cost_usd": 0.0,
                "seconds": 0.0,
                "tags": list(p.tags),
                "created_at": now,
                "updated_at": now,
                "upload_pending": False,
                "attempt_count": 0,
                "request_options": p.request_options,
                "prompt_private": p.prompt_private,
                "client": p.client,
            }
            for p in planned
        ]
        keys = [p.slot.idempotency_key for p in planned]
        with self.db.write_session() as session:
            session.execute(insert(table).values(values).on_conflict_do_nothing(index_elements=["idempotency_key"]))
            rows = {r.idempotency_key: r for r in session.exec(select(ImageRecord).where(ImageRecord.idempotency_key.in_(keys)))}  # type: ignore[attr-defined]
            session.commit()
        return [rows[k] for k in keys]

    # -- claims -------------------------------------------------------------------------
    def claim(self, pk: int, run_key: str, *, retry_failed: bool = False, begin_generation: bool = False) -> Claim:
        """Claim slot ``pk`` for run ``run_key`` (one transaction): ``claimed`` when it is
        free, ours, or its holder's lease has expired (taken over); ``busy`` while another
        run's lease is live; ``finished`` when there is nothing to do (see the module doc).

        ``begin_generation``: a claimed slot that has nothing generated to resume from
        (planned, placeholder, skipped, or failed before generation) moves to
        ``generating`` in the same transaction, as ``mark_generating`` would."""
        with self.db.write_session() as session:
            row = self._locked(session, pk)
            now = utcnow()
            status = S(row.status)
            if not self._workable(row, status, retry_failed):
                return Claim(ClaimState.finished, row)  # closing the session ends the transaction
            holder = row.run_key
            live = row.lease_expires_at is not None and row.lease_expires_at > now
            if holder not in (None, run_key) and live:
                return Claim(ClaimState.busy, row)
            took_over = holder if holder not in (None, run_key) and row.lease_expires_at is not None else None
            if took_over is not None and self._on_takeover is not None:
                self._on_takeover(session, pk, took_over)
            row.run_key = run_key
            row.lease_expires_at = now + timedelta(seconds=self.lease_s)
            began = begin_generation and (status in (S.planned, S.placeholder, S.skipped) or (status is S.failed and not row.spool_path))
            if began:
                _begin_generation(row)
                row.status = S.generating.value
                row.updated_at = now
            session.add(row)
            session.commit()
            return Claim(ClaimState.claimed, row, took_over, began)

    def _workable(self, row: ImageRecord, status: ImageStatus, retry_failed: bool) -> bool:
        if status in (S.done, S.blocked) or status in PUBLISHING_STATUSES:
            return False
        kind = FailureKind(row.failure_kind) if row.failure_kind else None
        if status is S.skipped:
            return retry_failed and kind is FailureKind.budget
        if status is S.failed:
            return retry_failed or (kind is not None and kind.retryable and row.attempt_count < self.max_attempts)
        if status is S.placeholder:
            return retry_failed or row.attempt_count < self.max_attempts
        return True

    def renew(self, pks: Sequence[int], run_key: str) -> int:
        """Extend the leases ``run_key`` holds on ``pks`` by ``lease_s`` from now (one
        statement); returns how many it still held."""
        if not pks:
            return 0
        stmt = (
            update(ImageRecord.__table__)  # type: ignore[attr-defined]
            .where(ImageRecord.id.in_(list(pks)))  # type: ignore[union-attr]
            .where(ImageRecord.run_key == run_key)  # type: ignore[arg-type]
            .where(ImageRecord.lease_expires_at.is_not(None))  # type: ignore[union-attr]
            .values(lease_expires_at=utcnow() + timedelta(seconds=self.lease_s))
        )
        with self.db.write_session() as session:
            result = session.execute(stmt)
            session.commit()
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def release(self, pk: int, run_key: str) -> ImageRecord:
        """Give the slot back without changing its status (another run may claim it at once)."""
        return self._transition(pk, run_key, None, lambda row: None, keep_lease=False)

    # -- transitions ----------------------------------------------------------------------
    def mark_generating(self, pk: int, run_key: str) -> ImageRecord:
        """-> ``generating``: the slot goes to the provider chain (its attempt is counted)."""

        return self._transition(pk, run_key, S.generating, _begin_generation)

    def mark_generated(
        self, pk: int, run_key: str, image: GeneratedImage, *, attempts: Sequence[Attempt] = (), settlements: Sequence[tuple[int, float]] = ()
    ) -> ImageRecord:
        """-> ``generated``: the image is in the spool. Records ``attempts`` and settles the
        budget ``settlements`` (token, USD) in the same transaction: no crash leaves a paid
        image without its cost."""

        def apply(row: ImageRecord) -> None:
            row.provider, row.model, row.seed = image.provider, image.model, image.seed
            row.width, row.height, row.is_placeholder = image.width, image.height, image.is_placeholder
            row.seconds = round(image.seconds, 4)
            row.spool_path, row.checksum = image.spool_path, image.checksum
            row.mapped_size = image.mapped_size
            row.device = image.device
            row.generated_at = utcnow()
            row.error = None
            row.failure_kind = None

        return self._transition(pk, run_key, S.generated, apply, attempts=attempts, settlements=settlements)

    def mark_processed(self, pk: int, run_key: str, processed: ProcessedImage) -> ImageRecord:
        """-> ``processed``: renditions made (in the spool), measured and tagged."""
        return self._transition(pk, run_key, S.processed, lambda row: apply_processed(row, processed))

    def mark_uploaded(self, pk: int, run_key: str, stored: StoredImage, processed: ProcessedImage | None = None) -> ImageRecord:
        """-> ``uploaded``: every file is in the object store (``stored``), renditions recorded."""
        return self._stored(pk, run_key, S.uploaded, stored, processed)

    def mark_done(self, pk: int, run_key: str, stored: StoredImage | None = None, processed: ProcessedImage | None = None) -> ImageRecord:
        """-> ``done``: a real image, stored. With ``stored`` / ``processed`` the run goes
        from ``generated`` straight here in one transaction (processed, uploaded and done)."""
        return self._stored(pk, run_key, S.done, stored, processed)

    def mark_placeholder(
        self, pk: int, run_key: str, stored: StoredImage | None = None, processed: ProcessedImage | None = None, *, reason: str
    ) -> ImageRecord:
        """-> ``placeholder``: a stand-in is stored under ``placeholder/``; later runs retry the slot."""
        return self._stored(pk, run_key, S.placeholder, stored, processed, error=reason, kind=FailureKind.transient)

    def mark_upload_pending(self, pk: int, run_key: str, reason: str, processed: ProcessedImage | None = None) -> ImageRecord:
        """Stays (or becomes) ``processed`` with ``upload_pending``: the store was unreachable;
        the files wait in the spool for the next run (generation.pending). Releases the claim."""

        def apply(row: ImageRecord) -> None:
            if processed is not None:
                apply_processed(row, processed)
            row.upload_pending = True
            row.error = reason[:2000]

        return self._transition(pk, run_key, S.processed, apply, keep_lease=False)

    def mark_failed(
        self, pk: int, run_key: str, kind: FailureKind, reason: str, *, attempts: Sequence[Attempt] = (), settlements: Sequence[tuple[int, float]] = ()
    ) -> ImageRecord:
        """-> ``failed`` with its ``kind`` and ``reason`` (retryable kinds are retried by later runs)."""

        def apply(row: ImageRecord) -> None:
            row.failure_kind = kind.value
            row.error = reason[:2000]

        return self._transition(pk, run_key, S.failed, apply, attempts=attempts, settlements=settlements, keep_lease=False)

    def mark_blocked(
        self,
        pk: int,
        run_key: str,
        reason: str,
        *,
        attempts: Sequence[Attempt] = (),
        settlements: Sequence[tuple[int, float]] = (),
        safety: list[dict[str, Any]] | None = None,
    ) -> ImageRecord:
        """-> ``blocked``: the content policy refused the prompt or the image (``safety``: the
        image safety detections that decided it)."""

        def apply(row: ImageRecord) -> None:
            if safety is not None:
                row.safety = safety
            row.failure_kind = FailureKind.policy.value
            row.error = reason[:2000]

        return self._transition(pk, run_key, S.blocked, apply, attempts=attempts, settlements=settlements, keep_lease=False)

    def mark_skipped(
        self,
        pk: int,
        run_key: str,
        kind: FailureKind,
        reason: str,
        *,
        duplicate_of: str | None = None,
        processed: ProcessedImage | None = None,
        attempts: Sequence[Attempt] = (),
        settlements: Sequence[tuple[int, float]] = (),
    ) -> ImageRecord:
        """-> ``skipped``: a budget cap stopped every provider, or a near-duplicate of ``duplicate_of``."""

        def apply(row: ImageRecord) -> None:
            if processed is not None:
                apply_processed(row, processed)
            row.failure_kind = kind.value
            row.error = reason[:2000]
            if duplicate_of is not None:
                row.duplicate_of = duplicate_of

        return self._transition(pk, run_key, S.skipped, apply, attempts=attempts, settlements=settlements, keep_lease=False)

    # -- publishing: review, versions (versions: storage/versions.py; reservations: storage/reservations.py) -------------------------------------------
    def send_to_review(self, pk: int, stored: StoredImage | None = None, run_key: str | None = None) -> ImageRecord:
        """``done`` / ``uploaded`` -> ``in_review`` (its files under ``stored``, e.g. ``review/``);
        ``run_key``: the run holding the slot's claim, if it still holds one. Releases the claim."""
        return self._transition(pk, run_key, S.in_review, lambda row: _apply_stored(row, stored), extra=_files_writer(pk, stored), keep_lease=False)

    def approve(self, pk: int, reviewer: str, note: str | None = None) -> ImageRecord:
        """``in_review`` -> ``approved`` by ``reviewer`` (recorded with the time and ``note``)."""
        return self._transition(pk, None, S.approved, lambda row: _apply_review(row, reviewer, note), keep_lease=False)

    def reject(self, pk: int, reviewer: str, note: str | None, stored: StoredImage | None = None) -> ImageRecord:
        """``in_review`` / ``approved`` -> ``rejected`` by ``reviewer`` with ``note``; its files
        now under ``stored`` (``rejected/``)."""

        def apply(row: ImageRecord) -> None:
            _apply_review(row, reviewer, note)
            _apply_stored(row, stored)

        return self._transition(pk, None, S.rejected, apply, extra=_files_writer(pk, stored), keep_lease=False)

    def publish(self, pk: int, stored: StoredImage | None = None, run_key: str | None = None) -> ImageRecord:
        """``uploaded`` / ``done`` / ``approved`` -> ``done`` with ``published_at`` (its files
        under ``stored``, the ``content/`` keys), in one transaction with the slot's other
        published versions -> ``superseded``: one published version per slot."""

        def apply(row: ImageRecord) -> None:
            _apply_stored(row, stored)
            row.published_at = utcnow()

        def extra(session: Session) -> None:
            _files_writer(pk, stored)(session)
            row = session.get(ImageRecord, pk)
            assert row is not None
            others = select(ImageRecord).where(
                ImageRecord.flow == row.flow,
                ImageRecord.run_date == row.run_date,
                ImageRecord.slot == row.slot,
                ImageRecord.slot_index == row.slot_index,
                ImageRecord.status == S.done.value,
                ImageRecord.published_at.is_not(None),  # type: ignore[union-attr]
                ImageRecord.id != pk,
            )
            for other in session.exec(others):
                other.status = S.superseded.value
                other.updated_at = utcnow()
                session.add(other)

        return self._transition(pk, run_key, S.done, apply, extra=extra, keep_lease=False)

    # -- the one place that writes ----------------------------------------------------------
    def _stored(
        self,
        pk: int,
        run_key: str,
        to: ImageStatus,
        stored: StoredImage | None,
        processed: ProcessedImage | None,
        *,
        error: str | None = None,
        kind: FailureKind | None = None,
    ) -> ImageRecord:
        def apply(row: ImageRecord) -> None:
            if processed is not None:
                apply_processed(row, processed)
            if stored is not None:
                row.storage_key, row.sidecar_key = stored.storage_key, stored.sidecar_key
                row.upload_pending = False
            note = error or (stored.conflict if stored is not None else None)
            row.error = note[:2000] if note else None
            row.failure_kind = kind.value if kind else None

        return self._transition(pk, run_key, to, apply, extra=_files_writer(pk, stored), keep_lease=to not in (S.done, S.placeholder))

    def record_calls(self, pk: int, run_key: str, attempts: Sequence[Attempt], settlements: Sequence[tuple[int, float]]) -> ImageRecord:
        """Record provider calls made for claimed row ``pk`` after its generation (a channel
        rendition's outpainting): the attempts (their cost added to the row) and the budget
        settlements, in one transaction; the status stays."""
        return self._transition(pk, run_key, None, lambda row: None, attempts=attempts, settlements=settlements)

    def _locked(self, session: Session, pk: int) -> ImageRecord:
        return locked_row(self.db, session, pk)

    def _transition(
        self,
        pk: int,
        run_key: str | None,
        to: ImageStatus | None,
        apply: Callable[[ImageRecord], None],
        *,
        attempts: Sequence[Attempt] = (),
        settlements: Sequence[tuple[int, float]] = (),
        extra: Callable[[Session], None] | None = None,
        keep_lease: bool = True,
    ) -> ImageRecord:
        """One transaction: lock row ``pk``, check the claim and the move, apply, record."""
        with self.db.write_session() as session:
            row = self._locked(session, pk)
            if row.run_key != run_key:
                session.rollback()
                raise LeaseLostError(f"image {row.idempotency_key}: claimed by run {row.run_key!r}, not {run_key!r}")
            current = S(row.status)
            if to is not None and to not in TRANSITIONS[current]:
                session.rollback()
                raise TransitionError(f"image {row.idempotency_key}: {current.value} -> {to.value} is not allowed")
            apply(row)
            if to is not None:
                row.status = to.value
            now = utcnow()
            row.updated_at = now
            row.lease_expires_at = now + timedelta(seconds=self.lease_s) if keep_lease else None
            if not keep_lease:
                row.run_key = None
            for attempt in attempts:
                row.cost_usd = round(row.cost_usd + _record_attempt(session, pk, attempt), 9)
            for token, actual in settlements:
                if self._settle is None:
                    raise ValueError("settlements given to a ledger without a settle hook")
                self._settle(session, token, actual)
            if extra is not None:
                extra(session)
            session.add(row)
            session.commit()
            return row


def locked_row(db: Database, session: Session, pk: int) -> ImageRecord:
    """Row ``pk`` in ``session``, locked ``FOR UPDATE`` on PostgreSQL (SQLite's write session
    holds the database lock already); KeyError when there is none."""
    query = select(ImageRecord).where(ImageRecord.id == pk)
    if not db.is_sqlite:
        query = query.with_for_update()
    row = session.exec(query).one_or_none()
    if row is None:
        raise KeyError(f"no image row {pk}")
    return row


def _begin_generation(row: ImageRecord) -> None:
    row.attempt_count += 1
    row.error = None
    row.failure_kind = None


def _apply_stored(row: ImageRecord, stored: StoredImage | None) -> None:
    if stored is not None:
        row.storage_key, row.sidecar_key = stored.storage_key, stored.sidecar_key


def _apply_review(row: ImageRecord, reviewer: str, note: str | None) -> None:
    row.reviewed_by = reviewer[:120]
    row.reviewed_at = utcnow()
    if note:
        row.review_note = note[:4000]


def _files_writer(pk: int, stored: StoredImage | None) -> Callable[[Session], None]:
    """Replace row ``pk``'s rendition records by ``stored.files`` (nothing when None)."""

    def write(session: Session) -> None:
        if stored is None:
            return
        for old in session.exec(select(RenditionRecord).where(RenditionRecord.image_pk == pk)):
            session.delete(old)
        for f in stored.files:
            session.add(
                RenditionRecord(
                    image_pk=pk, name=f.name, storage_key=f.storage_key, format=f.format, width=f.width, height=f.height, bytes=f.bytes, checksum=f.checksum
                )
            )

    return write


def apply_processed(row: ImageRecord, processed: ProcessedImage) -> None:
    """Set ``processed``'s fields on ``row`` (a detached row: in memory only)."""
    row.quality_score, row.quality_metrics, row.phash = processed.quality_score, processed.quality_metrics, processed.phash
    row.tags = list(processed.tags)
    if processed.safety is not None:
        row.safety = processed.safety
    if processed.duplicate_of is not None:
        row.duplicate_of = processed.duplicate_of


def _record_attempt(session: Session, pk: int, attempt: Attempt) -> float:
    """Write ``attempt`` of image ``pk`` as a new row, replacing the attempt row of its
    reservation (written in flight before the call, generation/budget.py; or an earlier
    outcome of the job it resumed) when there is one. Returns the USD to add to the image's cost: the attempt's, less what an
    earlier outcome of the same row already added (an in-flight row added nothing)."""
    new = attempt_record(pk, attempt)
    existing = None
    if attempt.reservation_id is not None:
        existing = session.exec(select(AttemptRecord).where(AttemptRecord.reservation_id == attempt.reservation_id, AttemptRecord.image_pk == pk)).first()
    if existing is None:
        session.add(new)
        return attempt.cost_usd
    counted = 0.0 if existing.status == "in_flight" else existing.cost_usd
    new.job_id = new.job_id or existing.job_id
    session.delete(existing)  # replaced by a new row: attempt ids stay in the order outcomes were recorded
    session.add(new)
    return attempt.cost_usd - counted
