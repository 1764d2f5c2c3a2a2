"""Flow-parameter helpers shared by the flows (pure functions, no Prefect at import)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema

from domain.model import ImageSlot, Template, check_reference
from domain.errors import TemplateError
from domain.templates import TemplateLibrary, resolve_reference
from generation.plan import local_today
from wiring.runtime import get_runtime


def _as_text(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _a_day(value: str) -> str:
    if value:
        try:
            if len(value) != 10:
                raise ValueError(value)
            date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value[:40]!r} is not a date: write YYYY-MM-DD, or leave it empty") from None
    return value


#: A flow parameter holding a day as ``YYYY-MM-DD`` text, empty for the default day (the
#: run forms of the Prefect UI then show a plain text field, not a "date | None" toggle
#: with "Property is type None"); a ``date`` passed from Python is accepted as well.
DayText = Annotated[
    str,
    BeforeValidator(_as_text),
    AfterValidator(_a_day),
    # the server checks a deployment's parameters against this schema: 2026-13-01 is refused before a run exists
    WithJsonSchema({"type": "string", "maxLength": 10, "pattern": r"^([0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]))?$"}),
]


def day_or(value: str | date | None, default: date) -> date:
    """The day ``value`` names (``YYYY-MM-DD`` text or a date), ``default`` when empty."""
    if isinstance(value, date):
        return value
    return date.fromisoformat(value) if value else default


def optional_day(value: str | date | None) -> date | None:
    """The day ``value`` names, None when empty."""
    if isinstance(value, date):
        return value
    return date.fromisoformat(value) if value else None


def only_categories(slots: list[ImageSlot], categories: Sequence[str] | None, library: TemplateLibrary) -> list[ImageSlot]:
    """``slots`` of ``categories`` only (``None`` or empty: every slot).

    Raises TemplateError naming the unknown category and the known ones.
    """
    if not categories:
        return slots
    unknown = [c for c in categories if c not in library.templates]
    if unknown:
        raise TemplateError(f"parameter 'categories': unknown category {unknown[0]!r} under {library.folder} (have: {', '.join(library.categories)})")
    return [slot for slot in slots if slot.category in categories]


def dated_run_name(prefix: str):
    """A Prefect ``flow_run_name`` callable: ``<prefix>-<run_date>``, where a run without a
    ``run_date`` (a scheduled run) is named after today in the configured timezone."""

    def name() -> str:
        from prefect.runtime import flow_run  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs

        day = (flow_run.parameters or {}).get("run_date") or local_today(get_runtime().settings.timezone)
        return f"{prefix}-{day}"

    return name


def check_references(reference_image: str | None, mask: str | None, strength: float | None, folder: Path) -> None:
    """The ad-hoc flow's img2img parameters: each reference a file inside the templates
    ``folder`` or an https URL; ``mask`` and ``strength`` only with a ``reference_image``.

    Raises TemplateError naming the parameter and the (shortened) value."""
    if (mask or strength is not None) and not reference_image:
        raise TemplateError("parameter 'mask' / 'strength': needs the parameter 'reference_image'")
    for name, value in (("reference_image", reference_image), ("mask", mask)):
        if not value:
            continue
        try:
            resolve_reference(check_reference(value, name), folder)
        except (ValueError, TemplateError) as exc:
            raise TemplateError(f"parameter {name!r}: {exc}") from None


def check_brand_images(style_image: str | None, control_image: str | None, template: Template, folder: Path) -> None:
    """The ad-hoc flow's brand references: ``style_image`` replaces the template's IP-Adapter
    image and ``control_image`` its first ControlNet unit's, so the template must declare
    them (it names the models); each a file inside the templates ``folder`` or an https URL.

    Raises TemplateError naming the parameter and the (shortened) value."""
    for name, value, declared, key in (
        ("style_image", style_image, template.ip_adapter is not None, "ip_adapter"),
        ("control_image", control_image, bool(template.controlnet), "controlnet"),
    ):
        if not value:
            continue
        if not declared:
            raise TemplateError(f"parameter {name!r}: template {template.name!r} declares no {key} (its model): add one to the template")
        try:
            resolve_reference(check_reference(value, name), folder)
        except (ValueError, TemplateError) as exc:
            raise TemplateError(f"parameter {name!r}: {exc}") from None
