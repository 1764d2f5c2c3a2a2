"""The body the scheduled flows share (flows/daily.py, flows/weekly.py): plan a date's
slots from templates/schedules.yaml, keep the chosen categories, run them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from core.domain import ImageSlot
from core.templates import Schedules
from flows.parameters import only_categories
from tasks.pipeline import RunSummary, run_images
from tasks.plan import local_today
from tasks.runtime import get_runtime


def run_schedule(flow_name: str, plan: Callable[[Schedules, date], list[ImageSlot]], run_date: date | None,
                 categories: list[str] | None, retry_failed: bool) -> RunSummary:
    """Run ``plan``'s slots for ``run_date`` (default: today in the configured timezone)
    as the flow ``flow_name``: only those of ``categories`` (default: every slot; an
    unknown category raises TemplateError before any image is planned), through
    tasks.pipeline.run_images. Called in the flow's body."""
    rt = get_runtime()
    day = run_date or local_today(rt.settings.timezone)
    assert rt.library.schedules is not None
    # plan -> for each image: generate, post-process, categorize, upload, record -> alerts -> summary
    slots = only_categories(plan(rt.library.schedules, day), categories, rt.library)
    return run_images(flow_name, slots, retry_failed=retry_failed)
