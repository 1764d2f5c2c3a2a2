"""The weekly report's steps: write it (figures, charts, contact sheet, artifacts), send it."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from domain.log import get_logger
from reporting.alerts import send_apprise
from reporting.artifacts import publish_report_artifacts
from reporting.report import contact_sheet_data_uri, period, report_period, sheet_link, write_report
from storage.db import AlertRecord
from wiring.runtime import Runtime
from storage import queries


@task(name="write-report", cache_policy=NO_CACHE)
def write_report_task(rt: Runtime, until: date | None, days: int, client: str | None = None) -> dict[str, Any]:
    """Write the report of the ``days`` days ending ``until`` (figures, charts, contact sheet;
    of ``client``'s images only, when given) and publish it as artifacts; returns its summary
    (text with the per-client table, files, counts, USD, sheet URL, client)."""
    start, end = period(None, until, days=days)
    first, last = report_period(until, days)
    folder = rt.settings.output_dir / "reports" / (f"{first}_{last}" + (f"_{client}" if client else ""))
    report, files = write_report(rt.db, rt.store, start, end, folder, daily_cap_usd=rt.settings.budget.daily_usd, client=client)
    sheet = next(p for p in files if p.suffix == ".html")
    summary = {
        "text": report.text(),
        "files": [str(p) for p in files],
        "images": len(report.images),
        "cost_usd": round(report.total_cost, 4),
        "since": first,
        "last_day": last,
        "sheet_url": sheet_link(rt.store, sheet, folder.name),
        "client": client,
    }
    # a local store's sheet is no link a browser opens from the UI: the artifact shows it inlined
    link = str(summary["sheet_url"])
    preview = None if link.startswith(("https://", "http://")) else contact_sheet_data_uri(report, rt.db, rt.store)
    publish_report_artifacts(summary, report.rows(), preview=preview)
    return summary


@task(name="send-report", cache_policy=NO_CACHE)
def send_report_task(rt: Runtime, summary: dict[str, Any]) -> bool:
    """Send the summary with the PNG charts attached to every Apprise URL; store that it was sent."""
    files = [Path(p) for p in summary["files"]]
    charts = [p for p in files if p.suffix == ".png"]
    client = summary.get("client")
    whose = f" for client {client}" if client else ""
    title = f"content-pipeline weekly report{whose} {summary['since']} to {summary['last_day']}: {summary['images']} images, USD {summary['cost_usd']:.2f}"
    body = f"{summary['text']}\n\nCharts attached; contact sheet: {summary['sheet_url']}"
    urls = rt.secrets.apprise_url_list()
    owner = rt.settings.clients.get(client)
    if owner is not None:  # a client's report goes to its alert targets too
        urls += [u for u in owner.apprise_urls() if u not in urls]
    delivered = send_apprise(urls, title, body, attachments=charts)
    if not urls:
        get_logger().warning("weekly report (no Apprise URL configured):\n%s", body)
    queries.add_alert(rt.db, AlertRecord(rule="weekly-report", scope=str(summary["since"]), title=title, message=body, delivered=delivered))
    return delivered
