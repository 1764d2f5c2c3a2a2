"""The daily flow: the morning window's slots (templates/schedules.yaml ``daily``)."""

from __future__ import annotations

from datetime import date

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from tasks.plan import local_today, plan_daily
from tasks.pipeline import RunSummary, run_images
from flows.parameters import dated_run_name, only_categories
from tasks.alerts import flow_failure_hook
from tasks.runtime import get_runtime


@flow(name="daily-content", task_runner=ThreadPoolTaskRunner(max_workers=16),  # type: ignore[arg-type]  # Prefect's generic default
      flow_run_name=dated_run_name("daily"),
      on_failure=[flow_failure_hook], on_crashed=[flow_failure_hook])
def daily_content(run_date: date | None = None, categories: list[str] | None = None) -> RunSummary:
    """Make the daily batch for ``run_date`` (default: today in the configured timezone).

    ``categories`` keeps only the slots of those categories (default: every slot);
    an unknown category raises TemplateError before any image is planned.
    Re-running a date resumes it: images already made are neither paid for nor stored again.

    Args:
        run_date: The day to make (default: today in the configured timezone).
        categories: Only the slots of these categories (default: every slot).
    """
    rt = get_runtime()
    day = run_date or local_today(rt.settings.timezone)
    assert rt.library.schedules is not None
    return run_images("daily", only_categories(plan_daily(rt.library.schedules, day), categories, rt.library))
