"""Prefect's own settings checked where a run command first imports Prefect: a value Prefect
cannot parse (``PREFECT_LOGGING_LEVEL=LOUD``, ``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=abc``)
is one line naming the variable and exit 2, instead of Prefect's multi-line validation
report and a traceback. The variables: https://docs.prefect.io/v3/develop/settings-ref
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from typing import Any

import typer

from cli.common import error_line
from pydantic import ValidationError

SETTINGS_REF = "https://docs.prefect.io/v3/develop/settings-ref"


def bad_variable(error: dict[str, Any]) -> str | None:
    """The ``PREFECT_*`` environment variable behind one pydantic error of Prefect's settings:
    the variable whose name ends with the field's name and whose value is the refused input."""
    field = str(error.get("loc", ("",))[-1]).upper()
    value = error.get("input")
    if not field or not isinstance(value, str):
        return None
    for name in sorted(os.environ):
        if name.startswith("PREFECT_") and name.endswith(field) and os.environ[name] == value:
            return name
    return None


def prefect_setting_problem(exc: Any) -> str:
    """One line for Prefect's settings ValidationError ``exc``: the variable, its value and
    what Prefect expects."""
    for error in exc.errors():
        name = bad_variable(error)
        if name is not None:
            return f"{name}={os.environ[name]!r}: {error.get('msg', 'not a valid value')} (a Prefect setting: {SETTINGS_REF})"
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ()))
    return f"Prefect setting {exc.title} {where}: {first.get('msg', exc)} ({SETTINGS_REF})"


def check_prefect_settings() -> None:
    """Import Prefect and validate its settings (environment, .env, profile) once the command
    set its Prefect environment; a bad value: one line naming the variable, exit 2. What
    Prefect prints on import is held back while this runs and shown again when the settings
    are good."""

    held = io.StringIO()
    with contextlib.redirect_stderr(held):
        import prefect  # noqa: F401, PLC0415 - prints its own report of a bad setting on import; imported here, after the command set its Prefect environment
    from prefect.settings import Settings  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs

    try:
        Settings()
    except ValidationError as exc:
        error_line(prefect_setting_problem(exc))
        raise typer.Exit(2) from None
    sys.stderr.write(held.getvalue())
