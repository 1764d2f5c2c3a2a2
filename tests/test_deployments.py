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
    assert any(option.get("format") == "date" for option in run_date.get("anyOf", [run_date]))
