"""Plans: which image slots a flow run makes (category, count, idempotency keys).

The idempotency key of a slot is ``flow:run_date:slot:index`` (domain.model.ImageSlot).
"""

from __future__ import annotations

import functools

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from domain.errors import TemplateError
from domain.model import ImageFormat, ImageSlot, Quality
from domain.templates import WEEKDAYS, Schedules

#: The run dates a plan accepts (inclusive): the template rotation reads the day before
#: (generation/select.py), which ``date.min`` has not, and no content is dated before 1970.
FIRST_RUN_DATE = date(1970, 1, 1)
LAST_RUN_DATE = date(9999, 12, 30)


def check_run_date(run_date: date) -> date:
    """``run_date`` when it lies in ``FIRST_RUN_DATE..LAST_RUN_DATE``, else TemplateError
    with one line naming it (a deployment parameter or ``--date`` such as 0001-01-01)."""
    if not FIRST_RUN_DATE <= run_date <= LAST_RUN_DATE:
        raise TemplateError(
            f"run_date {run_date.isoformat()} is outside {FIRST_RUN_DATE.isoformat()}.."
            f"{LAST_RUN_DATE.isoformat()}: give the date the images are for (YYYY-MM-DD)"
        )
    return run_date


def plan_daily(schedules: Schedules, run_date: date) -> list[ImageSlot]:
    """Every image of the daily window for ``run_date``, slots in time order."""
    check_run_date(run_date)
    slots: list[ImageSlot] = []
    for slot in sorted(schedules.daily.slots, key=lambda s: s.time):
        for index in range(slot.count):
            slots.append(ImageSlot("daily", run_date, slot.slot_name, index, slot.category, quality=slot.quality, format=slot.format))
    return slots


def plan_weekly(schedules: Schedules, run_date: date) -> list[ImageSlot]:
    """Every image of ``run_date``'s weekday in the weekly plan, plus the weekend special."""
    check_run_date(run_date)
    weekday = WEEKDAYS[run_date.weekday()]
    slots: list[ImageSlot] = []
    for position, entry in enumerate(schedules.weekly.days[weekday]):
        name = f"{weekday}-{position}-{entry.category}"
        for index in range(entry.count):
            slots.append(ImageSlot("weekly", run_date, name, index, entry.category, quality=entry.quality, format=entry.format))
    special = schedules.weekly.weekend_special
    if special and weekday in special.days:
        for index in range(special.count):
            slots.append(
                ImageSlot(
                    "weekly",
                    run_date,
                    f"{weekday}-special-{special.category}",
                    index,
                    special.category,
                    quality=special.quality,
                    format=special.format,
                    extra_tags=tuple(special.tags),
                )
            )
    return slots


def plan_adhoc(
    template: str,
    category: str,
    count: int,
    run_date: date,
    batch: str,
    quality: Quality | None = None,
    fmt: ImageFormat | None = None,
    *,
    reference_image: str | None = None,
    mask: str | None = None,
    strength: float | None = None,
    style_image: str | None = None,
    control_image: str | None = None,
) -> list[ImageSlot]:
    """``count`` images of one template; ``batch`` makes the keys of one request unique.
    ``reference_image`` / ``mask`` / ``strength`` (img2img, inpainting), ``style_image``
    (IP-Adapter) and ``control_image`` (the first ControlNet unit) override the template's."""
    check_run_date(run_date)
    slot = f"{batch}-{template}"
    made = functools.partial(
        ImageSlot, template=template, quality=quality, format=fmt, reference_image=reference_image, mask=mask, strength=strength, style_image=style_image
    )
    return [made("adhoc", run_date, slot, i, category, control_image=control_image) for i in range(count)]


def local_today(timezone: str) -> date:
    """Today's date in ``timezone`` (IANA name)."""
    return datetime.now(UTC).astimezone(ZoneInfo(timezone)).date()
