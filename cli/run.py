"""``content-pipeline run daily|weekly|adhoc``: a flow run in this process, with a progress bar, the
summary table and the verdict; the Prefect server it runs against (an answering one, one
started in the background once, or a temporary one)."""

from __future__ import annotations


import logging
import os
import threading
import uuid
from datetime import date
from typing import Annotated, Any

import httpx
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from domain.model import ImageFormat, Quality
from domain.errors import DatabaseUnavailableError, TemplateError
from providers.registry import PROVIDERS
from cli.prefect_settings import check_prefect_settings
from cli.server import BackgroundServer, profile_api_url
from cli.common import console, err, error_line, fail, load_settings, parse_day, prefect_api_problem, prefect_defaults, warning_line


run_app = typer.Typer(help="Run a flow now, in this process.", no_args_is_help=True)


def _wait_for_server() -> None:
    """Wait for the background or temporary server started by ``_start_servers``; one
    line saying what to do when it did not start."""
    try:
        if _background_server is not None:
            _background_server.wait()
        if _early_server is not None:
            _early_server.wait()
    except Exception as exc:  # the server did not start
        raise fail(exc, 1) from None


def _run_with_progress(label: str, key_prefix: str, total: int, target: Any) -> Any:
    """Run ``target()`` (a flow called with ``return_state=True``) in a thread while a
    progress bar counts finished rows of ``key_prefix``; print the run's table and return
    its summary, or exit 1 (after printing the table) when the run is not complete."""
    from storage.ledger import ImageLedger  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from reporting.summary import IncompleteRunError  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from wiring.runtime import get_runtime  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    outcome: dict[str, Any] = {}

    def worker() -> None:
        try:
            outcome["state"] = target()
        except BaseException as exc:  # reported below
            outcome["error"] = exc

    thread = threading.Thread(target=worker, daemon=True)
    ledger = ImageLedger(get_runtime().db)
    _wait_for_server()
    quiet_database_faults()
    fault: DatabaseUnavailableError | None = None
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=False) as progress:
        bar = progress.add_task(f"{label} (starting Prefect)", total=total)
        thread.start()
        while thread.is_alive():
            try:
                done = ledger.finished_count(key_prefix)
            except DatabaseUnavailableError as exc:  # lost, locked or gone: the run's tasks meet it too and end
                fault = fault or exc
                thread.join(0.5)
                continue
            progress.update(bar, completed=done, description=label if done else f"{label} (starting Prefect)")
            thread.join(0.5)
    database_fault(outcome, fault)
    if "error" in outcome:
        raise fail(outcome["error"], 1)
    state = outcome["state"]
    if state.is_completed():
        summary = state.result()
        _print_summary(summary)
        return summary
    data = state.result(raise_on_failure=False)
    if isinstance(data, IncompleteRunError):
        _print_summary(data.summary)
        err.print(f"[bold red]not complete:[/] {data}; {_incomplete_advice(data.summary)}", markup=True, highlight=False)
        raise typer.Exit(1)
    raise fail(data if isinstance(data, Exception) else RuntimeError(f"flow run ended {state.type.value}: {state.message}"), 1)


def database_fault(outcome: dict[str, Any], seen: DatabaseUnavailableError | None) -> None:
    """Exit 1 with one line when the run met a database fault (the flow's error, or what the
    progress bar met): nothing else is said, since nothing more could be recorded."""
    error = outcome.get("error")
    state = outcome.get("state")
    if error is None and state is not None and not state.is_completed():
        error = state.result(raise_on_failure=False)
    if isinstance(error, DatabaseUnavailableError):
        raise fail(error, 1)
    if seen is not None:
        raise fail(seen, 1)


class _DatabaseFaultFilter(logging.Filter):
    """Drops the console's records about a database fault (Prefect's "Task run failed" with
    its traceback, once per image in flight): the command line says it in one line."""

    NAMES = ("DatabaseUnavailableError", "DatabaseLostError")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], DatabaseUnavailableError):
            return False
        return not any(name in str(record.msg) or name in record.getMessage() for name in self.NAMES)


