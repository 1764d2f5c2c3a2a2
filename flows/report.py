"""The weekly report flow: last week's figures, charts and contact sheet, published as
Prefect artifacts and sent through Apprise.

The run is named after its period (``report-2026-11-16-to-2026-11-22``). Artifacts:
``weekly-report`` (the table, one row per provider and model), ``weekly-report-charts``
(the PNG charts inlined in markdown, so the UI shows them) and
``weekly-report-contact-sheet`` (a link to the contact sheet: presigned on S3, where the
page is uploaded next to the images; the local path otherwise).
"""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow
from prefect.runtime import flow_run
from pydantic import Field

from flows.hooks import flow_failure_hook
from flows.parameters import DayText, optional_day
from reporting.report import report_period
from tasks.report import send_report_task, write_report_task
from wiring.runtime import get_runtime


def report_run_name() -> str:
    """``report-<first day>-to-<last day>``: the flow run's name, from its parameters."""
    parameters = flow_run.parameters or {}
    first, last = report_period(parameters.get("until"), parameters.get("days", 7))
    return f"report-{first}-to-{last}"


@flow(name="weekly-report", flow_run_name=report_run_name, on_failure=[flow_failure_hook], on_crashed=[flow_failure_hook])
def weekly_report(until: DayText = "", days: Annotated[int, Field(ge=1, le=366)] = 7, client: Annotated[str, Field(max_length=30)] = "") -> dict[str, Any]:
    """Report the ``days`` days ending ``until`` (default today, UTC): publish the table (with
    its per-client breakdown), charts and contact-sheet link as artifacts, and send it through
    Apprise (a client's report to the client's alert targets too).

    Args:
        until: The last day of the period, included, YYYY-MM-DD (empty: today, UTC).
        days: How many days the period covers (default 7).
        client: Only this client's images and calls (a name under ``clients`` in the
            configuration); empty: every client.
    """
    rt = get_runtime()
    if client and rt.settings.clients.get(client) is None:
        raise ValueError(f"client {client!r} is not configured (clients: {', '.join(rt.settings.clients.names()) or 'none'})")
    summary = write_report_task(rt, optional_day(until), days, client or None)  # the figures, charts and contact sheet, published as artifacts
    summary["delivered"] = send_report_task(rt, summary)  # sent through Apprise, recorded
    return summary
