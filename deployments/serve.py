"""Serve the flows as deployments from one process (no work pool, no worker).

``python -m deployments.serve`` or ``content-pipeline serve``. Needs a Prefect server
(``prefect server start``; PREFECT_API_URL=http://127.0.0.1:4200/api): the ephemeral
server has no scheduler. Schedules use the configured timezone: the daily flow at the
window start (06:00 by default), the weekly flow at ``weekly.time`` every day.
"""

from __future__ import annotations

from typing import Any

from core.settings import Settings, get_settings
from core.templates import TemplateLibrary


def _cron(hhmm: str) -> str:
    hour, minute = hhmm.split(":")
    return f"{int(minute)} {int(hour)} * * *"


def build_deployments(settings: Settings | None = None) -> list[Any]:
    """The daily, weekly, ad-hoc and weekly-report RunnerDeployments with their cron schedules."""
    from prefect.schedules import Cron

    from flows.adhoc import generate
    from flows.daily import daily_content
    from flows.report import weekly_report
    from flows.weekly import weekly_content

    settings = settings or get_settings()
    library = TemplateLibrary.load(settings.templates_dir)
    assert library.schedules is not None
    tz = settings.timezone
    return [
        daily_content.to_deployment(
            name="daily", schedule=Cron(_cron(library.schedules.daily.window_start), timezone=tz),
            concurrency_limit=1, tags=["content-pipeline", "scheduled"],
            description="The morning batch: every slot of templates/schedules.yaml daily.",
        ),
        weekly_content.to_deployment(
            name="weekly", schedule=Cron(_cron(library.schedules.weekly.time), timezone=tz),
            concurrency_limit=1, tags=["content-pipeline", "scheduled"],
            description="That weekday's entry of the weekly plan.",
        ),
        generate.to_deployment(name="adhoc", tags=["content-pipeline", "adhoc"],
                               description="Ad-hoc images of one template."),
        weekly_report.to_deployment(
            name="weekly-report", schedule=Cron("0 8 * * 1", timezone=tz), concurrency_limit=1,
            tags=["content-pipeline", "report"],
            description="Last week's figures, charts and contact sheet, sent through Apprise (Mondays 08:00).",
        ),
    ]


def main() -> None:
    from prefect import serve

    serve(*build_deployments(), pause_on_shutdown=False)


if __name__ == "__main__":
    main()
