"""What the command modules share: the two consoles (stdout for results, stderr for
problems), the one-line error wording, settings loaded with a bad configuration said in one
line, and the offline-friendly Prefect defaults a command sets before Prefect is imported
(https://docs.prefect.io/v3/develop/settings-ref). Public names, so cli/main.py and the
command modules (cli/publish.py ...) import them without importing each other.
"""

from __future__ import annotations

import os
import sys
from datetime import date
from typing import Any

import typer
from rich.console import Console

from domain.errors import ConfigError, ContentPipelineError
import httpx
from rich.text import Text


def one_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message, at most ``limit`` characters."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return text if len(text) <= limit else text[:limit] + "…"


console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


#: Prefect's setting that bounds the wait for its temporary server (seconds).
EPHEMERAL_TIMEOUT = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"


def prefect_defaults(*, quiet_console: bool = True) -> None:
    """Offline-friendly Prefect settings unless the user set them.

    Flow and task runs log at INFO (what the run's Logs tab in the Prefect UI shows);
    ``quiet_console`` only raises the level of this process's console handler to
    WARNING (a progress bar and a table say the rest), through Prefect's logging-config
    override ``PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL``
    (https://docs.prefect.io/v3/develop/logging#logging-configuration). ``serve`` keeps
    its console at INFO: it is the process whose logs scheduled runs send.
    """
    for name in ("PREFECT_API_URL", "PREFECT_API_KEY"):
        if name in os.environ and not os.environ[name].strip():
            del os.environ[name]  # an empty variable is not a setting: as if unset (a temporary server)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault(EPHEMERAL_TIMEOUT, "180")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
    if quiet_console:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    # the temporary server may log cancelled writes while it shuts down: not ours to show
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")


def explain(exc: BaseException) -> str:
    """One line for ``exc`` with what to do, for the errors a person meets first."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "ephemeral Prefect API server" in str(exc) or "Unable to find an available port" in str(exc):
        return (
            f"Prefect's temporary server did not start within {os.environ.get(EPHEMERAL_TIMEOUT, '20')} s: "
            f"raise {EPHEMERAL_TIMEOUT} (e.g. 600) on a loaded machine, or start a server once "
            "(prefect server start) and export PREFECT_API_URL=http://127.0.0.1:4200/api"
        )

    if isinstance(exc, httpx.TransportError) or "All connection attempts failed" in text:
        api = os.environ.get("PREFECT_API_URL") or "the Prefect API"
        return (
            f"cannot reach the Prefect server at {api} ({type(exc).__name__}): start it (prefect server start) "
            "or unset PREFECT_API_URL to run on a temporary server"
        )
    # our own messages (ContentPipelineError, the ValueErrors this CLI words) read as they are
    return text if isinstance(exc, (ContentPipelineError, ValueError)) else f"{type(exc).__name__}: {text}"


def warning_line(message: str) -> None:
    """``warning: <message>`` on stderr, one line (never wrapped, no markup read from it)."""

    err.print(Text(f"warning: {message}", style="yellow"), highlight=False, soft_wrap=True)


def error_line(message: str) -> None:
    """``error: <message>`` on stderr, one line (never wrapped, no markup read from it)."""

    err.print(Text.assemble(("error: ", "bold red"), message), highlight=False, soft_wrap=True)


def fail(exc: BaseException, code: int = 2) -> typer.Exit:
    error_line(explain(exc))
    return typer.Exit(code)


def parse_day(value: Any) -> date:
    """A ``--date`` / ``--since`` / ``--until`` / ``--for`` value (``YYYY-MM-DD``) as a date
    (Typer's ``parser=``); anything else is one line saying the format, exit 2."""
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        shown = text if len(text) <= 40 else text[:40] + "…"
        error_line(f"{shown!r} is not a date: write it as YYYY-MM-DD (e.g. {date.today().isoformat()})")
        raise typer.Exit(2) from None


def load_settings() -> Any:
    """The settings (config.settings.get_settings); a bad configuration or prompt key: one line, exit 2."""
    from config.settings import get_secrets, get_settings  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    from storage.crypto import cipher  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    try:
        settings = get_settings()
        get_secrets()  # an Apprise URL with a wrong scheme: said now, not when the first alert is lost
        cipher()  # a PROMPT_ENCRYPTION_KEY that is not a Fernet key: said now, not at the first prompt
        return settings
    except ConfigError as exc:
        raise fail(exc) from None


def prefect_api_problem(required: bool, timeout_s: float = 5.0) -> str | None:
    """None when flows can reach a Prefect API, else one line saying what to do.

    With ``PREFECT_API_URL`` set (environment or Prefect profile), its ``/health`` must
    answer 200. Without it, flows start a temporary server: fine for ``run``, not for
    ``serve`` (``required``), whose schedules need a server that stays up.
    """
    from prefect.settings import PREFECT_API_URL  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs

    api = os.environ.get("PREFECT_API_URL") or PREFECT_API_URL.value()
    if not api:
        if required:
            return (
                "serve needs a Prefect server that stays up (schedules, the UI): start one with "
                "`prefect server start`, then export PREFECT_API_URL=http://127.0.0.1:4200/api"
            )
        return None
    try:
        response = httpx.get(f"{api.rstrip('/')}/health", timeout=timeout_s)
    except httpx.HTTPError as exc:
        return f"cannot reach the Prefect server at {api} ({type(exc).__name__}): start it with `prefect server start`" + (
            "" if required else ", or unset PREFECT_API_URL to run on a temporary server"
        )
    if response.status_code != 200:
        return f"{api}/health answered HTTP {response.status_code}: PREFECT_API_URL must point at a Prefect API (it ends in /api)"
    from cli.doctor import auth_problem  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    return auth_problem(api, timeout_s)


#: How long (seconds) the command line waits for a database another program holds
#: (SQLite's write lock, a server's connect) before saying so; flows keep SQLite's 30 s.
FAIL_FAST_S = 2.0
