"""One logger accessor and one shape for the lines about an image.

``get_logger()``: the Prefect run logger inside a flow or task run (its lines reach the
run's Logs tab in the Prefect UI), else the ``content_pipeline`` logger.
``image_line(slot, image_id, stage)``: the ``slot S#i image ID stage`` prefix every
line about one image starts with, so a log search for a slot, an image id or a stage
finds all of it (``slot 0600-food#1 image 3f2a9c... upload: 3 files``).
"""

from __future__ import annotations

import logging
from typing import Any


def get_logger() -> logging.Logger | logging.LoggerAdapter:
    try:
        from prefect.exceptions import MissingContextError  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs
        from prefect.logging import get_run_logger  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs

        try:
            return get_run_logger()
        except MissingContextError:
            pass
    except ImportError:  # pragma: no cover - prefect is a dependency
        pass
    return logging.getLogger("content_pipeline")


def image_line(row: Any, stage: str) -> str:
    """``slot <slot>#<index> image <image_id> <stage>`` for an image row (ImageRecord) or
    an ImageSummary (whose ``slot`` already holds ``<slot>#<index>``)."""
    index = getattr(row, "slot_index", None)
    slot = f"{row.slot}#{index}" if index is not None else str(row.slot)
    return f"slot {slot} image {row.image_id} {stage}"
