"""The publishing flows: ``reserve`` (an image for a post, callable through Prefect's API)
and ``regenerate`` (version n+1 of an image's slot)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from prefect import flow
from pydantic import Field

from flows.parameters import DayText, day_or
from generation.plan import local_today
from publishing.reserve import ReservationRefused, reserve, unknown_category
from publishing.review import publish_or_review
from publishing.versions import find_image
from storage.ledger import ImageLedger
from storage.versions import plan_version
from wiring.runtime import get_runtime


@flow(name="reserve", flow_run_name="reserve-{category}")
def reserve_image(
    category: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9_-]*$")],
    for_date: DayText = "",
    channel: Annotated[str, Field(max_length=60)] = "",
    on_demand: bool = True,
) -> dict[str, Any]:
    """Reserve the best free published image of ``category`` for ``for_date`` and ``channel``.

    Args:
        category: The image category (food, products ...).
        for_date: The post's date, YYYY-MM-DD (empty: tomorrow in the configured timezone).
        channel: Where it will be posted (instagram ...); empty for any.
        on_demand: When none is free, request a generation if the category has an on-demand template.

    Returns the outcome: ``state`` reserved or requested (an on-demand generation), the
    image id, its key. Raises ReservationRefused (the run fails, with the reason) when no
    image is free and none could be requested.
    """
    rt = get_runtime()
    problem = unknown_category(category, rt.library.categories)
    if problem:
        raise ReservationRefused(problem)
    day = day_or(for_date, local_today(rt.settings.timezone) + timedelta(days=1))
    outcome = reserve(ImageLedger(rt.db), rt.settings, category, day, channel=channel or None, reserved_by="prefect", on_demand=on_demand)
    if outcome.state == "refused":
        raise ReservationRefused(outcome.message)
    return outcome.as_dict()


@flow(name="regenerate", flow_run_name="regenerate-{image_id}")
def regenerate_image(image_id: str, seed: int = -1, provider: str = "") -> dict[str, Any]:
    """Make version n+1 of ``image_id``'s slot (``seed``; -1: a new random one; only
    ``provider`` when not empty), then publish it or send it to review like any new image.

    Returns the new version's image id, version, status and key.
    """
    rt = get_runtime()
    row = find_image(rt.db, image_id)
    assert row.id is not None
    version = plan_version(rt.db, row.id, seed=seed if seed >= 0 else None)
    assert version.id is not None
    rt.produce_version(version.id, provider or None)
    made = publish_or_review(rt.publisher(), [version.id], f"regenerate-{version.image_id}", produce=rt.produce_planned)
    [final] = [r for r in made if r.id == version.id]
    return {
        "image_id": final.image_id,
        "version": final.version,
        "previous": row.image_id,
        "status": final.status,
        "storage_key": final.storage_key,
        "error": final.error,
    }
