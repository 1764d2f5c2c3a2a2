"""``content-pipeline trigger serve --port N``: the signed inbound trigger (deployments/trigger.py)
that lets n8n or a CMS start the ad-hoc deployment with one HMAC-signed HTTP request.

Needs ``CONTENT_PIPELINE_TRIGGER_SECRET`` (the shared key) and a Prefect server
(``PREFECT_API_URL``) on which ``content-pipeline serve`` runs the deployments.
Exit codes: 2 no secret, bad configuration or templates.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from cli.common import error_line, fail, load_settings, prefect_defaults
from domain.errors import TemplateError
from providers.registry import PROVIDERS

trigger_app = typer.Typer(help="The signed HTTP trigger for other systems (n8n, a CMS).", no_args_is_help=True)


@trigger_app.command("serve")
def trigger_serve(
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port to listen on.")] = 8787,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
) -> None:
    """Listen for signed ``POST /trigger`` requests and start ``generate/adhoc`` runs
    (headers and body: README "Signed trigger")."""
    from deployments.trigger import SECRET_ENV, create_app  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from domain.templates import TemplateLibrary  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    secret = os.environ.get(SECRET_ENV, "")
    if len(secret) < 16:
        error_line(f"{SECRET_ENV} must hold the shared signing key (16 characters or more)")
        raise typer.Exit(2)
    prefect_defaults(quiet_console=False)
    settings = load_settings()
    try:
        library = TemplateLibrary.load(settings.templates_dir, providers=PROVIDERS)
    except TemplateError as exc:
        raise fail(exc) from None
    import uvicorn  # noqa: PLC0415 - uvicorn: only for the trigger server

    uvicorn.run(create_app(secret, library, clients=settings.clients), host=host, port=port, log_level="info", access_log=False)