def quiet_database_faults() -> None:
    """Add ``_DatabaseFaultFilter`` to every console handler of this process (Prefect's included)."""
    loggers = [logging.getLogger(), *(lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger))]
    for handler in {h for lg in loggers for h in lg.handlers if isinstance(h, logging.StreamHandler)}:
        if not any(isinstance(f, _DatabaseFaultFilter) for f in handler.filters):
            handler.addFilter(_DatabaseFaultFilter())


def _incomplete_advice(summary: Any) -> str:
    """What to do about an incomplete run: with placeholders only (the offline defaults, or no
    real provider answered), how to get real images; otherwise how to retry."""
    missing = [i for i in summary.images if not (i.done or i.decided or i.waiting)]
    if missing and all(i.placeholder or i.status == "placeholder" for i in missing):
        return (
            "placeholders stand in for real images. To get real images, enable a provider in "
            "content-pipeline.yaml (providers.<name>.enabled: true, its name in chain before placeholder) and "
            "set its key in the environment or .env (e.g. STABILITY_API_KEY); check it with "
            "content-pipeline providers check, then run again (only the missing images are made)"
        )
    return "re-run the same command to retry what can be retried (add --retry-failed for the rest)"


def summary_table(summary: Any) -> Table:
    """The run's table: one row per image; its stored key (or error) in full, folded over
    lines when the terminal is narrow."""
    from reporting.summary import outcome_of, summary_words  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    table = Table(title=f"{summary.flow} run: {summary_words(summary.images, summary.cost_usd)}")
    for column in ("image", "template", "provider", "USD", "seconds", "outcome", "stored at / error"):
        # the key in full, folded over lines when narrow (rich's default cuts it with "…")
        table.add_column(column, no_wrap=column != "stored at / error", overflow="fold" if column == "stored at / error" else "ellipsis")
    for image in summary.images:
        table.add_row(
            image.image_id,
            image.template or "-",
            image.provider or "-",
            f"{image.cost_usd:.3f}",
            f"{image.seconds:.2f}",
            outcome_of(image),
            image.storage_key or (image.error or "-")[:120],
        )
    return table


def _print_summary(summary: Any) -> None:
    table = summary_table(summary)
    console.print(table)
    console.print(f"images:   {summary.output_dir}/content (real) and {summary.output_dir}/placeholder (placeholders)")
    console.print(f"database: {summary.database_url}")
    console.print(f"summary:  Prefect artifact '{summary.flow}-run-summary'")
    if summary.alerts:
        console.print(f"alerts:   {'; '.join(summary.alerts)}")
    if summary.complete and any(i.waiting or i.decided for i in summary.images):
        console.print(f"review:   {summary.verdict()}")


#: Where ``prefect server start`` listens by default; a run reuses a server found there
#: (``CONTENT_PIPELINE_LOCAL_SERVER`` names another address to look at).
LOCAL_SERVER = "http://127.0.0.1:4200"


def _local_server() -> str:
    return os.environ.get("CONTENT_PIPELINE_LOCAL_SERVER", LOCAL_SERVER).rstrip("/")


