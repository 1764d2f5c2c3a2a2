"""Test fixtures that write image rows directly, to set up a scenario (a row already
generated, published, failed...). The pipeline itself only moves rows through the typed
transitions of storage/ledger.py; these helpers stand in for earlier runs."""

from __future__ import annotations

from typing import Any

from domain.model import ImageSlot, ImageStatus, key_digest
from storage.db import Database, ImageRecord, utcnow


def plan_row(db: Database, slot: ImageSlot, **fields: Any) -> ImageRecord:
    """The row of ``slot``, created ``planned`` with ``fields`` when missing."""
    from sqlmodel import select

    key = slot.idempotency_key
    with db.write_session() as session:
        row = session.exec(select(ImageRecord).where(ImageRecord.idempotency_key == key)).first()
        if row is None:
            row = ImageRecord(
                idempotency_key=key,
                image_id=key_digest(key),
                flow=slot.flow,
                run_date=slot.run_date,
                slot=slot.slot,
                slot_index=slot.index,
                category=slot.category,
                **fields,
            )
            session.add(row)
            session.commit()
            session.refresh(row)
        return row


def set_row(db: Database, pk: int | None, status: ImageStatus, **fields: Any) -> ImageRecord:
    """Write ``status`` and ``fields`` on row ``pk`` as an earlier run would have left it."""
    with db.write_session() as session:
        row = session.get(ImageRecord, pk)
        assert row is not None, f"no image row {pk}"
        row.status = status.value
        for name, value in fields.items():
            setattr(row, name, value)
        row.updated_at = utcnow()
        session.add(row)
        session.commit()
        session.refresh(row)
        return row


def flow_summary(state: Any) -> Any:
    """The RunSummary of a flow run's final state (``flow(..., return_state=True)``):
    its result when Completed, the IncompleteRunError's summary when Failed for images
    not done as real content."""
    from reporting.summary import IncompleteRunError

    if state.is_completed():
        return state.result()
    data = state.result(raise_on_failure=False)
    assert isinstance(data, IncompleteRunError), f"the run ended {state.type.value}: {state.message} ({data!r})"
    return data.summary
