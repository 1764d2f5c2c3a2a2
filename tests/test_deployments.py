"""The served deployments: cron schedules in the configured timezone, typed parameters."""

from __future__ import annotations

from config.settings import load_settings


def test_serve_builds_scheduled_deployments(make_config) -> None:  # type: ignore[no-untyped-def]
    from deployments.serve import build_deployments

    settings = load_settings(make_config(timezone="Europe/Paris"))
    deployments = {d.name: d for d in build_deployments(settings)}
    assert set(deployments) == {"daily", "weekly", "adhoc", "weekly-report", "flow-failed-alert", "reserve"}
    assert deployments["reserve"]._parameter_openapi_schema.properties["category"]["enum"] == ["architecture", "food", "landscapes", "products"]
    report = deployments["weekly-report"].schedules[0].schedule
    assert (report.cron, report.timezone) == ("0 8 * * 1", "Europe/Paris")
    daily = deployments["daily"].schedules[0].schedule
    assert (daily.cron, daily.timezone) == ("0 6 * * *", "Europe/Paris")
    weekly = deployments["weekly"].schedules[0].schedule
    assert (weekly.cron, weekly.timezone) == ("0 9 * * *", "Europe/Paris")
    assert not deployments["adhoc"].schedules
    assert deployments["daily"].concurrency_limit == 1


def test_flow_parameters_render_as_a_typed_form() -> None:
    from flows.adhoc import generate
    from flows.daily import daily_content

    schema = generate.parameters.model_dump()
    props = schema["properties"]
    assert props["count"]["minimum"] == 1 and props["count"]["maximum"] == 50
    definitions = schema["definitions"]
    assert definitions["Quality"]["enum"] == ["standard", "hd", "ultra-hd"]
    assert definitions["ImageFormat"]["enum"] == ["square", "portrait", "landscape"]
    assert schema["required"] == ["template"]
    run_date = daily_content.parameters.model_dump()["properties"]["run_date"]
    assert run_date["type"] == "string" and run_date["default"] == "" and "YYYY-MM-DD" in run_date["description"]


def test_no_run_form_offers_a_none_toggle(make_config) -> None:  # type: ignore[no-untyped-def]
    """A parameter typed ``X | None`` is an ``anyOf [X, null]`` the Prefect UI shows as a
    "X | None" toggle with "Property is type None": every deployment's parameters have a
    plain type and a default instead."""
    import json

    from deployments.serve import build_deployments
    from flows.review import regenerate_image

    schemas = {d.name: d._parameter_openapi_schema.model_dump() for d in build_deployments(load_settings(make_config()))}
    schemas["regenerate"] = regenerate_image.parameters.model_dump()
    for name, schema in schemas.items():
        for key, prop in schema["properties"].items():
            assert "anyOf" not in prop and '"null"' not in json.dumps(prop), (name, key, prop)
            assert key in schema.get("required", []) or prop.get("default") is not None, (name, key, prop)
