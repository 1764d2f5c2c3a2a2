"""The ``content-pipeline`` command line (Typer + rich).

    content-pipeline run daily [--date YYYY-MM-DD]
    content-pipeline run weekly [--date YYYY-MM-DD]
    content-pipeline run adhoc TEMPLATE [--count N] [--quality hd] [--format portrait] [--batch NAME]
    content-pipeline config show
    content-pipeline templates validate
    content-pipeline serve
    content-pipeline trigger serve [--port N] [--host ADDR]                (cli/trigger.py)
    content-pipeline server stop
    content-pipeline doctor
    content-pipeline providers list [--all] | providers check [NAME ...]
    content-pipeline models pull civitai:<model-version-id>
    content-pipeline db upgrade | db current
    content-pipeline report [--since YYYY-MM-DD] [--until YYYY-MM-DD] [--out DIR]
    content-pipeline share IMAGE_ID [--expires SECONDS]
    content-pipeline history [--since YYYY-MM-DD] [--until YYYY-MM-DD] [--limit N] [--image IMAGE_ID]
    content-pipeline review list | review approve|reject IMAGE...     (cli/publish.py)
    content-pipeline reserve --category C --for YYYY-MM-DD [--channel CH] | release RESERVATION
    content-pipeline regenerate IMAGE [--seed N] [--provider P] | versions IMAGE
    content-pipeline backup verify
    content-pipeline ab report [--template NAME] [--json]
    content-pipeline policy check TEXT
    content-pipeline verify FILE [--json]

Exit codes: 0 success (``run``: every planned image done as real content), 1 a run with
images not done as real content (placeholders, failures, blocked, skipped) or one that
did not complete, 2 bad configuration or templates.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import uuid
from pathlib import Path
from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Annotated, Any

import httpx
import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, select

from domain.model import ImageFormat, Quality
from domain.errors import ConfigError, ContentPipelineError, TemplateError
from providers.registry import PROVIDERS
from cli.prefect_settings import check_prefect_settings
from cli.server import BackgroundServer, profile_api_url, stop_server
from cli.common import console, err, error_line, fail, load_settings, one_line, prefect_defaults, warning_line


class _App(typer.Typer):
    """The Typer app, answering a problem the user can cause (configuration, templates,
    database unreachable or locked, an unreadable file) with one line instead of a traceback."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:

        from storage.db import set_fail_fast  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

        # a person waits on this process: a locked or unreachable database is said at once
        set_fail_fast(FAIL_FAST_S)
        try:
            from config.settings import dotenv_values  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

            dotenv_values()  # a .env that is not UTF-8 text: one line here, not a traceback from Prefect's settings
            return super().__call__(*args, **kwargs)
        except (ConfigError, TemplateError) as exc:
            fail(exc)
            sys.exit(2)
        except SQLAlchemyError as exc:
            fail(ValueError(f"database: {one_line(getattr(exc, 'orig', None) or exc)}"))
            sys.exit(1)
        except (ContentPipelineError, OSError) as exc:
            fail(exc)
            sys.exit(1)


#: How long (seconds) the command line waits for a database another program holds
#: (SQLite's write lock, a server's connect) before saying so; flows keep SQLite's 30 s.
FAIL_FAST_S = 2.0


app = _App(help="A scheduled, unattended AI image-content pipeline on Prefect.", no_args_is_help=True)
run_app = typer.Typer(help="Run a flow now, in this process.", no_args_is_help=True)
config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
templates_app = typer.Typer(help="Work with prompt templates.", no_args_is_help=True)
app.add_typer(run_app, name="run")
app.add_typer(config_app, name="config")
app.add_typer(templates_app, name="templates")

from cli.providers import models_app, providers_app  # noqa: E402 - sub-apps of their own module

app.add_typer(providers_app, name="providers")
app.add_typer(models_app, name="models")

from cli.safety import policy_app, verify_cmd  # noqa: E402 - commands of their own module

app.add_typer(policy_app, name="policy")
app.command("verify")(verify_cmd)

from cli.budget import budget_app  # noqa: E402 - a command group of its own module

app.add_typer(budget_app, name="budget")

from cli.trigger import trigger_app  # noqa: E402 - sub-app of its own module

app.add_typer(trigger_app, name="trigger")

