"""The daily flow: the morning window's slots (templates/schedules.yaml ``daily``)."""

from __future__ import annotations

from datetime import date

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from tasks.plan import local_today
from tasks.pipeline import RunSummary, run_images
from tasks.plan import plan_daily
from tasks.alerts import flow_failure_hook
from tasks.runtime import get_runtime


@flow(name="daily-content", task_runner=ThreadPoolTaskRunner(max_workers=16), flow_run_name="daily-{run_date}",
      on_failure=[flow_failure_hook], on_crashed=[flow_failure_hook])
def daily_content(run_date: date | None = None) -> RunSummary:
    """Make the daily batch for ``run_date`` (default: today in the configured timezone).

    Re-running a date resumes it: images already made are neither paid for nor stored again.
    """
    rt = get_runtime()
    day = run_date or local_today(rt.settings.timezone)
    assert rt.library.schedules is not None
    return run_images("daily", plan_daily(rt.library.schedules, day))
