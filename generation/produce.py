"""The per-image process: claim -> generate -> post-process -> categorize -> upload -> record.

``produce_image(worker, pk)`` takes one slot from wherever it stands to the end of
this run's work on it. The stage functions are pure (generation.generate, imaging.postprocess,
imaging.categorize, generation.upload: they take a row and return small dataclasses); this
module persists each outcome with one transition of storage/ledger.py:

    claim                               (1 transaction; a slot a live run holds: wait)
    (at most ``claim_capacity(concurrency)`` slots claimed at once per run: workers share a date)
    (the claim also moves a new slot to generating, counting the attempt)
    [budget reservation per paid call]  (1 each; generation/budget.py)
    mark_generated | failed | skipped   (1: attempts and budget settlements included)
    mark_done | placeholder | skipped   (1: processed data, stored files, renditions)

so a real image from a paid provider costs 4 transactions plus the near-duplicate query,
and its share of the run's planning (two for the whole run on a re-run; one more per new
slot's template rotation date on the first). The in-process ``concurrency`` semaphore is held around the
provider chain call only: post-processing, upload and recording of one image overlap
the provider calls of the others. A heartbeat renews the leases of the slots this run
works on every ``pipeline.lease_s / 3`` seconds.

Nothing here imports Prefect: ``generation.batching.produce_all`` runs the same process in a thread pool
(tools, the crash tests), flows/run.py runs it as one Prefect task per image.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from domain.model import FailureKind, ImageStatus
from domain.errors import (
    ContentPipelineError,
    DatabaseUnavailableError,
    InvalidImageError,
    ObjectExistsError,
    StorageError,
)
from domain.log import get_logger, image_line
from config.settings import Settings
from providers.chain import ProviderChain
from storage.db import ImageRecord
from storage.ledger import Claim, ClaimState, ImageLedger, LeaseLostError, ProcessedImage, apply_processed
from storage.objects import ObjectStore
from imaging.categorize import Categorized, categorize_row
from generation.channels import channel_renditions
from generation.generate import generate_step, spool_intact
from imaging.postprocess import RenditionFile, postprocess_row
from generation.record import free_spool
from generation.upload import store_files
from storage.ledger import StoredImage

S = ImageStatus

#: Statuses from which a claimed slot goes (back) to the provider chain.
_GENERATE_FROM = frozenset({S.planned, S.generating, S.placeholder, S.skipped})
PLACEHOLDER_REASON = "placeholder: no real provider answered; the next run of this date replaces it"


class Heartbeat:
    """Renews the leases of the slots a run works on, every ``interval_s`` seconds, in one
    statement per beat (a daemon thread; ``stop`` ends it)."""

    def __init__(self, ledger: ImageLedger, run_key: str, interval_s: float) -> None:
        self.ledger = ledger
        self.run_key = run_key
        self.interval_s = interval_s
        self._held: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-heartbeat-{run_key[:8]}", daemon=True)
        self._thread.start()

    @contextmanager
    def hold(self, pk: int) -> Iterator[None]:
        with self._lock:
            self._held.add(pk)
        try:
            yield
        finally:
            with self._lock:
                self._held.discard(pk)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            with self._lock:
                held = sorted(self._held)
            if not held:
                continue
            try:
                self.ledger.renew(held, self.run_key)
            except DatabaseUnavailableError:  # the run's tasks meet it and end the run
                return
            except Exception:
                get_logger().exception("could not renew the leases of run %s", self.run_key)

    def stop(self) -> None:
        self._stop.set()


def claim_capacity(concurrency: int) -> int:
    """How many slots one run holds claimed at once: twice its ``concurrency`` (provider calls
    in flight), so that the post-processing and upload of one image overlap the provider
    call of the next, and no more: the rest of the date stays free for other workers."""
    return 2 * concurrency


@dataclass
class Worker:
    """What one run needs to produce images: its claim key, the ledger, the provider chain
    (with its budget guard), the object store, the settings, and the concurrency semaphore."""

    ledger: ImageLedger
    chain: ProviderChain
    store: ObjectStore
    settings: Settings
    run_key: str
    semaphore: threading.BoundedSemaphore
    retry_failed: bool = False
    heartbeat: Heartbeat | None = field(default=None)
    #: Images of this run on their way to publication: pk -> (image_id, pHash, category). The
    #: near-duplicate check compares with them as with the published ones, under ``dedup_lock``.
    publishing: dict[int, tuple[str, str, str]] = field(default_factory=dict)
    dedup_lock: threading.Lock = field(default_factory=threading.Lock)
    #: Slots whose batched provider call (generation/batching.py) ended them failed / blocked /
    #: skipped in this run: the per-image process returns them as they are (one try per run).
    batch_ended: set[int] = field(default_factory=set)
    #: Run keys whose expired leases this run took slots over from (dead runs: a run that
    #: lives renews its leases); the flow closes their Prefect history (tasks.recover).
    took_over_from: set[str] = field(default_factory=set)
    #: The claims this run may hold at once (``claim_capacity(concurrency)``; built when None): a
    #: slot is claimed only when one is free and held until its image ends, so that two or three
    #: workers of one date each claim part of it as they have capacity (issue 19).
    claims: threading.BoundedSemaphore | None = None
    #: Taken by the first upload the store refuses in this run: only that one is a warning line.
    store_failed: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.claims is None:
            self.claims = threading.BoundedSemaphore(claim_capacity(self.settings.concurrency))

    def publishing_hashes(self, category: str | None, *, exclude_pk: int) -> list[tuple[str, str]]:
        """``(image_id, phash)`` of this run's images on their way to publication (of ``category``)."""
        return [(image_id, phash) for pk, (image_id, phash, cat) in self.publishing.items() if pk != exclude_pk and (category is None or cat == category)]

    def start(self) -> Worker:
        if self.heartbeat is None:
            self.heartbeat = Heartbeat(self.ledger, self.run_key, self.settings.pipeline.lease_s / 3)
        return self

    def stop(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop()


def produce_image(worker: Worker, pk: int) -> ImageRecord:
    """Take slot ``pk`` as far as this run can; returns its row.

    A slot another live run holds is waited for (polling its claim) up to
    ``pipeline.wait_for_others_s`` seconds: it ends finished by that run, or taken over
    when its lease expires. A slot taken over from this run meanwhile (its lease expired)
    is left to the new holder. The claim waits for one of the run's claim slots
    (``Worker.claims``) and holds it until the image ends; a slot that is busy is waited
    for without one, so the run claims others meanwhile.
    """
    if pk in worker.batch_ended:
        return worker.ledger.get(pk)
    settings = worker.settings.pipeline
    deadline = time.monotonic() + settings.wait_for_others_s
    poll_s = min(2.0, max(0.2, settings.lease_s / 4))
    assert worker.claims is not None
    while True:
        with worker.claims:  # a claim only as this run has capacity, held until the image ends
            claim = worker.ledger.claim(pk, worker.run_key, retry_failed=worker.retry_failed, begin_generation=True)
            if claim.state is ClaimState.claimed:
                return _claimed(worker, claim)
        if claim.state is ClaimState.finished or time.monotonic() >= deadline:
            return claim.row
        time.sleep(poll_s)  # another live run holds it: wait without holding a claim of ours


def _claimed(worker: Worker, claim: Claim) -> ImageRecord:
    """Take the slot ``claim`` gave this run to the end of its work on it."""
    log = get_logger()
    row = claim.row
    assert row.id is not None
    pk = row.id
    if claim.took_over_from:
        worker.took_over_from.add(claim.took_over_from)
        log.warning("%s: took over from run %s, whose lease expired", image_line(row, "claim"), claim.took_over_from)
    log.info("slot %s#%s image %s (%s) starts at status %s", row.slot, row.slot_index, row.image_id, row.idempotency_key, row.status)
    with worker.heartbeat.hold(pk) if worker.heartbeat else _nothing():
        try:
            return _produce(worker, row, claim.began_generation)
        except LeaseLostError as exc:
            log.warning("%s: %s; leaving it to that run", image_line(row, "claim"), exc)
            return worker.ledger.get(pk)
        finally:
            with worker.dedup_lock:
                worker.publishing.pop(pk, None)


def needs_provider(row: ImageRecord, begun: bool = False) -> bool:
    """True when claimed row ``row`` goes (back) to the provider chain: its claim began
    generation, it has nothing generated to resume from, or its spool file is lost."""
    status = S(row.status)
    return begun or status in _GENERATE_FROM or (status is S.failed and not row.spool_path) or not spool_intact(row)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _produce(worker: Worker, row: ImageRecord, begun: bool = False) -> ImageRecord:
    log = get_logger()
    ledger, run_key = worker.ledger, worker.run_key
    assert row.id is not None
    pk = row.id
    status = S(row.status)
    if status is S.uploaded:  # stored before a crash: only the last step is missing
        return _finish(worker, row, None, None)
    decoded: list[Any] = []  # the output check's decode, handed to post-processing: one decode per image
    if needs_provider(row, begun):
        row = generate_step(
            ledger,
            worker.chain,
            row,
            run_key,
            spool_dir=worker.settings.spool_dir,
            policy=worker.settings.policy,
            semaphore=worker.semaphore,
            decoded=decoded,
            begun=begun,
        )
        if S(row.status).terminal:
            log.warning("%s: ended %s: %s", image_line(row, "generate"), row.status, row.error)
            return row
        if row.is_placeholder and row.storage_key:  # still no real provider: the stand-in stored earlier stays
            return _finish(worker, row, None, None)
    try:
        made = postprocess_row(row, worker.settings, decoded[0] if decoded else None)
        decoded.clear()
        if made.blocked:
            return ledger.mark_blocked(pk, run_key, made.blocked, safety=made.safety)
        found = _categorize(worker, row, made.phash)
        processed = ProcessedImage(made.quality_score, made.quality_metrics, made.phash, found.tags, found.duplicate_of, safety=made.safety)
        if found.skip_reason:
            free_spool(row)
            return ledger.mark_skipped(pk, run_key, FailureKind.duplicate, found.skip_reason, duplicate_of=found.duplicate_of, processed=processed)
        apply_processed(row, processed)  # in memory only: the sidecar tells quality, pHash and tags
        channels = channel_renditions(ledger, worker.chain, row, run_key, worker.settings, worker.semaphore)  # generation/channels.py
        return _upload(worker, row, made.files + channels, processed)
    except DatabaseUnavailableError:  # nothing can be recorded: the run stops (no failure to write)
        raise
    except InvalidImageError as exc:  # the provider's bytes do not decode safely: a bad output, not ours
        log.error("%s: %s", image_line(row, "decode"), exc)
        return ledger.mark_failed(pk, run_key, FailureKind.rejected, str(exc))
    except (ContentPipelineError, OSError) as exc:
        log.error("%s: stopped at %s: %s", image_line(row, "post-process"), row.status, exc)
        return ledger.mark_failed(pk, run_key, FailureKind.error, f"{type(exc).__name__}: {exc}")


def _categorize(worker: Worker, row: ImageRecord, phash: str | None) -> Categorized:
    """Tags and the near-duplicate check of ``row``, checked and claimed at once under the
    worker's dedup lock (two images of this run cannot both pass)."""
    assert row.id is not None
    ledger, pk = worker.ledger, row.id
    with worker.dedup_lock:
        found = categorize_row(
            row,
            phash,
            worker.settings,
            lambda category: [*ledger.published_hashes(category=category, exclude_pk=pk), *worker.publishing_hashes(category, exclude_pk=pk)],
        )
        if not found.skip_reason and phash and not row.is_placeholder:
            worker.publishing[pk] = (row.image_id, phash, row.category)
    return found


def _upload(worker: Worker, row: ImageRecord, files: list[RenditionFile], processed: ProcessedImage) -> ImageRecord:
    """Store ``files`` and finish the slot; an unreachable store leaves them in the spool
    (upload pending) for the next run. A key holding a different image puts this one under a
    conflict key (generation.upload), reported in one warning line and on the row."""
    assert row.id is not None
    log = get_logger()
    try:
        stored = store_files(worker.store, row, files, worker.settings.publishing)
    except ObjectExistsError as exc:  # a file of another image even at the conflict key: never retried
        log.error("%s: %s", image_line(row, "upload"), exc)
        return worker.ledger.mark_failed(row.id, worker.run_key, FailureKind.rejected, f"store conflict: {exc}")
    except StorageError as exc:  # the store's cause said once a run (a read-only or full store fails every image)
        first = worker.store_failed.acquire(blocking=False)
        (log.warning if first else log.info)("%s: upload pending: %s", image_line(row, "upload"), exc)
        return worker.ledger.mark_upload_pending(row.id, worker.run_key, f"upload pending: {exc}", processed)
    if stored.conflict:  # reported once: this line, and the row's error once it is done
        log.warning("%s: %s", image_line(row, "upload"), stored.conflict)
    return _finish(worker, row, stored, processed)


def _finish(worker: Worker, row: ImageRecord, stored: object, processed: ProcessedImage | None) -> ImageRecord:

    assert row.id is not None and (stored is None or isinstance(stored, StoredImage))
    if row.is_placeholder:
        done = worker.ledger.mark_placeholder(row.id, worker.run_key, stored, processed, reason=PLACEHOLDER_REASON)
    else:
        done = worker.ledger.mark_done(row.id, worker.run_key, stored, processed)
    free_spool(row)
    get_logger().info("slot %s#%s image %s %s: %s via %s", done.slot, done.slot_index, done.image_id, done.status, done.storage_key, done.provider)
    return done
