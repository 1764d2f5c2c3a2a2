"""Reservations of published images for a date and a channel (publishing/reserve.py, the
CLI's ``reserve`` / ``release`` / calendar): functions over the same ``storage.db.Database``
whose ``reservation`` table guards one active reservation per image."""

from __future__ import annotations

from datetime import date

from sqlmodel import col, select

from domain.model import ImageStatus
from storage.db import Database, ImageRecord, ReservationRecord, utcnow
from sqlalchemy.exc import IntegrityError


def reserve_image(db: Database, category: str, for_date: date, *, channel: str | None = None, reserved_by: str | None = None) -> ReservationRecord | None:
    """Reserve the best free published image (``done``, ``published_at`` set) of ``category`` (highest quality score,
    then the oldest) for ``for_date`` / ``channel``; None when none is free.

    One transaction: on PostgreSQL the candidate row is taken ``FOR UPDATE SKIP LOCKED``
    (a concurrent caller moves on to the next image), on SQLite the write lock is taken
    first (``BEGIN IMMEDIATE``); the unique ``active_image_pk`` is the last guard."""

    for _ in range(5):
        with db.write_session() as session:
            taken = select(ReservationRecord.active_image_pk).where(ReservationRecord.active_image_pk.is_not(None))  # type: ignore[union-attr]
            query = (
                select(ImageRecord)
                .where(
                    ImageRecord.category == category,
                    ImageRecord.status == ImageStatus.done.value,
                    ImageRecord.published_at.is_not(None),  # type: ignore[union-attr]
                    ImageRecord.is_placeholder == False,  # noqa: E712
                    ImageRecord.id.not_in(taken),  # type: ignore[union-attr]
                )
                .order_by(col(ImageRecord.quality_score).desc().nulls_last(), col(ImageRecord.created_at), col(ImageRecord.id))
                .limit(1)
            )
            if not db.is_sqlite:
                query = query.with_for_update(skip_locked=True)
            image = session.exec(query).first()
            if image is None:
                session.rollback()
                return None
            reservation = ReservationRecord(
                image_pk=image.id,  # type: ignore[arg-type]
                active_image_pk=image.id,
                category=category,
                for_date=for_date,
                channel=channel,
                reserved_by=reserved_by,
            )
            session.add(reservation)
            try:
                session.commit()
            except IntegrityError:  # reserved by a concurrent caller a moment ago: take the next one
                session.rollback()
                continue
            session.refresh(reservation)
            return reservation
    return None


def release_reservation(db: Database, reservation_id: int) -> ReservationRecord:
    """End reservation ``reservation_id`` (its image is free again); KeyError when unknown."""
    with db.write_session() as session:
        reservation = session.get(ReservationRecord, reservation_id)
        if reservation is None:
            raise KeyError(f"no reservation {reservation_id}")
        if reservation.active_image_pk is not None:
            reservation.active_image_pk = None
            reservation.released_at = utcnow()
            session.add(reservation)
            session.commit()
            session.refresh(reservation)
        return reservation


def list_reservations(db: Database, *, since: date | None = None, until: date | None = None, active_only: bool = True) -> list[ReservationRecord]:
    """Reservations whose date is in ``since``..``until`` (both included), by date."""
    with db.session() as session:
        query = select(ReservationRecord)
        if active_only:
            query = query.where(ReservationRecord.active_image_pk.is_not(None))  # type: ignore[union-attr]
        if since is not None:
            query = query.where(ReservationRecord.for_date >= since)
        if until is not None:
            query = query.where(ReservationRecord.for_date <= until)
        return list(session.exec(query.order_by(ReservationRecord.for_date, ReservationRecord.id)))  # type: ignore[arg-type]
