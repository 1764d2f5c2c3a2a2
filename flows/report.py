"""The weekly report flow: last week's figures, charts and contact sheet, sent through Apprise."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from core.log import get_logger
from storage.db import AlertRecord
from tasks.alerts import flow_failure_hook, send_apprise
from tasks.report import period, write_report
from tasks.runtime import get_runtime


@task(name="write-report", cache_policy=NO_CACHE)
def write_report_task(until: date | None, days: int) -> dict[str, Any]:
    rt = get_runtime()
    start, end = period(None, until, days=days)
    folder = rt.settings.output_dir / "reports" / f"{start:%Y-%m-%d}_{days}d"
    report, files = write_report(rt.db, rt.store, start, end, folder)
    return {"text": report.text(), "files": [str(p) for p in files], "images": len(report.images),
            "cost_usd": round(report.total_cost, 4), "since": f"{start:%Y-%m-%d}"}


@task(name="send-report", cache_policy=NO_CACHE)
def send_report_task(summary: dict[str, Any]) -> bool:
    """Send the summary with the PNG charts attached to every Apprise URL; store that it was sent."""
    rt = get_runtime()
    files = [Path(p) for p in summary["files"]]
    charts = [p for p in files if p.suffix == ".png"]
    sheet = next(p for p in files if p.suffix == ".html")
    title = (f"content-pipeline weekly report from {summary['since']}: {summary['images']} images, "
             f"USD {summary['cost_usd']:.2f}")
    body = f"{summary['text']}\n\nCharts attached; contact sheet: {sheet}"
    urls = rt.secrets.apprise_url_list()
    delivered = send_apprise(urls, title, body, attachments=charts)
    if not urls:
        get_logger().warning("weekly report (no Apprise URL configured):\n%s", body)
    rt.db.add_alert(AlertRecord(rule="weekly-report", scope=str(summary["since"]), title=title, message=body,
                                delivered=delivered))
    return delivered


@flow(name="weekly-report", flow_run_name="report-{until}", on_failure=[flow_failure_hook], on_crashed=[flow_failure_hook])
def weekly_report(until: date | None = None, days: int = 7) -> dict[str, Any]:
    """Report the ``days`` days ending ``until`` (default today, UTC) and send it."""
    summary = write_report_task(until, days)
    summary["delivered"] = send_report_task(summary)
    return summary
