"""Template and category choices added to the deployments' parameter schemas, checked by
the server; the flows check the same values again when run outside a deployment."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import jsonschema
import pytest

from domain.errors import TemplateError
from domain.templates import TemplateLibrary
from deployments.parameters import add_choices, template_choices
from flows.parameters import only_categories
from generation.plan import plan_daily

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def library() -> TemplateLibrary:
    return TemplateLibrary.load(ROOT / "templates")


def test_adhoc_schema_offers_the_templates_and_rejects_others(library: TemplateLibrary) -> None:
    from flows.adhoc import generate

    schema = add_choices(generate.parameters.model_dump(), library)
    assert schema["properties"]["template"]["enum"] == template_choices(library)
    assert "pasta-dish" in template_choices(library) and len(template_choices(library)) == 8
    jsonschema.validate({"template": "pasta-dish", "count": 50, "quality": "ultra-hd", "format": "portrait"}, schema)
    for bad in (
        {"template": "nope"},
        {"template": "pasta-dish", "count": 51},
        {"template": "pasta-dish", "count": 0},
        {"template": "pasta-dish", "format": "panorama"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def test_daily_schema_offers_categories_and_dates(library: TemplateLibrary) -> None:
    from flows.daily import daily_content

    schema = add_choices(daily_content.parameters.model_dump(), library)
    jsonschema.validate({"run_date": "2026-11-21", "categories": ["food", "products"]}, schema)
    jsonschema.validate({}, schema)
    for bad in ({"categories": ["cars"]}, {"run_date": "21/11/2026"}, {"run_date": "2026-13-01"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def test_served_deployments_enforce_the_schema(make_config) -> None:  # type: ignore[no-untyped-def]
    from config.settings import load_settings
    from deployments.serve import build_deployments

    deployments = {d.name: d for d in build_deployments(load_settings(make_config()))}
    for deployment in deployments.values():
        assert deployment.enforce_parameter_schema is True
    assert "sneaker" in deployments["adhoc"]._parameter_openapi_schema.properties["template"]["enum"]
    for name in ("daily", "weekly"):
        properties = deployments[name]._parameter_openapi_schema.properties
        assert properties["categories"]["items"]["enum"] == ["architecture", "food", "landscapes", "products"]


def test_only_categories_filters_and_names_unknown_ones(library: TemplateLibrary) -> None:
    slots = plan_daily(library.schedules, date(2026, 11, 21))
    assert only_categories(slots, None, library) == slots
    food = only_categories(slots, ["food"], library)
    assert len(food) == 2 and {s.category for s in food} == {"food"}
    with pytest.raises(TemplateError, match="unknown category 'cars'.*have: architecture, food"):
        only_categories(slots, ["cars"], library)
