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
    content-pipeline db upgrade | db current | db rebuild
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

import sys
from typing import Any

import typer
from sqlalchemy.exc import SQLAlchemyError

from cli.budget import budget_app
from cli.common import FAIL_FAST_S, fail, one_line
from cli.config import config_app, templates_app
from cli.ops import db_app, doctor_cmd, serve_cmd, server_app
from cli.providers import models_app, providers_app
from cli.publish import register as register_publishing
from cli.reports import ab_app, history_cmd, report_cmd, share_cmd
from cli.run import run_app
from cli.safety import policy_app, verify_cmd
from cli.trigger import trigger_app
from domain.errors import ConfigError, ContentPipelineError, TemplateError


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


app = _App(help="A scheduled, unattended AI image-content pipeline on Prefect.", no_args_is_help=True)
# one module per command group (cli/<group>.py); the order here is the order of --help
app.add_typer(run_app, name="run")
app.add_typer(config_app, name="config")
app.add_typer(templates_app, name="templates")
app.command("serve")(serve_cmd)
app.add_typer(server_app, name="server")
app.command("doctor")(doctor_cmd)
app.add_typer(providers_app, name="providers")
app.add_typer(models_app, name="models")
app.add_typer(db_app, name="db")
app.command("report")(report_cmd)
app.command("share")(share_cmd)
app.command("history")(history_cmd)
app.add_typer(ab_app, name="ab")
app.add_typer(policy_app, name="policy")
app.command("verify")(verify_cmd)
app.add_typer(budget_app, name="budget")
app.add_typer(trigger_app, name="trigger")
register_publishing(app)  # review, reserve, release, regenerate, versions, backup (cli/publish.py)


def main() -> None:  # pragma: no cover - console script
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
