"""The weekly flow: runs every day with that weekday's entry of the weekly plan."""

from __future__ import annotations

from datetime import date

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from tasks.plan import local_today, plan_weekly
from tasks.pipeline import RunSummary, run_images
from flows.parameters import dated_run_name, only_categories
from tasks.alerts import flow_failure_hook
from tasks.runtime import get_runtime


@flow(name="weekly-content", task_runner=ThreadPoolTaskRunner(max_workers=16),  # type: ignore[arg-type]  # Prefect's generic default
      flow_run_name=dated_run_name("weekly"),
      on_failure=[flow_failure_hook], on_crashed=[flow_failure_hook])
def weekly_content(run_date: date | None = None, categories: list[str] | None = None) -> RunSummary:
    """Make ``run_date``'s images of the weekly plan (lighter Sunday, weekend special).

    ``categories`` keeps only the slots of those categories (default: every slot);
    an unknown category raises TemplateError before any image is planned.

    Args:
        run_date: The day to make (default: today in the configured timezone).
        categories: Only the slots of these categories (default: every slot).
    """
    rt = get_runtime()
    day = run_date or local_today(rt.settings.timezone)
    assert rt.library.schedules is not None
    return run_images("weekly", only_categories(plan_weekly(rt.library.schedules, day), categories, rt.library))
