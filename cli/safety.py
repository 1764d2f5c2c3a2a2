"""``content-pipeline policy check TEXT`` and ``content-pipeline verify FILE`` (Typer + rich).

    content-pipeline policy check "a prompt"    verdict and rule; exit 1 when refused
    content-pipeline verify FILE [--json]         C2PA Content Credentials and the invisible
                                                  watermark of a file; exit 1 when the credentials
                                                  are invalid, or missing and no watermark is found

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


def _watermark(file: Path, settings: Any) -> Any:
    """The invisible watermark reading of ``file`` (imaging.watermark), or None when it does not decode as an image."""
    from domain.errors import InvalidImageError  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from imaging.watermark import WatermarkError, read_file  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    try:
        return read_file(file, config=settings.decode)
    except (InvalidImageError, WatermarkError, OSError):
        return None


def verify_cmd(
    file: Annotated[Path, typer.Argument(help="An image file (JPEG, PNG, WebP, AVIF).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole manifest store as JSON (the watermark under content_pipeline_watermark).")] = False,
) -> None:
    """Read and validate the C2PA Content Credentials of FILE (signer, validation state,
    digital source type, generator and ingredients) and read its invisible watermark, which
    survives stripped metadata. Exit 1 when the credentials are invalid, or when there are
    none and no watermark either."""
    from domain.errors import ConfigError  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from domain.yamlio import regular_file  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from imaging.credentials import CredentialsError, verify_file  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    if file.exists():  # a FIFO or a device would be read forever; a missing file is verify_file's to say
        regular_file(file, error=ConfigError)
    settings = _settings()
    anchors = settings.c2pa.trust_anchors
    report, missing = None, None
    try:
        report = verify_file(file, trust_anchors=anchors)
    except CredentialsError as exc:
        missing = str(exc)
    reading = _watermark(file, settings) if file.is_file() else None
    if missing is not None and reading is None:  # unreadable, not an image: one line
        err.print(f"[bold red]error:[/] {escape(missing)}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    if as_json:
        store: dict[str, Any] = dict(report.store) if report is not None else {"error": missing}
        store["content_pipeline_watermark"] = {"found": reading.found, "content_id": reading.content_id} if reading is not None else None
        console.print_json(json.dumps(store))
    else:
        for line in report.lines() if report is not None else [str(missing)]:
            console.print(escape(line), highlight=False, soft_wrap=True)
        if reading is not None:
            console.print(escape(f"  {reading.line()}"), highlight=False, soft_wrap=True)
    if (report is not None and not report.valid) or (report is None and not (reading is not None and reading.found)):
        raise typer.Exit(1)