def _reuse_local_server() -> str | None:
    """When PREFECT_API_URL is not set and a Prefect server answers on 127.0.0.1:4200
    (``_local_server()``), point this process at it (before Prefect is imported) and
    return its API URL.

    A flow run then skips starting and stopping Prefect's temporary server (about 7 s and
    2 s here, see benchmarks/startup.py) and shows up in that server's UI.
    ``CONTENT_PIPELINE_REUSE_SERVER=0`` turns this off.
    """
    if os.environ.get("PREFECT_API_URL") or os.environ.get("CONTENT_PIPELINE_REUSE_SERVER", "1") == "0":
        return None

    api = f"{_local_server()}/api"
    try:
        healthy = httpx.get(f"{api}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return None
    if not healthy:
        return None
    os.environ["PREFECT_API_URL"] = api
    return api


_background_server: Any = None


def _plan_background_server() -> bool:
    """No server to reuse, no PREFECT_API_URL (environment or profile), reuse not turned
    off: plan ``prefect server start`` detached on ``_local_server()`` (cli/server.py),
    point this process at it (before Prefect reads its settings) and return True.
    ``prepare`` starts it once the configuration and templates are good; the run waits
    for it in ``_run_with_progress``."""
    global _background_server

    if os.environ.get("CONTENT_PIPELINE_REUSE_SERVER", "1") == "0" or os.environ.get("PREFECT_API_URL"):
        return False
    if profile_api_url():
        return False
    _background_server = BackgroundServer(_local_server())
    os.environ["PREFECT_API_URL"] = _background_server.api
    return True


class _EarlyServer:
    """Prefect's temporary server, started in a background thread as soon as the CLI knows
    it needs one, so that its process boots (about 5-7 s of imports and database checks)
    while this process loads the configuration, the templates and the flows.

    It is Prefect's own ``SubprocessASGIServer`` (one instance per process): when the flow
    run asks for a client, Prefect finds it running and uses it. ``wait()`` re-raises a
    start failure (explained by ``cli.common.explain``).
    """

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._start, name="temporary-prefect-server", daemon=True)
        self.thread.start()

    def _start(self) -> None:
        try:
            from prefect.server.api.server import SubprocessASGIServer  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs

            SubprocessASGIServer().start()
        except BaseException as exc:  # re-raised in the main thread by wait()
            self.error = exc

    def wait(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error


_early_server: _EarlyServer | None = None


def _start_temporary_server_early() -> None:
    """Start Prefect's temporary server now (``_EarlyServer``) when this run will need one:
    no PREFECT_API_URL in the environment or the Prefect profile. Called once the
    arguments are known to be good, so a typo never starts a server."""
    global _early_server
    from prefect.settings import PREFECT_API_URL  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs

    if not PREFECT_API_URL.value() and _early_server is None:
        _early_server = _EarlyServer()


def prepare(*, quiet_console: bool = True, start_server: bool = True) -> Any:
    """Prefect defaults, the API check (or a running server to reuse), the settings and the
    templates; ``start_server`` starts the temporary server early when a run needs one."""
    prefect_defaults(quiet_console=quiet_console)
    os.environ.setdefault("CONTENT_PIPELINE_TRIGGER", "cli")
    if quiet_console:  # a run: a server already running beats a temporary one
        reused = _reuse_local_server()
        if reused:
            console.print(
                f"using the Prefect server already running at {_local_server()} (UI there; CONTENT_PIPELINE_REUSE_SERVER=0 starts a temporary one instead)",
                highlight=False,
            )
        elif not _plan_background_server():
            check_prefect_settings()  # the API check below imports Prefect
            problem = prefect_api_problem(required=False)
            if problem:
                error_line(problem)
                raise typer.Exit(1)
    # Prefect's first import, once PREFECT_API_URL is decided (Prefect keeps the settings it
    # read): a bad PREFECT_* value is one line, exit 2
    check_prefect_settings()
    settings = load_settings()
    if quiet_console:  # a run: a missing key or an unwritable folder is said before the first image
        _preflight(settings)
    from domain.templates import TemplateLibrary  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    try:
        library = TemplateLibrary.load(settings.templates_dir, providers=PROVIDERS)
    except TemplateError as exc:
        raise fail(exc) from None
    if quiet_console:  # a run: a locked or unreachable database is said now, before any server starts
        from storage.db import get_database  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

        get_database(settings.database_url)
    if start_server and quiet_console:
        _start_servers()
    return settings, library


def _preflight(settings: Any) -> None:
    """Doctor's key and folder checks before a run (cli.doctor.preflight): an error is one
    line, exit 2; a warning is said once and the run goes on."""
    from cli.doctor import preflight  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from config.settings import get_secrets  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    problem, warnings = preflight(settings, get_secrets())
    if problem:
        error_line(problem)
        raise typer.Exit(2)
    for line in warnings:
        warning_line(line)


def _start_servers() -> None:
    """Once the arguments, configuration and templates are good: start the planned
    background server (``_plan_background_server``), else the temporary one early."""
    if _background_server is not None and not _background_server.started:
        verb = "started" if _background_server.start() else "waiting for"
        console.print(
            f"{verb} a Prefect server in the background at {_local_server()} for this and later runs "
            f"(UI there; log and PID in {_background_server.log.parent}; `content-pipeline server stop` "
            "stops it; CONTENT_PIPELINE_REUSE_SERVER=0 never starts one)",
            highlight=False,
        )
    elif not os.environ.get("PREFECT_API_URL"):
        _start_temporary_server_early()


DateOption = Annotated[date | None, typer.Option("--date", help="Run date (YYYY-MM-DD); default today.", parser=parse_day, metavar="YYYY-MM-DD")]


RetryOption = Annotated[
    bool, typer.Option("--retry-failed", help="Also retry images that failed for good (rejected, out of attempts) or were skipped by the budget.")
]


def _day(settings: Any, value: Any) -> date:
    from generation.plan import local_today  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    return value.date() if hasattr(value, "date") else (value or local_today(settings.timezone))


@run_app.command("daily")
def run_daily(run_date: DateOption = None, retry_failed: RetryOption = False) -> None:
    """The daily batch (templates/schedules.yaml ``daily``). Exit code 1 unless every image is done as real content."""
    settings, library = prepare()
    from flows.daily import daily_content  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from generation.plan import plan_daily  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    day = _day(settings, run_date)
    total = len(plan_daily(library.schedules, day))
    _run_with_progress(f"daily {day}", f"daily:{day.isoformat()}:", total, lambda: daily_content(run_date=day, retry_failed=retry_failed, return_state=True))


@run_app.command("weekly")
def run_weekly(run_date: DateOption = None, retry_failed: RetryOption = False) -> None:
    """That weekday's entry of the weekly plan. Exit code 1 unless every image is done as real content."""
    settings, library = prepare()
    from flows.weekly import weekly_content  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from generation.plan import plan_weekly  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    day = _day(settings, run_date)
    total = len(plan_weekly(library.schedules, day))
    _run_with_progress(f"weekly {day}", f"weekly:{day.isoformat()}:", total, lambda: weekly_content(run_date=day, retry_failed=retry_failed, return_state=True))


@run_app.command("adhoc")
def run_adhoc(
    template: Annotated[str, typer.Argument(help="Template name (content-pipeline templates validate lists them).")],
    count: Annotated[int, typer.Option(min=1, max=50)] = 1,
    quality: Annotated[Quality, typer.Option()] = Quality.standard,
    format: Annotated[ImageFormat, typer.Option("--format")] = ImageFormat.square,
    batch: Annotated[str | None, typer.Option(help="Name a batch to resume it later.")] = None,
    retry_failed: RetryOption = False,
) -> None:
    """``count`` images of one template. Exit code 1 unless every image is done as real content."""
    settings, library = prepare(start_server=False)
    try:
        library.get(template)
    except TemplateError as exc:
        raise fail(exc) from None
    _start_servers()
    from flows.adhoc import generate  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from generation.plan import local_today  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    batch = batch or uuid.uuid4().hex[:8]
    prefix = f"adhoc:{local_today(settings.timezone).isoformat()}:{batch}-{template}:"
    _run_with_progress(
        f"adhoc {template}",
        prefix,
        count,
        lambda: generate(template=template, count=count, quality=quality, format=format, batch=batch, retry_failed=retry_failed, return_state=True),
    )
