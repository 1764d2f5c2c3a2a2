"""The weekly flow: runs every day with that weekday's entry of the weekly plan."""

from __future__ import annotations

from datetime import date

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from flows.parameters import dated_run_name
from flows.scheduled import run_schedule
from tasks.alerts import flow_failure_hook
from tasks.pipeline import RunSummary
from tasks.plan import plan_weekly


@flow(name="weekly-content", task_runner=ThreadPoolTaskRunner(max_workers=16),  # type: ignore[arg-type]  # Prefect's generic default
      flow_run_name=dated_run_name("weekly"),
      on_failure=[flow_failure_hook], on_crashed=[flow_failure_hook])
def weekly_content(run_date: date | None = None, categories: list[str] | None = None,
                  retry_failed: bool = False) -> RunSummary:
    """Make ``run_date``'s images of the weekly plan (lighter Sunday, weekend special).

    ``categories`` keeps only the slots of those categories (default: every slot);
    an unknown category raises TemplateError before any image is planned.

    The run ends Completed only when every planned image is done as real content;
    otherwise Failed, with a message counting the others (tasks.pipeline.run_images).

    Args:
        run_date: The day to make (default: today in the configured timezone).
        categories: Only the slots of these categories (default: every slot).
        retry_failed: Also retry slots that failed for good (rejected, out of attempts) or were skipped by the budget.
    """
    return run_schedule("weekly", plan_weekly, run_date, categories, retry_failed)
