"""Serve the flows as deployments from one process (no work pool, no worker).

``python -m deployments.serve`` or ``content-pipeline serve``. Needs a Prefect server
(``prefect server start``; PREFECT_API_URL=http://127.0.0.1:4200/api): the ephemeral
server has no scheduler. Schedules use the configured timezone: the daily flow at the
window start (06:00 by default), the weekly flow at ``weekly.time`` every day.
"""

from __future__ import annotations

from typing import Any

from config.settings import Settings, get_settings
from domain.templates import TemplateLibrary
from providers.registry import PROVIDERS
from flows.adhoc import generate
from flows.alerting import flow_failed_alert
from flows.daily import daily_content
from flows.review import reserve_image
from flows.report import weekly_report
from flows.weekly import weekly_content
from deployments.parameters import with_choices
from flows.alerting import ensure_failure_automation


def _cron(hhmm: str) -> str:
    hour, minute = hhmm.split(":")
    return f"{int(minute)} {int(hour)} * * *"


def build_deployments(settings: Settings | None = None) -> list[Any]:
    """The daily, weekly, ad-hoc and weekly-report RunnerDeployments with their cron schedules,
    reserve (on demand, flows/review.py), and flow-failed-alert (run by the failure automation, see flows/alerting.py).

    Their parameter schemas list the templates and categories of ``templates_dir``
    as choices, enforced by the server (deployments/parameters.py).
    """
    from prefect.schedules import Cron  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs

    settings = settings or get_settings()
    library = TemplateLibrary.load(settings.templates_dir, providers=PROVIDERS)
    assert library.schedules is not None
    tz = settings.timezone

    return [
        with_choices(d, library)
        for d in [
            daily_content.to_deployment(
                name="daily",
                schedule=Cron(_cron(library.schedules.daily.window_start), timezone=tz),
                concurrency_limit=1,
                tags=["content-pipeline", "scheduled"],
                description="The morning batch: every slot of templates/schedules.yaml daily.",
            ),
            weekly_content.to_deployment(
                name="weekly",
                schedule=Cron(_cron(library.schedules.weekly.time), timezone=tz),
                concurrency_limit=1,
                tags=["content-pipeline", "scheduled"],
                description="That weekday's entry of the weekly plan.",
            ),
            generate.to_deployment(name="adhoc", tags=["content-pipeline", "adhoc"], description="Ad-hoc images of one template."),
            flow_failed_alert.to_deployment(
                name="flow-failed-alert",
                tags=["content-pipeline-alerts"],
                description="Run by the automation on a failed or crashed content-pipeline flow run: sends the alert.",
            ),
            weekly_report.to_deployment(
                name="weekly-report",
                schedule=Cron("0 8 * * 1", timezone=tz),
                concurrency_limit=1,
                tags=["content-pipeline", "report"],
                description="Last week's figures, charts and contact sheet, sent through Apprise (Mondays 08:00).",
            ),
            reserve_image.to_deployment(
                name="reserve",
                tags=["content-pipeline", "publishing"],
                description="Reserve the best free published image of a category for a post (date, channel); for other systems through Prefect's API.",
            ),
        ]
    ]


def main() -> None:
    from prefect import serve  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs

    deployments = build_deployments()
    alert = next(d for d in deployments if d.name == "flow-failed-alert")
    ensure_failure_automation(alert.apply())  # the automation runs that deployment on a failed/crashed run
    serve(*deployments, pause_on_shutdown=False)


if __name__ == "__main__":
    main()
