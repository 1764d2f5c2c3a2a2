"""The weekly flow: runs every day with that weekday's entry of the weekly plan."""

from __future__ import annotations


from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from flows.hooks import flow_failure_hook
from flows.parameters import DayText, dated_run_name, day_or
from flows.run import current_trigger, image_run, produce_images, review_and_publish, select_templates, summarise
from generation.plan import local_today, plan_weekly
from reporting.summary import RunSummary
from tasks.plan import plan_images_task
from wiring.runtime import get_runtime


@flow(
    name="weekly-content",
    task_runner=ThreadPoolTaskRunner(max_workers=16),  # type: ignore[arg-type]  # Prefect's generic default
    flow_run_name=dated_run_name("weekly"),
    on_failure=[flow_failure_hook],
    on_crashed=[flow_failure_hook],
)
def weekly_content(run_date: DayText = "", categories: tuple[str, ...] = (), retry_failed: bool = False) -> RunSummary:
    """Make ``run_date``'s images of the weekly plan (lighter Sunday, weekend special).

    ``categories`` keeps only the slots of those categories (default: every slot);
    an unknown category raises TemplateError before any image is planned.

    The run ends Completed only when every planned image is done as real content;
    otherwise Failed, with a message counting the others (flows.run.summarise).

    Args:
        run_date: The day to make, YYYY-MM-DD (empty: today in the configured timezone).
        categories: Only the slots of these categories (empty: every slot).
        retry_failed: Also retry slots that failed for good (rejected, out of attempts) or were skipped by the budget.
    """
    rt = get_runtime()
    day = day_or(run_date, local_today(rt.settings.timezone))
    with image_run(rt) as run_key:  # what dead runs left is closed first
        slots = select_templates(rt, plan_weekly, day, categories)  # that weekday's plan: a template per slot
        pks = plan_images_task(rt, slots, current_trigger())  # a variation per slot, recorded before any money is spent
        produce_images(rt, "weekly", pks, run_key, retry_failed)  # generate, post-process, tag, upload, record
        rows = review_and_publish(rt, pks, run_key, retry_failed)  # publish, or wait for a person's review
    return summarise(rt, "weekly", rows)  # alerts, the summary artifacts, the run's verdict