from cli.publish import register as _register_publishing  # noqa: E402 - review, reserve, backup ...

_register_publishing(app)

def _prefect_api_problem(required: bool, timeout_s: float = 5.0) -> str | None:
    """None when flows can reach a Prefect API, else one line saying what to do.

    With ``PREFECT_API_URL`` set (environment or Prefect profile), its ``/health`` must
    answer 200. Without it, flows start a temporary server: fine for ``run``, not for
    ``serve`` (``required``), whose schedules need a server that stays up.
    """
    from prefect.settings import PREFECT_API_URL  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs

    api = os.environ.get("PREFECT_API_URL") or PREFECT_API_URL.value()
    if not api:
        if required:
            return ("serve needs a Prefect server that stays up (schedules, the UI): start one with "
                    "`prefect server start`, then export PREFECT_API_URL=http://127.0.0.1:4200/api")
        return None
    try:
        response = httpx.get(f"{api.rstrip('/')}/health", timeout=timeout_s)
    except httpx.HTTPError as exc:
        return (f"cannot reach the Prefect server at {api} ({type(exc).__name__}): start it with "
                "`prefect server start`" + ("" if required else ", or unset PREFECT_API_URL to run on a temporary server"))
    if response.status_code != 200:
        return (f"{api}/health answered HTTP {response.status_code}: PREFECT_API_URL must point at a Prefect API "
                "(it ends in /api)")
    from cli.doctor import auth_problem  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    return auth_problem(api, timeout_s)


@config_app.command("show")
def config_show() -> None:
    """Print the effective configuration (file + environment), secrets masked."""
    from config.settings import config_path, get_secrets  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    settings = load_settings()
    data = settings.model_dump(mode="json")
    secrets = get_secrets().masked()
    console.print(f"# configuration file: {config_path() or '(none: defaults)'}")
    console.print_json(json.dumps({**data, "secrets": secrets}))



def _reference_bytes(value: str, folder: Path) -> bytes:
    """A template's reference image as the provider will load it (providers/download.py);
    empty bytes when it cannot be read (``templates validate`` reports that on its own)."""
    from domain.errors import ContentPipelineError  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from domain.templates import resolve_reference  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from providers.download import load_reference  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    try:
        return load_reference(resolve_reference(value, folder))
    except (ContentPipelineError, OSError):
        return b""

@templates_app.command("validate")
def templates_validate() -> None:
    """Check every template and the schedules, and every prompt, A/B variant and wildcard
    expansion against the content policy; list each problem with file, line and field."""
    from domain.templates import TemplateLibrary  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    settings = load_settings()
    library, problems = TemplateLibrary.validate(settings.templates_dir, providers=PROVIDERS)

    from policy.templates import policy_problems  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    problems += policy_problems(library, styles=settings.styles, policy=settings.policy,
                                load_reference=lambda value: _reference_bytes(value, library.folder))
    for problem in problems:
        err.print(f"[red]✗[/] {escape(problem)}", markup=True, highlight=False, soft_wrap=True)
    count = sum(len(v) for v in library.templates.values())
    if problems:
        raise typer.Exit(2)
    console.print(f"[green]✓[/] {count} templates in {len(library.templates)} categories "
                  f"({', '.join(library.categories)}) and the schedules are valid: {settings.templates_dir}")


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
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        bar = progress.add_task(f"{label} (starting Prefect)", total=total)
        thread.start()
        while thread.is_alive():
            done = ledger.finished_count(key_prefix)
            progress.update(bar, completed=done, description=label if done else f"{label} (starting Prefect)")
            thread.join(0.5)
        progress.update(bar, completed=ledger.finished_count(key_prefix), description=label)
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


def _incomplete_advice(summary: Any) -> str:
    """What to do about an incomplete run: with placeholders only (the offline defaults, or no
    real provider answered), how to get real images; otherwise how to retry."""
    missing = [i for i in summary.images if not (i.done or i.decided or i.waiting)]
    if missing and all(i.placeholder or i.status == "placeholder" for i in missing):
        return ("placeholders stand in for real images. To get real images, enable a provider in "
                "content-pipeline.yaml (providers.<name>.enabled: true, its name in chain before placeholder) and "
                "set its key in the environment or .env (e.g. STABILITY_API_KEY); check it with "
                "content-pipeline providers check, then run again (only the missing images are made)")
    return "re-run the same command to retry what can be retried (add --retry-failed for the rest)"


