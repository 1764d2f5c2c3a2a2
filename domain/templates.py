"""Prompt templates (templates/<category>/*.yaml) and schedule plans (templates/schedules.yaml).

``TemplateLibrary.load(folder)`` reads and validates every file; a problem raises
TemplateError naming the file, the line, the field and the value.
``TemplateLibrary.validate(folder)`` returns every problem instead of the first.
"""

from __future__ import annotations

import difflib

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from domain.model import ImageFormat, Quality, Template
from domain.errors import TemplateError
from domain.yamlio import format_validation_error, load_yaml
from PIL import Image, UnidentifiedImageError

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[Weekday, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=60)]


def _check_time(value: str) -> str:
    if not _TIME.match(value):
        raise ValueError(f"time must be HH:MM (24 h), got {value!r}")
    return value


class DailySlot(BaseModel):
    """One slot of the morning window: at ``time``, ``count`` images of ``category``."""

    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    time: str
    category: Name
    count: Annotated[int, Field(ge=1, le=50)]
    quality: Quality | None = None
    format: ImageFormat | None = None

    @field_validator("time")
    @classmethod
    def _valid_time(cls, value: str) -> str:
        return _check_time(value)

    @property
    def slot_name(self) -> str:
        return self.name or f"{self.time.replace(':', '')}-{self.category}"


class DailyPlan(BaseModel):
    """The daily window (default 06:00-08:00) and its slots; the flow starts at ``window_start``."""

    model_config = ConfigDict(extra="forbid")
    window_start: str = "06:00"
    window_end: str = "08:00"
    slots: Annotated[list[DailySlot], Field(min_length=1)]

    @field_validator("window_start", "window_end")
    @classmethod
    def _valid_times(cls, value: str) -> str:
        return _check_time(value)

    @model_validator(mode="after")
    def _inside_window(self) -> DailyPlan:
        if self.window_end <= self.window_start:
            raise ValueError(f"window_end {self.window_end} is not after window_start {self.window_start}")
        for slot in self.slots:
            if not (self.window_start <= slot.time < self.window_end):
                raise ValueError(f"slot at {slot.time} is outside the window {self.window_start}-{self.window_end}")
        names = [s.slot_name for s in self.slots]
        if len(set(names)) != len(names):
            raise ValueError(f"slot names must be unique: {names}")
        return self


class WeeklyEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category: Name
    count: Annotated[int, Field(ge=1, le=50)]
    quality: Quality | None = None
    format: ImageFormat | None = None


class WeekendSpecial(WeeklyEntry):
    """An extra slot on weekend days, with its own tags (e.g. ``weekend-special``)."""

    days: list[Weekday] = ["saturday", "sunday"]  # pydantic copies mutable defaults
    tags: list[str] = Field(default_factory=lambda: ["weekend-special"])


class WeeklyPlan(BaseModel):
    """Per weekday a list of (category, count); the flow runs every day at ``time``."""

    model_config = ConfigDict(extra="forbid")
    time: str = "09:00"
    days: dict[Weekday, list[WeeklyEntry]]
    weekend_special: WeekendSpecial | None = None

    @field_validator("time")
    @classmethod
    def _valid_time(cls, value: str) -> str:
        return _check_time(value)

    @model_validator(mode="after")
    def _every_day(self) -> WeeklyPlan:
        missing = [d for d in WEEKDAYS if d not in self.days]
        if missing:
            raise ValueError(f"the weekly plan has no entry for {', '.join(missing)}")
        return self


class Schedules(BaseModel):
    model_config = ConfigDict(extra="forbid")
    daily: DailyPlan
    weekly: WeeklyPlan


@dataclass
class TemplateLibrary:
    """Every template by category (sorted by name) and the schedules."""

    folder: Path
    templates: dict[str, list[Template]] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    schedules: Schedules | None = None

    @property
    def categories(self) -> list[str]:
        return sorted(self.templates)

    def by_category(self, category: str) -> list[Template]:
        """Templates of ``category``; TemplateError when there are none."""
        found = self.templates.get(category)
        if not found:
            raise TemplateError(f"no template in category {category!r} under {self.folder} (have: {', '.join(self.categories)})")
        return found

    def get(self, name: str) -> Template:
        for group in self.templates.values():
            for template in group:
                if template.name == name:
                    return template
        names = sorted(t.name for group in self.templates.values() for t in group)
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else f"known: {', '.join(names) or 'none'}"
        raise TemplateError(f"no template named {name!r} under {self.folder}; {hint}")

    @classmethod
    def validate(cls, folder: Path, *, providers: Collection[str] | None = None) -> tuple[TemplateLibrary, list[str]]:
        """Load what can be loaded; return the library and every problem found. ``providers``:
        the known provider names a template's ``provider`` pin must be one of (the entry
        points pass the registry's; None: pins are not checked against a list)."""
        library = cls(folder=folder)
        problems: list[str] = []
        if not folder.is_dir():
            return library, [f"{folder}: templates folder not found"]
        for path in sorted(folder.glob("*/*.y*ml")):
            try:
                _inside(path, folder)
                template = load_template(path)
            except TemplateError as exc:
                problems.append(str(exc))
                continue
            if template.name in library.files:
                problems.append(f"{path}: field 'name' = {template.name!r}: also used by {library.files[template.name]}")
                continue
            pin_problems = _check_pins(template, path, folder, providers)
            if pin_problems:
                problems.extend(pin_problems)
                continue
            library.files[template.name] = path
            library.templates.setdefault(template.category, []).append(template)
        for group in library.templates.values():
            group.sort(key=lambda t: t.name)
        schedules_path = folder / "schedules.yaml"
        if schedules_path.exists():
            try:
                library.schedules = load_schedules(schedules_path)
            except TemplateError as exc:
                problems.append(str(exc))
            else:
                problems.extend(_check_categories(library, schedules_path))
        else:
            problems.append(f"{schedules_path}: schedules file not found")
        return library, problems

    @classmethod
    def load(cls, folder: Path, *, providers: Collection[str] | None = None) -> TemplateLibrary:
        """The validated library (see ``validate``); TemplateError listing every problem."""
        library, problems = cls.validate(folder, providers=providers)
        if problems:
            raise TemplateError("\n".join(problems))
        return library


