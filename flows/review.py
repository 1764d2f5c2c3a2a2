"""The publishing flows: ``reserve`` (an image for a post, callable through Prefect's API)
and ``regenerate`` (version n+1 of an image's slot)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from prefect import flow
from pydantic import Field

from generation.plan import local_today
from publishing.reserve import ReservationRefused, reserve
from publishing.review import publish_or_review
from publishing.versions import find_image
from storage.ledger import ImageLedger
from storage.versions import plan_version
from wiring.runtime import get_runtime


@flow(name="reserve", flow_run_name="reserve-{category}")
def reserve_image(
    category: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9_-]*$")],
    for_date: date | None = None,
    channel: Annotated[str | None, Field(max_length=60)] = None,
    on_demand: bool = True,
) -> dict[str, Any]:
    """Reserve the best free published image of ``category`` for ``for_date`` and ``channel``.

    Args:
        category: The image category (food, products ...).
        for_date: The post's date (YYYY-MM-DD); default tomorrow in the configured timezone.
        channel: Where it will be posted (instagram ...), optional.
        on_demand: When none is free, request a generation if the category has an on-demand template.

    Returns the outcome: ``state`` reserved or requested (an on-demand generation), the
    image id, its key. Raises ReservationRefused (the run fails, with the reason) when no
    image is free and none could be requested.
    """
    rt = get_runtime()
    day = for_date or local_today(rt.settings.timezone) + timedelta(days=1)
    outcome = reserve(ImageLedger(rt.db), rt.settings, category, day, channel=channel, reserved_by="prefect", on_demand=on_demand)
    if outcome.state == "refused":
        raise ReservationRefused(outcome.message)
    return outcome.as_dict()


@flow(name="regenerate", flow_run_name="regenerate-{image_id}")
def regenerate_image(image_id: str, seed: int | None = None, provider: str | None = None) -> dict[str, Any]:
    """Make version n+1 of ``image_id``'s slot (new ``seed``, only ``provider`` when given),
    then publish it or send it to review like any new image.

    Returns the new version's image id, version, status and key.
    """
    rt = get_runtime()
    row = find_image(rt.db, image_id)
    assert row.id is not None
    version = plan_version(rt.db, row.id, seed=seed)
    assert version.id is not None
    rt.produce_version(version.id, provider)
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