def _print_summary(summary: Any) -> None:
    from reporting.summary import outcome_of, summary_words  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    table = Table(title=f"{summary.flow} run: {summary_words(summary.images, summary.cost_usd)}")
    for column in ("image", "template", "provider", "USD", "seconds", "outcome", "stored at / error"):
        table.add_column(column, no_wrap=column != "stored at / error")
    for image in summary.images:
        table.add_row(image.image_id, image.template or "-", image.provider or "-", f"{image.cost_usd:.3f}",
                      f"{image.seconds:.2f}", outcome_of(image), image.storage_key or (image.error or "-")[:120])
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
    ``_prepare`` starts it once the configuration and templates are good; the run waits
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


def _prepare(*, quiet_console: bool = True, start_server: bool = True) -> Any:
    """Prefect defaults, the API check (or a running server to reuse), the settings and the
    templates; ``start_server`` starts the temporary server early when a run needs one."""
    prefect_defaults(quiet_console=quiet_console)
    check_prefect_settings()  # Prefect's first import here: a bad PREFECT_* value is one line, exit 2
    os.environ.setdefault("CONTENT_PIPELINE_TRIGGER", "cli")
    if quiet_console:  # a run: a server already running beats a temporary one
        reused = _reuse_local_server()
        if reused:
            console.print(f"using the Prefect server already running at {_local_server()} (UI there; "
                          "CONTENT_PIPELINE_REUSE_SERVER=0 starts a temporary one instead)", highlight=False)
        elif not _plan_background_server():
            problem = _prefect_api_problem(required=False)
            if problem:
                error_line(problem)
                raise typer.Exit(1)
    settings = load_settings()
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


def _start_servers() -> None:
    """Once the arguments, configuration and templates are good: start the planned
    background server (``_plan_background_server``), else the temporary one early."""
    if _background_server is not None and not _background_server.started:
        verb = "started" if _background_server.start() else "waiting for"
        console.print(f"{verb} a Prefect server in the background at {_local_server()} for this and later runs "
                      f"(UI there; log and PID in {_background_server.log.parent}; `content-pipeline server stop` "
                      "stops it; CONTENT_PIPELINE_REUSE_SERVER=0 never starts one)", highlight=False)
    elif not os.environ.get("PREFECT_API_URL"):
        _start_temporary_server_early()


DateOption = Annotated[date | None, typer.Option("--date", help="Run date (YYYY-MM-DD); default today.", formats=["%Y-%m-%d"])]
RetryOption = Annotated[bool, typer.Option("--retry-failed", help="Also retry images that failed for good (rejected, "
                                           "out of attempts) or were skipped by the budget.")]


def _day(settings: Any, value: Any) -> date:
    from generation.plan import local_today  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    return value.date() if hasattr(value, "date") else (value or local_today(settings.timezone))


@run_app.command("daily")
def run_daily(run_date: DateOption = None, retry_failed: RetryOption = False) -> None:
    """The daily batch (templates/schedules.yaml ``daily``). Exit code 1 unless every image is done as real content."""
    settings, library = _prepare()
    from flows.daily import daily_content  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from generation.plan import plan_daily  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    day = _day(settings, run_date)
    total = len(plan_daily(library.schedules, day))
    _run_with_progress(f"daily {day}", f"daily:{day.isoformat()}:", total,
                       lambda: daily_content(run_date=day, retry_failed=retry_failed, return_state=True))


@run_app.command("weekly")
def run_weekly(run_date: DateOption = None, retry_failed: RetryOption = False) -> None:
    """That weekday's entry of the weekly plan. Exit code 1 unless every image is done as real content."""
    settings, library = _prepare()
    from flows.weekly import weekly_content  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from generation.plan import plan_weekly  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    day = _day(settings, run_date)
    total = len(plan_weekly(library.schedules, day))
    _run_with_progress(f"weekly {day}", f"weekly:{day.isoformat()}:", total,
                       lambda: weekly_content(run_date=day, retry_failed=retry_failed, return_state=True))


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
    settings, library = _prepare(start_server=False)
    try:
        library.get(template)
    except TemplateError as exc:
        raise fail(exc) from None
    _start_servers()
    from flows.adhoc import generate  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from generation.plan import local_today  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    batch = batch or uuid.uuid4().hex[:8]
    prefix = f"adhoc:{local_today(settings.timezone).isoformat()}:{batch}-{template}:"
    _run_with_progress(f"adhoc {template}", prefix, count,
                       lambda: generate(template=template, count=count, quality=quality, format=format, batch=batch,
                                        retry_failed=retry_failed, return_state=True))