def _inside(path: Path, folder: Path) -> None:
    """TemplateError when ``path`` is a symlink resolving outside ``folder``."""
    if path.is_symlink() and not path.resolve().is_relative_to(folder.resolve()):
        raise TemplateError(f"{path}: a symlink to {path.resolve()}, outside the templates folder {folder.resolve()}")


def load_template(path: Path) -> Template:
    """Parse one template file; its category must match its folder's name."""
    data, locate = load_yaml(path, error=TemplateError)
    if not isinstance(data, dict):
        raise TemplateError(f"{path}:1: a template must be a mapping of fields, not {type(data).__name__}")
    data.setdefault("category", path.parent.name)
    try:
        template = Template.model_validate(data)
    except ValidationError as exc:
        raise TemplateError(format_validation_error(exc, source=str(path), locate=locate)) from None
    if template.category != path.parent.name:
        raise TemplateError(f"{path}:{locate(('category',))}: field 'category' = {template.category!r} does not match its folder {path.parent.name!r}")
    return template


def resolve_reference(value: str, folder: Path) -> str:
    """A template's ``reference_image`` / ``mask``: an https URL as it is, or the absolute
    path of a file inside ``folder`` (TemplateError when it leaves the folder or is missing)."""
    if value.startswith("https://"):
        return value
    root = folder.resolve()
    target = (root / value).resolve()
    if not target.is_relative_to(root):
        raise TemplateError(f"{value[:80]!r} is outside the templates folder {root}")
    if not target.is_file():
        raise TemplateError(f"{value[:80]!r}: no such file under {root}")
    return str(target)


#: The largest reference image or mask file a template may name (bytes) and picture (pixels).
MAX_REFERENCE_BYTES = 20 * 1024 * 1024
MAX_REFERENCE_PIXELS = 40_000_000


def check_reference_bounds(path: str) -> None:
    """TemplateError when the reference file ``path`` is over ``MAX_REFERENCE_BYTES`` or its
    picture over ``MAX_REFERENCE_PIXELS``; only the image header is read (Pillow's lazy
    ``Image.open``, https://pillow.readthedocs.io/en/stable/reference/Image.html#PIL.Image.open).
    A file Pillow does not recognise is left to the run, which says so for the image."""

    size = Path(path).stat().st_size
    if size > MAX_REFERENCE_BYTES:
        raise TemplateError(f"{path}: {size} bytes is over the {MAX_REFERENCE_BYTES}-byte limit of a reference file")
    try:
        with Image.open(path) as image:
            width, height = image.size
    except Image.DecompressionBombError:
        width, height = MAX_REFERENCE_PIXELS + 1, 1
    except (UnidentifiedImageError, OSError, ValueError):
        return
    if width * height > MAX_REFERENCE_PIXELS:
        raise TemplateError(f"{path}: {width}x{height} pixels is over the {MAX_REFERENCE_PIXELS}-pixel limit of a reference image")


def _check_pins(template: Template, path: Path, folder: Path, providers: Collection[str] | None) -> list[str]:
    """Problems with a template's provider pin, reference, control and style image files (one line each)."""
    problems = []
    if template.provider and providers is not None and template.provider not in providers:
        problems.append(f"{path}: field 'provider' = {template.provider!r}: unknown provider (known: {', '.join(sorted(providers))})")
    files = [(name, getattr(template, name)) for name in ("reference_image", "mask")]
    files += [(f"controlnet[{i}].image", unit.image) for i, unit in enumerate(template.controlnet)]
    if template.ip_adapter:
        files.append(("ip_adapter.image", template.ip_adapter.image))
    for name, value in files:
        if value:
            try:
                resolved = resolve_reference(value, folder)
                if not resolved.startswith("https://"):
                    check_reference_bounds(resolved)
            except TemplateError as exc:
                problems.append(f"{path}: field {name!r} = {exc}")
    return problems


def load_schedules(path: Path) -> Schedules:
    data, locate = load_yaml(path, error=TemplateError)
    try:
        return Schedules.model_validate(data)
    except ValidationError as exc:
        raise TemplateError(format_validation_error(exc, source=str(path), locate=locate)) from None


def _check_categories(library: TemplateLibrary, path: Path) -> list[str]:
    assert library.schedules is not None
    problems = []
    used = [(f"daily.slots.{i}.category", s.category) for i, s in enumerate(library.schedules.daily.slots)]
    for day, entries in library.schedules.weekly.days.items():
        used += [(f"weekly.days.{day}.{i}.category", e.category) for i, e in enumerate(entries)]
    if library.schedules.weekly.weekend_special:
        used.append(("weekly.weekend_special.category", library.schedules.weekly.weekend_special.category))
    for where, category in used:
        if category not in library.templates:
            problems.append(f"{path}: field {where!r} = {category!r}: no templates in that category")
    return problems
