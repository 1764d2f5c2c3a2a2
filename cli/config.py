"""``content-pipeline config show`` and ``content-pipeline templates validate``."""

from __future__ import annotations


import json
from pathlib import Path

import typer
from rich.markup import escape

from domain.errors import ContentPipelineError
from providers.registry import PROVIDERS
from cli.common import console, err, load_settings


config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)


templates_app = typer.Typer(help="Work with prompt templates.", no_args_is_help=True)


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

    problems += policy_problems(library, styles=settings.styles, policy=settings.policy, load_reference=lambda value: _reference_bytes(value, library.folder))
    for problem in problems:
        err.print(f"[red]✗[/] {escape(problem)}", markup=True, highlight=False, soft_wrap=True)
    count = sum(len(v) for v in library.templates.values())
    if problems:
        raise typer.Exit(2)
    console.print(
        f"[green]✓[/] {count} templates in {len(library.templates)} categories "
        f"({', '.join(library.categories)}) and the schedules are valid: {settings.templates_dir}"
    )
