"""The queries only reports and alerts ask (reporting/alerts.py, tasks/report.py): spending
on attempts, failure streaks, recent terminal images and the alert log, each a function
over the same ``storage.db.Database``."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, func, select

from domain.model import ImageStatus
from storage.db import AlertRecord, AttemptRecord, Database, ImageRecord


def spent_usd(db: Database, since: datetime) -> float:
    """USD recorded on attempts since ``since`` (timezone-aware)."""
    with db.session() as session:
        total = session.exec(select(func.coalesce(func.sum(AttemptRecord.cost_usd), 0.0)).where(AttemptRecord.created_at >= since)).one()
        return float(total)


def trailing_failures(db: Database, provider: str | None = None, limit: int = 1000) -> int:
    """Failed attempts in a row at the end of the record (of ``provider``, or of real providers)."""
    with db.session() as session:
        query = select(AttemptRecord.status).where(AttemptRecord.status != "skipped")
        if provider:
            query = query.where(AttemptRecord.provider == provider)
        else:
            query = query.where(AttemptRecord.provider != "placeholder")
        statuses = session.exec(query.order_by(AttemptRecord.id.desc()).limit(limit)).all()  # type: ignore[union-attr]
    count = 0
    for status in statuses:
        if status != "failed":
            break
        count += 1
    return count


def last_failed_attempt(db: Database, provider: str) -> AttemptRecord | None:
    with db.session() as session:
        query = select(AttemptRecord).where(AttemptRecord.provider == provider, AttemptRecord.status == "failed")
        return session.exec(query.order_by(AttemptRecord.id.desc())).first()  # type: ignore[union-attr]


def recent_images(db: Database, limit: int, *, client: str | None = None) -> list[ImageRecord]:
    """The ``limit`` most recently updated terminal images (of ``client`` when given), newest last."""
    terminal = [s.value for s in ImageStatus if s.terminal]
    with db.session() as session:
        query = select(ImageRecord).where(ImageRecord.status.in_(terminal))  # type: ignore[attr-defined]
        if client is not None:
            query = query.where(ImageRecord.client == client)
        rows = session.exec(query.order_by(ImageRecord.updated_at.desc()).limit(limit)).all()  # type: ignore[attr-defined]
    return list(reversed(rows))


def last_alert(db: Database, rule: str, scope: str) -> AlertRecord | None:
    with db.session() as session:
        query = select(AlertRecord).where(AlertRecord.rule == rule, AlertRecord.scope == scope)
        return session.exec(query.order_by(AlertRecord.id.desc())).first()  # type: ignore[union-attr]


def add_alert(db: Database, alert: AlertRecord) -> AlertRecord:
    with db.write_session() as session:
        session.add(alert)
        session.commit()
        session.refresh(alert)
        return alert


def alerts(db: Database) -> list[AlertRecord]:
    with db.session() as session:
        return list(session.exec(select(AlertRecord).order_by(col(AlertRecord.id))))
