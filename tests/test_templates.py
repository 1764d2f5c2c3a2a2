"""Templates and schedules: the shipped ones are valid; malformed ones are named precisely."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from domain.model import ImageSlot, Quality
from domain.errors import TemplateError
from domain.templates import TemplateLibrary, load_template
from generation.plan import plan_daily, plan_weekly
from generation.select import select_template
from generation.variations import create_variation

ROOT = Path(__file__).resolve().parent.parent / "templates"


@pytest.fixture
def library_copy(tmp_path: Path) -> Path:
    target = tmp_path / "templates"
    shutil.copytree(ROOT, target)
    return target


def test_shipped_templates_are_valid() -> None:
    library = TemplateLibrary.load(ROOT)
    assert len(library.categories) >= 4
    assert all(len(library.by_category(c)) >= 2 for c in library.categories)
    assert library.schedules is not None
    assert all("06:00" <= s.time < "08:00" for s in library.schedules.daily.slots)


def test_validate_command_ok(make_config) -> None:  # type: ignore[no-untyped-def]
    make_config()
    result = CliRunner().invoke(app, ["templates", "validate"])
    assert result.exit_code == 0, result.output
    assert "templates in 4 categories" in result.output


def test_malformed_yaml_names_file_and_line(library_copy: Path) -> None:
    bad = library_copy / "food" / "broken.yaml"
    bad.write_text('name: broken\nprompt: "unterminated\n  tags: [a\n')
    _, problems = TemplateLibrary.validate(library_copy)
    assert any(str(bad) in p and "invalid YAML" in p for p in problems), problems


def test_impossible_size_names_file_field_and_value(library_copy: Path) -> None:
    bad = library_copy / "food" / "huge.yaml"
    bad.write_text("name: huge\nprompt: a bowl of soup\nparameters:\n  width: 100000\n  height: 1024\n")
    with pytest.raises(TemplateError) as info:
        load_template(bad)
    message = str(info.value)
    assert f"{bad}:4" in message and "parameters.width" in message and "100000" in message


def test_unknown_field_and_wrong_folder(library_copy: Path) -> None:
    bad = library_copy / "food" / "typo.yaml"
    bad.write_text("name: typo\nprompt: a bowl of soup\nnegative_promt: blurry\n")
    with pytest.raises(TemplateError, match=r"typo.yaml:3: unknown key 'negative_promt'"):
        load_template(bad)
    moved = library_copy / "food" / "moved.yaml"
    moved.write_text("name: moved\ncategory: products\nprompt: a bowl of soup\n")
    with pytest.raises(TemplateError, match=r"moved.yaml:2: field 'category' = 'products' does not match"):
        load_template(moved)


def test_validate_command_reports_every_problem(library_copy: Path, make_config) -> None:  # type: ignore[no-untyped-def]
    (library_copy / "food" / "a.yaml").write_text("name: a\nprompt: soup {hot|}\n")
    (library_copy / "food" / "b.yaml").write_text("name: b\nprompt: soup\nparameters: {quality: mega}\n")
    make_config(templates_dir=str(library_copy))
    result = CliRunner().invoke(app, ["templates", "validate"])
    assert result.exit_code == 2
    assert "a.yaml" in result.output and "empty wildcard" in result.output
    assert "b.yaml:3" in result.output and "parameters.quality" in result.output and "mega" in result.output


def test_schedule_slot_outside_window(library_copy: Path) -> None:
    path = library_copy / "schedules.yaml"
    path.write_text(path.read_text().replace('time: "07:30"', 'time: "09:15"'))
    _, problems = TemplateLibrary.validate(library_copy)
    assert any("schedules.yaml" in p and "09:15" in p and "outside the window" in p for p in problems), problems


def test_schedule_unknown_category(library_copy: Path) -> None:
    path = library_copy / "schedules.yaml"
    path.write_text(path.read_text().replace("tuesday:   [{category: food", "tuesday:   [{category: fashion"))
    _, problems = TemplateLibrary.validate(library_copy)
    assert any("weekly.days.tuesday.0.category" in p and "fashion" in p for p in problems), problems


def test_variations_are_deterministic_and_expand_wildcards() -> None:
    library = TemplateLibrary.load(ROOT)
    template = library.get("ceramic-mug")
    slot = ImageSlot("daily", date(2026, 11, 21), "0600-products", 0, "products", quality=Quality.ultra_hd)
    first, again = create_variation(template, slot), create_variation(template, slot)
    assert first == again
    assert "{" not in first.request.prompt and "|" not in first.request.prompt
    assert first.request.num_inference_steps == 70 and first.request.guidance_scale == 9.5
    other = create_variation(template, ImageSlot("daily", date(2026, 11, 21), "0600-products", 1, "products"))
    assert other.request.seed != first.request.seed
    seeds = {create_variation(template, ImageSlot("daily", date(2026, 11, d), "s", 0, "products")).request.prompt for d in range(1, 29)}
    assert len(seeds) > 5  # wildcards and styles really vary


def test_rotation_never_repeats_on_consecutive_days() -> None:
    library = TemplateLibrary.load(ROOT)
    for category in library.categories:
        picks = [select_template(library, ImageSlot("daily", date(2026, 1, 1) + timedelta(days=d), f"s-{category}", 0, category)).name for d in range(30)]
        assert all(a != b for a, b in zip(picks, picks[1:])), (category, picks)


def test_weekly_plan_lighter_sunday_and_weekend_special() -> None:
    schedules = TemplateLibrary.load(ROOT).schedules
    assert schedules is not None
    week = {d: plan_weekly(schedules, date(2026, 11, 16) + timedelta(days=d)) for d in range(7)}  # Mon..Sun
    sunday_regular = [s for s in week[6] if "special" not in s.slot]
    assert len(sunday_regular) < min(len(week[d]) for d in range(6))
    assert any("weekend-special" in s.extra_tags for s in week[5]) and any("weekend-special" in s.extra_tags for s in week[6])
    assert not any("weekend-special" in s.extra_tags for d in range(5) for s in week[d])
    daily = plan_daily(schedules, date(2026, 11, 21))
    assert len({s.idempotency_key for s in daily}) == len(daily) == sum(s.count for s in schedules.daily.slots)