server_app = typer.Typer(help="The Prefect server a run starts in the background.", no_args_is_help=True)
app.add_typer(server_app, name="server")


@server_app.command("stop")
def server_stop() -> None:
    """Stop the Prefect server a run started in the background (its PID under
    $PREFECT_HOME/content-pipeline-server); says so when none runs."""
    console.print(stop_server(), highlight=False)


@app.command("serve")
def serve_cmd() -> None:
    """Serve the daily, weekly, ad-hoc, weekly-report and flow-failed-alert deployments
    (cron schedules in the configured timezone) from this process; needs a Prefect server."""
    _prepare(quiet_console=False)
    from cli.doctor import auth_warning, prefect_api_url  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    warning = auth_warning(prefect_api_url() or "")
    if warning:
        warning_line(warning)
    problem = _prefect_api_problem(required=True)
    if problem:
        error_line(problem)
        raise typer.Exit(1)
    from deployments.serve import main  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    main()


@app.command("doctor")
def doctor_cmd(
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each network probe.")] = 3.0,
) -> None:
    """Check Python, configuration, templates, Prefect API, database, storage, providers and Apprise URLs."""
    prefect_defaults()
    from cli.doctor import FAIL, OK, WARN, run_checks  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    checks = run_checks(timeout_s=timeout)
    table = Table(title="content-pipeline doctor")
    for column in ("check", "status", "found", "to fix"):
        table.add_column(column, overflow="fold")
    style = {OK: "green", WARN: "yellow", FAIL: "bold red"}
    for check in checks:
        table.add_row(check.name, f"[{style[check.status]}]{check.status}[/]", check.detail, check.fix or "-")
    console.print(table)
    failed = [c for c in checks if c.status == FAIL]
    warned = [c for c in checks if c.status == WARN]
    console.print(f"{len(checks)} checks: {len(failed)} to fix, {len(warned)} warnings")
    if failed:
        raise typer.Exit(1)
db_app = typer.Typer(help="The metrics database (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _database_url() -> str:
    from reporting.summary import safe_db_url  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    url = load_settings().database_url
    console.print(f"database: {safe_db_url(url)}", highlight=False)
    return url


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Migrate the database to the newest schema (the pipeline also does this on start)."""
    from storage.db import Database  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from storage.migrate import current_revisions, upgrade  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    try:
        db = Database(_database_url(), migrate=False, fail_fast_s=FAIL_FAST_S)
    except Exception as exc:  # locked or unreachable
        raise fail(exc, 1) from None
    try:
        upgrade(db, revision)
        console.print(f"[green]✓[/] at revision {', '.join(sorted(current_revisions(db))) or '(none)'}")
    except Exception as exc:  # a database that cannot be reached or migrated
        raise fail(exc, 1) from None
    finally:
        db.dispose()


@db_app.command("current")
def db_current() -> None:
    """Print the database's revision and the newest one."""
    from storage.db import Database  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from storage.migrate import current_revisions, head_revisions  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    db = Database(_database_url(), migrate=False, fail_fast_s=FAIL_FAST_S)
    try:
        current, head = current_revisions(db), head_revisions()
    finally:
        db.dispose()
    console.print(f"current: {', '.join(sorted(current)) or '(empty database)'}; newest: {', '.join(sorted(head))}")
    if current != head:
        console.print("run `content-pipeline db upgrade` (or just run a flow) to migrate")



def _as_date(value: date | None) -> date | None:
    """Typer hands ``formats=`` options over as datetimes: the day of one, or None."""
    return value.date() if isinstance(value, datetime) else value


@app.command("report")
def report_cmd(
    since: Annotated[date | None, typer.Option("--since", formats=["%Y-%m-%d"], help="First day (UTC); default 6 days before --until.")] = None,
    until: Annotated[date | None, typer.Option("--until", formats=["%Y-%m-%d"], help="Last day, included (UTC); default today.")] = None,
    out: Annotated[str | None, typer.Option("--out", help="Folder for the charts and contact sheet; default <output_dir>/reports/<since>_<until>.")] = None,
) -> None:
    """Per provider and model: images, success rate, mean / p95 seconds, cost, cost per image, quality;
    writes PNG charts and an HTML contact sheet of the period's images."""

    from reporting.report import period, write_report  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from wiring.runtime import get_runtime  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    settings = load_settings()
    try:
        start, end = period(_as_date(since),
                            _as_date(until))
    except ValueError as exc:
        raise fail(exc) from None
    last_day = (end - timedelta(days=1)).date()
    folder = Path(out) if out else settings.output_dir / "reports" / f"{start:%Y-%m-%d}_{last_day}"
    rt = get_runtime()
    report, files = write_report(rt.db, rt.store, start, end, folder, daily_cap_usd=settings.budget.daily_usd)
    table = Table(title=f"{start:%Y-%m-%d} to {report.last_day} (UTC): {report.total_images} images, USD {report.total_cost:.2f}")
    from reporting.report import COLUMNS  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("provider", "model") else "right")
    for row in report.rows():
        table.add_row(*(row[c] for c in COLUMNS))
    console.print(table)
    if not report.stats:
        console.print("no provider calls in this period")
    for path in files:
        console.print(f"wrote {path}", highlight=False)
    from cli.publish import reservation_calendar  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    calendar = reservation_calendar(start.date())
    console.print(calendar if calendar is not None else "no reservations from the period's start on")


