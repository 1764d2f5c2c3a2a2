"""``content-pipeline policy check TEXT`` and ``content-pipeline verify FILE`` (Typer + rich).

    content-pipeline policy check "a prompt"    verdict and rule; exit 1 when refused
    content-pipeline verify FILE [--json]         C2PA Content Credentials of a file; exit 1 when
                                                  missing or invalid

Exit codes: 0 allowed / valid, 1 refused / invalid, 2 bad configuration or argument.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from domain.errors import ConfigError

policy_app = typer.Typer(help="The content policy applied to every prompt.", no_args_is_help=True)

console = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 200)


def _settings() -> Any:
    from config.settings import get_settings  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    try:
        return get_settings()
    except ConfigError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


@policy_app.command("check")
def policy_check(
    text: Annotated[str, typer.Argument(help="The whole prompt to check ('-' reads it from standard input).")],
) -> None:
    """Print the content policy's verdict for TEXT and the rule that refused it (exit 1 when refused)."""
    from policy.engine import evaluate  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from domain.yamlio import shorten  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    if text == "-":
        text = sys.stdin.read()
    settings = _settings()
    verdict = evaluate(text, deny_terms=settings.policy.deny_terms, private_people=settings.policy.private_people)
    if verdict.allowed:
        console.print(f"allowed: {escape(shorten(text))}", highlight=False, soft_wrap=True)
        return
    console.print(f"refused: rule {verdict.rule}: {escape(verdict.reason)}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def verify_cmd(
    file: Annotated[Path, typer.Argument(help="An image file (JPEG, PNG, WebP, AVIF).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole manifest store as JSON.")] = False,
) -> None:
    """Read and validate the C2PA Content Credentials of FILE: signer, validation state,
    digital source type, generator and ingredients (exit 1 when missing or invalid)."""
    from domain.errors import ConfigError  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from domain.yamlio import regular_file  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from imaging.credentials import CredentialsError, verify_file  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    if file.exists():  # a FIFO or a device would be read forever; a missing file is verify_file's to say
        regular_file(file, error=ConfigError)
    settings = _settings()
    anchors = settings.c2pa.trust_anchors
    try:
        report = verify_file(file, trust_anchors=anchors)
    except CredentialsError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    if as_json:
        console.print_json(json.dumps(report.store))
    else:
        for line in report.lines():
            console.print(escape(line), highlight=False, soft_wrap=True)
    if not report.valid:
        raise typer.Exit(1)
