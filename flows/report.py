"""The weekly report flow: last week's figures, charts and contact sheet, published as
Prefect artifacts and sent through Apprise.

The run is named after its period (``report-2026-11-16-to-2026-11-22``). Artifacts:
``weekly-report`` (the table, one row per provider and model), ``weekly-report-charts``
(the PNG charts inlined in markdown, so the UI shows them) and
``weekly-report-contact-sheet`` (a link to the contact sheet: presigned on S3, where the
page is uploaded next to the images; the local path otherwise).
"""

from __future__ import annotations

import base64
import hashlib
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from pydantic import Field

from core.log import get_logger
from storage.db import AlertRecord
from tasks.alerts import flow_failure_hook, send_apprise
from tasks.report import period, write_report
from tasks.runtime import get_runtime


def _as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def report_period(until: Any, days: Any) -> tuple[str, str]:
    """The first and last day (``YYYY-MM-DD``, UTC) a report of ``days`` days ending ``until`` covers."""
    start, end = period(None, _as_date(until), days=int(days or 7))
    from datetime import timedelta

    return f"{start:%Y-%m-%d}", f"{(end - timedelta(days=1)):%Y-%m-%d}"


def report_run_name() -> str:
    """``report-<first day>-to-<last day>``: the flow run's name, from its parameters."""
    from prefect.runtime import flow_run

    parameters = flow_run.parameters or {}
    first, last = report_period(parameters.get("until"), parameters.get("days", 7))
    return f"report-{first}-to-{last}"


def _sheet_link(sheet: Path, folder_name: str) -> str:
    """A URL for the contact sheet: on an S3 store the page is stored under
    ``reports/<folder>/`` and presigned; on a local store its ``file://`` URL."""
    from storage.objects import LocalStore

    rt = get_runtime()
    if isinstance(rt.store, LocalStore):
        return sheet.resolve().as_uri()
    data = sheet.read_bytes()
    key = f"reports/{folder_name}/index-{hashlib.sha256(data).hexdigest()[:12]}.html"
    rt.store.put(key, data, content_type="text/html; charset=utf-8")
    return rt.store.presigned_url(key)


def publish_report_artifacts(summary: dict[str, Any], rows: list[dict[str, str]]) -> None:
    """The report's table, charts and contact-sheet link as artifacts of the current run."""
    from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

    words = (f"{summary['since']} to {summary['last_day']} (UTC): {summary['images']} images, "
             f"USD {summary['cost_usd']:.2f}")
    create_table_artifact(key="weekly-report", table=rows or [{"provider": "-", "model": "no provider calls"}],
                          description=f"Per provider and model, {words}")
    charts = [Path(p) for p in summary["files"] if p.endswith(".png")]
    markdown = [f"# Weekly report, {words}", ""]
    for chart in charts:
        encoded = base64.b64encode(chart.read_bytes()).decode("ascii")
        markdown += [f"## {chart.stem.replace('-', ' ')}", "", f"![{chart.stem}](data:image/png;base64,{encoded})", ""]
    create_markdown_artifact(key="weekly-report-charts", markdown="\n".join(markdown), description=f"Charts, {words}")
    create_link_artifact(key="weekly-report-contact-sheet", link=summary["sheet_url"],
                         link_text=f"contact sheet {summary['since']} to {summary['last_day']}",
                         description=f"Every image of {words}")


@task(name="write-report", cache_policy=NO_CACHE)
def write_report_task(until: date | None, days: int) -> dict[str, Any]:
    rt = get_runtime()
    start, end = period(None, until, days=days)
    first, last = report_period(until, days)
    folder = rt.settings.output_dir / "reports" / f"{first}_{last}"
    report, files = write_report(rt.db, rt.store, start, end, folder, daily_cap_usd=rt.settings.budget.daily_usd)
    sheet = next(p for p in files if p.suffix == ".html")
    summary = {"text": report.text(), "files": [str(p) for p in files], "images": len(report.images),
               "cost_usd": round(report.total_cost, 4), "since": first, "last_day": last,
               "sheet_url": _sheet_link(sheet, folder.name)}
    publish_report_artifacts(summary, report.rows())
    return summary


@task(name="send-report", cache_policy=NO_CACHE)
def send_report_task(summary: dict[str, Any]) -> bool:
    """Send the summary with the PNG charts attached to every Apprise URL; store that it was sent."""
    rt = get_runtime()
    files = [Path(p) for p in summary["files"]]
    charts = [p for p in files if p.suffix == ".png"]
    title = (f"content-pipeline weekly report {summary['since']} to {summary['last_day']}: {summary['images']} images, "
             f"USD {summary['cost_usd']:.2f}")
    body = f"{summary['text']}\n\nCharts attached; contact sheet: {summary['sheet_url']}"
    urls = rt.secrets.apprise_url_list()
    delivered = send_apprise(urls, title, body, attachments=charts)
    if not urls:
        get_logger().warning("weekly report (no Apprise URL configured):\n%s", body)
    rt.db.add_alert(AlertRecord(rule="weekly-report", scope=str(summary["since"]), title=title, message=body,
                                delivered=delivered))
    return delivered


@flow(name="weekly-report", flow_run_name=report_run_name, on_failure=[flow_failure_hook], on_crashed=[flow_failure_hook])
def weekly_report(until: date | None = None, days: Annotated[int, Field(ge=1, le=366)] = 7) -> dict[str, Any]:
    """Report the ``days`` days ending ``until`` (default today, UTC): publish the table,
    charts and contact-sheet link as artifacts, and send it through Apprise.

    Args:
        until: The last day of the period, included (default: today, UTC).
        days: How many days the period covers (default 7).
    """
    summary = write_report_task(until, days)
    summary["delivered"] = send_report_task(summary)
    return summary