@app.command("share")
def share_cmd(
    image_id: Annotated[str, typer.Argument(help="The image's 12-character id (report, run summary, file names).")],
    expires: Annotated[int, typer.Option("--expires", min=1, max=604800, help="Link lifetime in seconds.")] = 3600,
) -> None:
    """Print a link to each stored file of an image (presigned on S3: anyone holding it can download)."""

    from storage.db import ImageRecord  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from wiring.runtime import get_runtime  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    load_settings()
    rt = get_runtime()
    with rt.db.session() as session:
        row = session.exec(select(ImageRecord).where(ImageRecord.image_id == image_id)).first()
    if row is None or row.id is None:
        raise fail(ValueError(f"no image with id {image_id!r}"), 1)
    renditions = rt.db.renditions(row.id)
    if not renditions:
        raise fail(ValueError(f"image {image_id} is {row.status} and has no stored file yet"), 1)
    from storage.objects import LocalStore  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    if isinstance(rt.store, LocalStore):  # file:// paths: nothing to sign, nothing expires
        console.print(f"{image_id}: {row.template} via {row.provider} ({row.status}); files in the local store "
                      f"{rt.store.root} (no expiry; copy them to share)", highlight=False)
    else:
        console.print(f"{image_id}: {row.template} via {row.provider} ({row.status}); presigned links valid "
                      f"{expires} s", highlight=False)
    for rendition in renditions:
        console.print(f"{rendition.name:10} {rendition.width}x{rendition.height} {rt.store.presigned_url(rendition.storage_key, expires)}",
                      highlight=False, soft_wrap=True)


def _why(call: Any) -> str:
    """`` (error_class: message)`` of a failed or skipped call, shortened; empty for a success."""
    detail = ": ".join(part for part in (call.error_class, " ".join((call.error or "").split())[:200]) if part)
    return f" ({detail})" if detail else ""


