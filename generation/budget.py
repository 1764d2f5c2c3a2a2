"""The budget ledger: a paid call first reserves its estimated cost (USD) against the caps.

Caps (``budget`` in the configuration): ``daily_usd`` and ``monthly_usd`` over every
provider, optionally per provider (``budget.providers.<name>``), and per client
(``clients.<name>.budget``, config/clients.py: the calls of the slots whose row names that
client, scope ``client:<name>``). Days and months are local to the configured timezone.

Each (scope, period) has one ``budget_periods`` row holding ``spent_usd`` and
``reserved_usd``; every reservation is a ``budget_ledger`` row. ``reserve`` runs in ONE
database transaction that locks the period rows (``SELECT ... FOR UPDATE`` on
PostgreSQL; ``BEGIN IMMEDIATE`` takes SQLite's write lock), checks
``spent + reserved + estimate <= cap`` for every cap, and adds the estimate, or
records a ``refused`` entry and raises BudgetExceededError. Any number of threads,
processes or machines sharing the database therefore cannot overspend, globally, per
provider or per client; a client's cap refuses only the calls of that client's slots. ``settle``
moves the reservation to ``spent`` at the real cost (0 releases it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlalchemy.exc import OperationalError
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from domain.errors import BudgetExceededError
from config.clients import CLIENT_SCOPE_PREFIX, ClientsConfig, client_scope
from config.generation import BudgetConfig
from storage.db import (
    AttemptRecord,
    BudgetLedgerRecord,
    BudgetPeriodRecord,
    Database,
    ImageRecord,
    utcnow,
)

_T = TypeVar("_T")
GLOBAL = "global"
_EPS = 1e-9
#: The state of a settlement the provider reported above its reservation, until acknowledged.
OVERRUN = "overrun"


def period_starts(now: datetime, timezone: str) -> tuple[datetime, datetime]:
    """Start of today and of this month in ``timezone``, as aware UTC datetimes."""
    local = now.astimezone(ZoneInfo(timezone))
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    return day.astimezone(UTC), month.astimezone(UTC)


def period_keys(now: datetime, timezone: str) -> tuple[str, str]:
    """(``2026-11-21``, ``2026-11``): today and this month in ``timezone``."""
    local = now.astimezone(ZoneInfo(timezone))
    return local.date().isoformat(), f"{local:%Y-%m}"


@dataclass(frozen=True)
class PendingJob:
    """A provider job an earlier call left to poll: its id, its budget reservation and the
    USD the budget counted for it (providers/chain.py ``PendingJob``)."""

    job_id: str
    reservation_id: int | None
    cost_usd: float


@dataclass(frozen=True)
class BudgetStatus:
    """One cap and where spending stands against it (USD)."""

    scope: str  # "global", a provider name or ``client:<name>``
    period: str  # "day" | "month"
    period_key: str
    cap_usd: float
    spent_usd: float
    reserved_usd: float

    @property
    def fraction(self) -> float:
        """Spent share of the cap (1.0 = reached); a zero cap counts as reached."""
        return self.spent_usd / self.cap_usd if self.cap_usd > 0 else 1.0


def _round(value: float) -> float:
    return round(max(value, 0.0), 9)


def _refusal(row: BudgetPeriodRecord, scope: str, cap: float, estimate_usd: float, provider: str) -> str:
    """Why a reservation of ``estimate_usd`` for ``provider`` would pass ``cap`` (row's scope)."""
    label = "daily" if row.period == "day" else "monthly"
    if scope == GLOBAL:
        who = "global"
    elif scope.startswith(CLIENT_SCOPE_PREFIX):
        who = f"client {scope.removeprefix(CLIENT_SCOPE_PREFIX)}'s"
    else:
        who = f"{scope}'s"
    return (
        f"{who} {label} budget ({row.period_key}): USD {row.spent_usd:.2f} spent + "
        f"{row.reserved_usd:.2f} reserved + {estimate_usd:.2f} for {provider} would pass "
        f"the cap of USD {cap:.2f}"
    )


class BudgetLedger:
    """Reserve / settle against the caps of ``budget``, in the database of ``db``."""

    def __init__(self, db: Database, budget: BudgetConfig, *, timezone: str = "UTC", clients: ClientsConfig | None = None) -> None:
        self.db = db
        self.budget = budget
        self.timezone = timezone
        self.clients = clients or ClientsConfig()

    # -- caps -------------------------------------------------------------------------
    def caps(self, provider: str, client: str | None = None) -> dict[tuple[str, str], float]:
        """{(scope, period): cap USD} that apply to a call of ``provider`` for a slot of ``client``."""
        caps = {(GLOBAL, "day"): self.budget.daily_usd, (GLOBAL, "month"): self.budget.monthly_usd}
        own = self.budget.providers.get(provider)
        if own is not None:
            if own.daily_usd is not None:
                caps[(provider, "day")] = own.daily_usd
            if own.monthly_usd is not None:
                caps[(provider, "month")] = own.monthly_usd
        owner = self.clients.get(client)
        if client and owner is not None:
            if owner.budget.daily_usd is not None:
                caps[(client_scope(client), "day")] = owner.budget.daily_usd
            if owner.budget.monthly_usd is not None:
                caps[(client_scope(client), "month")] = owner.budget.monthly_usd
        return caps

    def _lock_periods(
        self, session: Session, provider: str, day_key: str, month_key: str, client: str | None = None
    ) -> dict[tuple[str, str], BudgetPeriodRecord]:
        """The period rows of a call (global, provider and the slot's client, day and month),
        created when missing and locked until the transaction ends, always in the same order."""
        scopes = [GLOBAL, provider] + ([client_scope(client)] if client else [])
        wanted = sorted({(scope, period, key) for scope in scopes for period, key in (("day", day_key), ("month", month_key))})
        table = BudgetPeriodRecord.__table__  # type: ignore[attr-defined]
        insert = sqlite.insert if self.db.is_sqlite else postgresql.insert
        for scope, period, key in wanted:
            stmt = insert(table).values(scope=scope, period=period, period_key=key, spent_usd=0.0, reserved_usd=0.0, updated_at=utcnow())
            session.execute(stmt.on_conflict_do_nothing(index_elements=["scope", "period", "period_key"]))
        rows: dict[tuple[str, str], BudgetPeriodRecord] = {}
        for scope, period, key in wanted:
            query = (
                select(BudgetPeriodRecord)
                .where(BudgetPeriodRecord.scope == scope, BudgetPeriodRecord.period == period, BudgetPeriodRecord.period_key == key)
                .with_for_update()
            )
            rows[(scope, period)] = session.exec(query).one()
        return rows

    def _transaction(self, work: Callable[[Session], _T]) -> _T:
        """Run ``work(session)`` in one write transaction; retried on a deadlock or a
        serialization failure (PostgreSQL), which roll back without effect."""
        for attempt in range(5):
            try:
                with self.db.write_session() as session:
                    return work(session)
            except OperationalError as exc:
                code = getattr(getattr(exc, "orig", None), "sqlstate", None)
                if code not in ("40001", "40P01") or attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    # -- reserve / settle ---------------------------------------------------------------
    def reserve(
        self,
        provider: str,
        estimate_usd: float,
        *,
        image_pk: int | None = None,
        run_key: str | None = None,
        now: datetime | None = None,
        model: str | None = None,
        client: str | None = None,
    ) -> int:
        """Reserve ``estimate_usd`` for a call of ``provider``; returns the ledger entry id.

        ``estimate_usd`` is the most the call can cost (``Provider.max_cost``), so its
        settlement cannot pass a cap. ``image_pk`` / ``run_key`` link the reservation to the
        slot's claim (storage/ledger.py): if the run dies, the reservation is closed when its
        lease expires (``close_for_claim``, ``expire_stale``).
        With ``image_pk``, the call's attempt row is written in flight in the same transaction
        (status ``in_flight``, ``provider``, ``model``, cost = the reservation, its
        ``reservation_id``): the outcome replaces it; a run killed meanwhile leaves it.
        ``client``: the slot's client, whose caps (``clients.<name>.budget``) are checked in the
        same transaction; with ``image_pk`` and no ``client``, the slot's row names it.
        Raises BudgetExceededError naming the cap (scope, period, USD figures) the call
        would pass (``client acme's daily budget ...`` for a client's cap); the refusal is
        recorded (``state='refused'``) for the budget alert.
        """
        if estimate_usd < 0:
            raise ValueError(f"estimate_usd must be >= 0, not {estimate_usd!r}")
        day_key, month_key = period_keys(now or datetime.now(UTC), self.timezone)

        def work(session: Session) -> int:
            owner = client if client is not None or image_pk is None else session.exec(select(ImageRecord.client).where(ImageRecord.id == image_pk)).first()
            rows = self._lock_periods(session, provider, day_key, month_key, owner)
            self._refuse_while_overrun(session, provider, estimate_usd, day_key, month_key)
            for (scope, period), cap in self.caps(provider, owner).items():
                row = rows[(scope, period)]
                if row.spent_usd + row.reserved_usd + estimate_usd > cap + _EPS:
                    reason = _refusal(row, scope, cap, estimate_usd, provider)
                    session.add(
                        BudgetLedgerRecord(
                            provider=provider, state="refused", estimate_usd=estimate_usd, day_key=day_key, month_key=month_key, reason=reason, client=owner
                        )
                    )
                    session.commit()
                    raise BudgetExceededError(reason)
            for row in rows.values():
                row.reserved_usd = _round(row.reserved_usd + estimate_usd)
                row.updated_at = utcnow()
                session.add(row)
            entry = BudgetLedgerRecord(
                provider=provider,
                state="reserved",
                estimate_usd=estimate_usd,
                day_key=day_key,
                month_key=month_key,
                image_pk=image_pk,
                run_key=run_key,
                client=owner,
            )
            session.add(entry)
            session.flush()
            assert entry.id is not None
            if image_pk is not None:
                session.add(
                    AttemptRecord(image_pk=image_pk, provider=provider, model=model, status="in_flight", cost_usd=estimate_usd, reservation_id=entry.id)
                )
            session.commit()
            return entry.id

        return self._transaction(work)

    def settle(self, token: object, actual_usd: float) -> None:
        """Replace reservation ``token`` by the real cost ``actual_usd`` (0 releases it).

        Settling twice is a no-op; an unknown token raises KeyError.
        """

        def work(session: Session) -> None:
            self.settle_in(session, token, actual_usd)
            session.commit()

        self._transaction(work)

    def settle_in(self, session: Session, token: object, actual_usd: float) -> None:
        """``settle`` inside the caller's transaction (the image's outcome is written in the
        same one: storage/ledger.py); the caller commits. A cost above the reservation (a
        time-billed provider reporting more seconds than the call's timeout allows) is
        counted at the reservation, the provider's documented maximum for that call, so no
        cap is passed; the entry is left ``overrun`` with both figures in ``reason`` (the
        ``budget-overrun`` alert reads it) and every later paid call is refused until an
        operator acknowledges it (``acknowledge_overruns``)."""
        entry = session.exec(select(BudgetLedgerRecord).where(BudgetLedgerRecord.id == token)).one_or_none()
        if entry is None:
            raise KeyError(f"no budget reservation {token!r}")
        if entry.state != "reserved":
            return
        rows = self._lock_periods(session, entry.provider, entry.day_key, entry.month_key, entry.client)
        session.refresh(entry)  # re-read under the lock: expire_stale may have closed it
        if entry.state != "reserved":
            return
        overrun = actual_usd > entry.estimate_usd + _EPS
        counted = entry.estimate_usd if overrun else actual_usd
        for row in rows.values():
            row.reserved_usd = _round(row.reserved_usd - entry.estimate_usd)
            row.spent_usd = _round(row.spent_usd + counted)
            row.updated_at = utcnow()
            session.add(row)
        entry.state = OVERRUN if overrun else ("settled" if counted > 0 else "released")
        entry.actual_usd = counted
        entry.settled_at = utcnow()
        if overrun:
            entry.reason = (
                f"{entry.provider} reported USD {actual_usd:.4f}, above its reservation (the most the "
                f"call can cost) of USD {entry.estimate_usd:.4f}: counted at the reservation, "
                f"USD {actual_usd - entry.estimate_usd:.4f} not counted; paid calls are held until "
                "an operator runs `content-pipeline budget ack`"
            )
        session.add(entry)

    @staticmethod
    def _refuse_while_overrun(session: Session, provider: str, estimate_usd: float, day_key: str, month_key: str) -> None:
        """Inside a reservation's transaction: refuse it (recorded ``refused``) while an
        overrun no operator acknowledged is in the ledger."""
        held = session.exec(select(BudgetLedgerRecord).where(BudgetLedgerRecord.state == OVERRUN).order_by(col(BudgetLedgerRecord.id))).first()
        if held is None:
            return
        reason = f"paid calls held: a settlement passed its reservation (entry {held.id}, {held.provider}); check it, then run `content-pipeline budget ack`"
        session.add(BudgetLedgerRecord(provider=provider, state="refused", estimate_usd=estimate_usd, day_key=day_key, month_key=month_key, reason=reason))
        session.commit()
        raise BudgetExceededError(reason)

    def overruns(self) -> list[BudgetLedgerRecord]:
        """The settlements above their reservation no operator acknowledged yet, oldest first."""
        with self.db.session() as session:
            query = select(BudgetLedgerRecord).where(BudgetLedgerRecord.state == OVERRUN)
            return list(session.exec(query.order_by(col(BudgetLedgerRecord.id))))

    def acknowledge_overruns(self) -> list[BudgetLedgerRecord]:
        """An operator's acknowledgement (``content-pipeline budget ack``): every ``overrun``
        entry becomes ``settled`` (still counted at its reservation, its reason kept) and paid
        calls go ahead again. Returns the entries acknowledged."""

        def work(session: Session) -> list[BudgetLedgerRecord]:
            entries = list(session.exec(select(BudgetLedgerRecord).where(BudgetLedgerRecord.state == OVERRUN)))
            for entry in entries:
                entry.state = "settled"
                entry.reason = f"{entry.reason}; acknowledged {utcnow().isoformat(timespec='seconds')}"
                session.add(entry)
            session.commit()
            for entry in entries:
                session.refresh(entry)
            return entries

        return self._transaction(work)

    def close_for_claim(self, session: Session, image_pk: int, dead_run_key: str) -> list[int]:
        """Inside a claim's transaction: close the reservations the dead run ``dead_run_key``
        left open for slot ``image_pk``. The provider may have charged, so each is counted
        at its reservation (state ``expired``). Returns the ids closed."""
        entries = list(
            session.exec(
                select(BudgetLedgerRecord)
                .where(BudgetLedgerRecord.image_pk == image_pk, BudgetLedgerRecord.run_key == dead_run_key, BudgetLedgerRecord.state == "reserved")
                .order_by(BudgetLedgerRecord.id)  # type: ignore[arg-type]
            )
        )
        for entry in entries:
            self._expire_in(session, entry, f"its run's lease on image {image_pk} expired: counted at its reservation")
        return [e.id for e in entries if e.id is not None]

    def _expire_in(self, session: Session, entry: BudgetLedgerRecord, reason: str) -> bool:
        rows = self._lock_periods(session, entry.provider, entry.day_key, entry.month_key, entry.client)
        session.refresh(entry)
        if entry.state != "reserved":
            return False  # settled meanwhile
        for row in rows.values():
            row.reserved_usd = _round(row.reserved_usd - entry.estimate_usd)
            row.spent_usd = _round(row.spent_usd + entry.estimate_usd)
            row.updated_at = utcnow()
            session.add(row)
        entry.state, entry.actual_usd, entry.settled_at = "expired", entry.estimate_usd, utcnow()
        entry.reason = reason
        session.add(entry)
        return True

    def expire_stale(self, older_than_s: float, *, now: datetime | None = None) -> list[int]:
        """Close reservations no live run will settle, counted at their reservation (the
        provider may have charged; state ``expired``): those linked to a slot whose claim is
        no longer their run's live lease (the run died, its lease expired), and unlinked ones
        left ``reserved`` for more than ``older_than_s`` seconds. Returns the ids closed."""
        moment = now or utcnow()
        cutoff = moment - timedelta(seconds=older_than_s)
        with self.db.session() as session:
            query = (
                select(BudgetLedgerRecord, ImageRecord.run_key, ImageRecord.lease_expires_at)
                .join(ImageRecord, ImageRecord.id == BudgetLedgerRecord.image_pk, isouter=True)  # type: ignore[arg-type]
                .where(BudgetLedgerRecord.state == "reserved")
            )
            candidates = list(session.exec(query))
        stale: list[tuple[int, str]] = []
        for entry, holder, lease in candidates:
            assert entry.id is not None
            if entry.image_pk is None or entry.run_key is None:
                if entry.created_at < cutoff:
                    stale.append((entry.id, f"not settled within {older_than_s:.0f} s: counted at its estimate"))
            elif holder != entry.run_key or lease is None or lease < moment:
                stale.append((entry.id, f"its run's lease on image {entry.image_pk} expired: counted at its reservation"))
        closed = []
        for token, reason in stale:

            def work(session: Session, token: int = token, reason: str = reason) -> bool:
                entry = session.exec(select(BudgetLedgerRecord).where(BudgetLedgerRecord.id == token)).one()
                done = self._expire_in(session, entry, reason)
                session.commit()
                return done

            if self._transaction(work):
                closed.append(int(token or 0))
        return closed

    # -- jobs of paid calls ---------------------------------------------------------------
    def record_job(self, token: int, job_id: str) -> None:
        """Write the provider's ``job_id`` on the in-flight attempt row of reservation ``token``
        (one transaction, as soon as the submit is answered)."""

        def work(session: Session) -> None:
            for row in session.exec(select(AttemptRecord).where(AttemptRecord.reservation_id == token)):
                row.job_id = job_id[:200]
                session.add(row)
            session.commit()

        self._transaction(work)

    def pending_job_of(self, image_pk: int, provider: str) -> PendingJob | None:
        """The newest job of ``provider`` for image ``image_pk`` still to be polled: an attempt
        row with a job id left ``in_flight`` (its run was killed) or ``pending`` (still running
        at our timeout). Its ``cost_usd`` is what the budget counted for it."""
        with self.db.session() as session:
            row = session.exec(
                select(AttemptRecord)
                .where(
                    AttemptRecord.image_pk == image_pk,
                    AttemptRecord.provider == provider,
                    AttemptRecord.job_id.is_not(None),  # type: ignore[union-attr]
                    AttemptRecord.status.in_(("in_flight", "pending")),  # type: ignore[attr-defined]
                )
                .order_by(AttemptRecord.id.desc())  # type: ignore[union-attr]
            ).first()
        if row is None or row.job_id is None:
            return None
        return PendingJob(row.job_id, row.reservation_id, row.cost_usd)

    def rebill(self, token: int, actual_usd: float) -> None:
        """Count reservation ``token`` at ``actual_usd``, what its job was finally billed (a job
        resumed by id after its run was killed or timed out): an open reservation is settled;
        one already closed (expired at its reservation, settled at an estimate) is corrected
        to ``actual_usd``. Idempotent: it sets the amount, it does not add it."""

        def work(session: Session) -> None:
            entry = session.exec(select(BudgetLedgerRecord).where(BudgetLedgerRecord.id == token)).one_or_none()
            if entry is None or entry.state == "refused":
                return
            if entry.state == "reserved":
                self.settle_in(session, token, actual_usd)
            else:
                for row in self._lock_periods(session, entry.provider, entry.day_key, entry.month_key, entry.client).values():
                    row.spent_usd = _round(row.spent_usd + actual_usd - (entry.actual_usd or 0.0))
                    row.updated_at = utcnow()
                    session.add(row)
                entry.state = "settled" if actual_usd > 0 else "released"
                entry.actual_usd, entry.settled_at = actual_usd, utcnow()
                entry.reason = f"resumed job billed USD {actual_usd:.6f}"
                session.add(entry)
            session.commit()

        self._transaction(work)

    def release(self, token: object) -> None:
        """Give reservation ``token`` back (the call failed and costs nothing)."""
        self.settle(token, 0.0)

    # -- reading ----------------------------------------------------------------------------
    def status(self, now: datetime | None = None) -> list[BudgetStatus]:
        """Every configured cap (global, per provider, then per client: scope ``client:<name>``)
        for the current day and month."""
        day_key, month_key = period_keys(now or datetime.now(UTC), self.timezone)
        wanted: list[tuple[str, str, str, float]] = [(GLOBAL, "day", day_key, self.budget.daily_usd), (GLOBAL, "month", month_key, self.budget.monthly_usd)]
        owners = [(name, own.daily_usd, own.monthly_usd) for name, own in sorted(self.budget.providers.items())]
        owners += [(client_scope(name), c.budget.daily_usd, c.budget.monthly_usd) for name, c in sorted(self.clients.root.items())]
        for scope, daily, monthly in owners:
            if daily is not None:
                wanted.append((scope, "day", day_key, daily))
            if monthly is not None:
                wanted.append((scope, "month", month_key, monthly))
        result = []
        with self.db.session() as session:
            for scope, period, key, cap in wanted:
                row = session.exec(
                    select(BudgetPeriodRecord).where(
                        BudgetPeriodRecord.scope == scope, BudgetPeriodRecord.period == period, BudgetPeriodRecord.period_key == key
                    )
                ).one_or_none()
                result.append(BudgetStatus(scope, period, key, cap, row.spent_usd if row else 0.0, row.reserved_usd if row else 0.0))
        return result

    def spent(self, now: datetime | None = None) -> tuple[float, float]:
        """(today, this month) in USD over every provider, settled costs only."""
        by_key = {(s.scope, s.period): s.spent_usd for s in self.status(now)}
        return by_key[(GLOBAL, "day")], by_key[(GLOBAL, "month")]

    def refusals(self, now: datetime | None = None) -> list[BudgetLedgerRecord]:
        """Today's refused reservations (calls the caps stopped)."""
        day_key, _ = period_keys(now or datetime.now(UTC), self.timezone)
        with self.db.session() as session:
            query = select(BudgetLedgerRecord).where(BudgetLedgerRecord.state == "refused", BudgetLedgerRecord.day_key == day_key)
            return list(session.exec(query.order_by(col(BudgetLedgerRecord.id))))

    def entries(self) -> list[BudgetLedgerRecord]:
        """Every ledger entry, oldest first."""
        with self.db.session() as session:
            return list(session.exec(select(BudgetLedgerRecord).order_by(col(BudgetLedgerRecord.id))))

    def total_spent(self) -> float:
        """USD settled over the whole ledger."""
        with self.db.session() as session:
            return float(session.exec(select(func.coalesce(func.sum(BudgetLedgerRecord.actual_usd), 0.0))).one())
