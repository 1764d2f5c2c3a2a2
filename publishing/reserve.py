"""Reserving published images for posts, and asking for one when none is free.

``reserve`` takes the best free published image of a category (storage.ledger
ImageLedger.reserve: highest quality score, then the oldest; atomic, two callers never
get the same image) for a date and channel. When none is free it refuses with a clear
reason, or, when ``publishing.on_demand_template`` names a template for the category,
requests an ad-hoc generation of one image through the ``generate/adhoc`` deployment
(Prefect's ``run_deployment``; it needs a Prefect server that serves it).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from domain.errors import ContentPipelineError
from storage.db import ImageRecord, ReservationRecord
from storage.ledger import ImageLedger
from storage.reservations import reserve_image


class ReservationRefused(ContentPipelineError):
    """No free published image of the category (and no on-demand generation requested)."""


@dataclass(frozen=True)
class ReserveOutcome:
    """``reserved`` (with ``reservation`` and ``image``), ``refused`` (``message`` says why) or
    ``requested`` (an on-demand generation: ``flow_run_id``)."""

    state: str
    message: str
    reservation: ReservationRecord | None = None
    image: ImageRecord | None = None
    flow_run_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        image = self.image
        return {
            "state": self.state,
            "message": self.message,
            "reservation_id": self.reservation.id if self.reservation else None,
            "image_id": image.image_id if image else None,
            "storage_key": image.storage_key if image else None,
            "flow_run_id": self.flow_run_id,
        }


def unknown_category(category: str, known: Sequence[str]) -> str | None:
    """None when ``category`` is one of ``known`` (the template library's categories), else
    one line: the closest known one (difflib) and the list."""
    if category in known:
        return None
    close = difflib.get_close_matches(category, list(known), n=1, cutoff=0.6)
    guess = f" — did you mean {close[0]!r}?" if close else ""
    return f"unknown category {category[:40]!r}{guess} known: {', '.join(sorted(known)) or 'none'}"


def reserve(
    ledger: ImageLedger, settings: Any, category: str, for_date: date, *, channel: str | None = None, reserved_by: str | None = None, on_demand: bool = True
) -> ReserveOutcome:
    """Reserve an image of ``category`` for ``for_date`` / ``channel`` (see the module doc)."""
    reservation = reserve_image(ledger.db, category, for_date, channel=channel, reserved_by=reserved_by)
    if reservation is not None:
        image = ledger.get(reservation.image_pk)
        return ReserveOutcome(
            "reserved",
            f"image {image.image_id} reserved for {for_date}{' on ' + channel if channel else ''} (reservation {reservation.id})",
            reservation,
            image,
        )
    reason = f"no free published image of category {category!r} for {for_date}"
    template = settings.publishing.on_demand_template.get(category)
    if not on_demand or not template:
        return ReserveOutcome("refused", f"{reason} (publish more, release one, or set publishing.on_demand_template.{category})")
    try:
        run_id = request_generation(template, category, for_date)
    except Exception as exc:
        return ReserveOutcome("refused", f"{reason}; the on-demand generation of {template!r} could not be requested: {str(exc)[:300]}")
    return ReserveOutcome(
        "requested", f"{reason}: one image of {template!r} requested (flow run {run_id}); reserve again once it is published", flow_run_id=run_id
    )


def request_generation(template: str, category: str, for_date: date) -> str:
    """Start the ``generate/adhoc`` deployment for one image of ``template``; the flow run id.
    The batch name makes repeated requests for the same category and date one request."""
    from prefect.client.schemas.objects import FlowRun  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs
    from prefect.deployments import run_deployment  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs

    run = run_deployment("generate/adhoc", parameters={"template": template, "count": 1, "batch": f"on-demand-{category}-{for_date.isoformat()}"}, timeout=0)
    assert isinstance(run, FlowRun)  # the synchronous call returns the flow run
    return str(run.id)
