"""``content-pipeline serve``, ``doctor``, ``server stop`` and ``db upgrade|current|rebuild``: the
deployments, the checks of what a run needs, the background Prefect server, the migrations,
the ledger recovered from the store after a database loss."""

from __future__ import annotations


from typing import Annotated

import typer
from rich.table import Table

from cli.server import stop_server
from cli.run import prepare
from cli.common import FAIL_FAST_S, console, error_line, fail, load_settings, prefect_api_problem, prefect_defaults, warning_line


server_app = typer.Typer(help="The Prefect server a run starts in the background.", no_args_is_help=True)


@server_app.command("stop")
def server_stop() -> None:
    """Stop the Prefect server a run started in the background (its PID under
    $PREFECT_HOME/content-pipeline-server); says so when none runs."""
    console.print(stop_server(), highlight=False)


def serve_cmd() -> None:
    """Serve the daily, weekly, ad-hoc, weekly-report and flow-failed-alert deployments
    (cron schedules in the configured timezone) from this process; needs a Prefect server."""
    prepare(quiet_console=False)
    from cli.doctor import auth_warning, prefect_api_url  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    warning = auth_warning(prefect_api_url() or "")
    if warning:
        warning_line(warning)
    problem = prefect_api_problem(required=True)
    if problem:
        error_line(problem)
        raise typer.Exit(1)
    from deployments.serve import main  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    main()


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
    if any(c.name == "configuration" for c in failed):
        raise typer.Exit(2)  # a configuration error, as every command says it
    if failed:
        raise typer.Exit(1)


db_app = typer.Typer(help="The metrics database (Alembic migrations).", no_args_is_help=True)


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


@db_app.command("rebuild")
def db_rebuild() -> None:
    """Recover the image ledger from the store's provenance sidecars (after the database was
    lost): a re-run of a date then pays for nothing already stored. Prints one line: N images
    recovered, M skipped with the reasons."""
    from config.settings import get_secrets  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from generation.rebuild import rebuild  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from storage.db import get_database  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from storage.objects import open_store  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    settings = load_settings()
    db = get_database(_database_url())
    store = open_store(settings.storage_url, s3=settings.s3, credentials=get_secrets().aws_credentials())
    report = rebuild(db, store)
    console.print(f"rebuilt from {settings.storage_url}: {report.line()}", highlight=False)
