"""Versions of an image slot: every version of a row's slot, and version n+1 planned from
row n (a regeneration after a review), as functions over the same ``storage.db.Database``;
the state machine that moves each version is storage/ledger.py."""

from __future__ import annotations

from sqlmodel import select

from domain.model import ImageSlot, ImageStatus, key_digest, seed_from_key
from storage.db import Database, ImageRecord, utcnow
from storage.ledger import locked_row


def versions(db: Database, pk: int) -> list[ImageRecord]:
    """Every version of row ``pk``'s slot, version 1 first (the chain of ``previous_pk``)."""
    row = db.get(pk)
    with db.session() as session:
        query = select(ImageRecord).where(
            ImageRecord.flow == row.flow, ImageRecord.run_date == row.run_date, ImageRecord.slot == row.slot, ImageRecord.slot_index == row.slot_index
        )
        return sorted(session.exec(query), key=lambda r: (r.version, r.id or 0))


def plan_version(db: Database, pk: int, *, seed: int | None = None, trigger: str = "regenerate") -> ImageRecord:
    """Version n+1 of row ``pk``'s slot: a new ``planned`` row with the same prompt and
    parameters, ``previous_pk`` = ``pk``, a new seed (``seed`` or one derived from the new
    idempotency key ``<slot key>:v<n+1>``). Idempotent: a row already made from ``pk``
    is returned as it is (one transaction; the previous row is locked)."""
    with db.write_session() as session:
        previous = locked_row(db, session, pk)
        made = session.exec(select(ImageRecord).where(ImageRecord.previous_pk == pk)).first()
        if made is not None:
            session.commit()  # nothing written; a rollback would expire the row it returns
            return made
        siblings = session.exec(
            select(ImageRecord.version).where(
                ImageRecord.flow == previous.flow,
                ImageRecord.run_date == previous.run_date,
                ImageRecord.slot == previous.slot,
                ImageRecord.slot_index == previous.slot_index,
            )
        ).all()
        version = max([previous.version, *siblings]) + 1
        slot_key = ImageSlot(previous.flow, previous.run_date, previous.slot, previous.slot_index, previous.category).idempotency_key
        key = f"{slot_key}:v{version}"
        now = utcnow()
        row = ImageRecord(
            idempotency_key=key,
            image_id=key_digest(key),
            flow=previous.flow,
            run_date=previous.run_date,
            slot=previous.slot,
            slot_index=previous.slot_index,
            trigger=trigger,
            status=ImageStatus.planned.value,
            category=previous.category,
            template=previous.template,
            template_version=previous.template_version,
            variant=previous.variant,
            prompt=previous.prompt,
            negative_prompt=previous.negative_prompt,
            width=previous.width,
            height=previous.height,
            num_inference_steps=previous.num_inference_steps,
            guidance_scale=previous.guidance_scale,
            seed=seed if seed is not None else seed_from_key(key),
            tags=list(previous.tags or []),
            request_options=previous.request_options,
            prompt_private=previous.prompt_private,
            client=previous.client,
            created_at=now,
            updated_at=now,
            version=version,
            previous_pk=pk,
        )
        session.add(row)
        session.commit()
        return row