@app.command("history")
def history_cmd(
    since: Annotated[date | None, typer.Option("--since", formats=["%Y-%m-%d"], help="First day (UTC); default 6 days before --until.")] = None,
    until: Annotated[date | None, typer.Option("--until", formats=["%Y-%m-%d"], help="Last day, included (UTC); default today.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 200,
    image_id: Annotated[str | None, typer.Option("--image", help="Only this image's slot: its version chain.")] = None,
) -> None:
    """The audit trail: every generation of the period with who triggered it, its prompt,
    each provider call (outcome, seconds, USD) and where the image went; with --image, the
    slot's chain of versions (who reviewed each, which one is published)."""


    from storage.db import AttemptRecord, ImageRecord  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from reporting.report import period  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from wiring.runtime import get_runtime  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    load_settings()
    if image_id:
        from cli.publish import versions_cmd  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

        versions_cmd(image_id)
        return
    try:
        start, end = period(_as_date(since),
                            _as_date(until))
    except ValueError as exc:
        raise fail(exc) from None
    db = get_runtime().db
    with db.session() as session:
        images = list(session.exec(select(ImageRecord).where(ImageRecord.created_at >= start, ImageRecord.created_at < end)
                                   .order_by(col(ImageRecord.id)).limit(limit)))
        calls = list(session.exec(select(AttemptRecord).where(AttemptRecord.image_pk.in_([i.id for i in images]))  # type: ignore[attr-defined]
                                  .order_by(col(AttemptRecord.id))))
    by_image: dict[int, list[Any]] = {}
    for call in calls:
        by_image.setdefault(call.image_pk, []).append(call)
    console.print(f"{len(images)} generations from {start:%Y-%m-%d} to {(end - timedelta(days=1)):%Y-%m-%d} (UTC)",
                  highlight=False)
    for image in images:
        story = ", ".join(f"{c.provider} {c.status} {c.latency_s:.1f}s USD {c.cost_usd:.3f}" + _why(c)
                          for c in by_image.get(image.id or 0, []))
        console.print(f"\n[bold]{image.image_id}[/]  {image.created_at:%Y-%m-%d %H:%M}  trigger {image.trigger}  "
                      f"{image.flow}/{image.template or '-'}  v{image.version}  {image.status}  USD {image.cost_usd:.3f}",
                      highlight=False)
        from storage.crypto import is_encrypted  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

        prompt = ("(encrypted at rest: set PROMPT_ENCRYPTION_KEY to read it)" if is_encrypted(image.prompt)
                  else image.prompt or "-")
        console.print(f"  prompt: {prompt}", highlight=False, markup=False, soft_wrap=True)
        console.print(f"  calls:  {story or '-'}", highlight=False, markup=False, soft_wrap=True)
        console.print(f"  {'stored: ' + image.storage_key if image.storage_key else 'error:  ' + (image.error or '-')}",
                      highlight=False, markup=False, soft_wrap=True)
ab_app = typer.Typer(help="A/B tests of template variants.", no_args_is_help=True)
app.add_typer(ab_app, name="ab")


@ab_app.command("report")
def ab_report(
    template: Annotated[str | None, typer.Option("--template", help="Only this template.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Outcomes per template variant (trials, success rate, mean quality score), the
    Beta posterior that Thompson sampling draws from, and P(best)."""

    from domain.templates import TemplateLibrary  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from storage.db import get_database  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from generation.ab import report  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    settings = load_settings()
    try:
        library = TemplateLibrary.load(settings.templates_dir, providers=PROVIDERS)
    except TemplateError as exc:
        raise fail(exc) from None
    variants = {t.name: ["base", *sorted(t.variants)] for ts in library.templates.values() for t in ts if t.variants}
    if template:
        if template not in variants:
            raise fail(ValueError(f"--template {template!r}: no template with A/B variants by that name "
                                   f"(known: {', '.join(sorted(variants)) or 'none'})"))
        variants = {template: variants[template]}
    rows = report(get_database(settings.database_url), template=template, config=settings.ab, variants=variants)
    if as_json:
        console.print_json(json.dumps([asdict(r) for r in rows]))
        return
    table = Table(title=f"A/B variants ({settings.ab.strategy}; prior Beta({settings.ab.prior_alpha:g}, {settings.ab.prior_beta:g}))")
    for column in ("template", "variant", "trials", "successes", "success rate", "mean quality", "alpha", "beta",
                   "posterior mean", "P(best)"):
        table.add_column(column, justify="left" if column in ("template", "variant") else "right")
    for r in rows:
        table.add_row(r.template, r.variant, str(r.trials), str(r.successes), f"{r.success_rate:.0%}",
                      "-" if r.mean_quality is None else f"{r.mean_quality:.3f}", f"{r.alpha:.2f}", f"{r.beta:.2f}",
                      f"{r.posterior_mean:.3f}", f"{r.p_best:.0%}")
    console.print(table)


def main() -> None:  # pragma: no cover - console script
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
