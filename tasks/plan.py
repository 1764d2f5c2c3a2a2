"""Steps 1-2 of a run: select each slot's template and its variation, recorded as planned rows."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from domain.model import ImageSlot
from generation.record import record_planned
from wiring.runtime import Runtime


@task(name="plan-images", cache_policy=NO_CACHE)
def plan_images_task(rt: Runtime, slots: list[ImageSlot], trigger: str) -> list[int]:
    """Record one planned row per slot (template selected, variation made) before any money
    is spent; returns their primary keys (generation.record.record_planned)."""
    return record_planned(rt.db, rt.library, slots, styles=rt.settings.styles, trigger=trigger, ab=rt.settings.ab, clients=rt.settings.clients)
