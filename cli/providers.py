"""``content-pipeline providers ...`` and ``content-pipeline models ...`` (Typer + rich).

    content-pipeline providers list [--all]          configured providers, models, prices (USD)
    content-pipeline providers check [NAME ...]      reachability and credentials, no money spent
    content-pipeline providers docs [--write]        README table, YAML examples, .env.example from the classes
    content-pipeline models pull civitai:<version>   a model or LoRA into the models folder

Exit codes: 0 success, 1 a check or a download failed, 2 bad configuration or argument.
Secrets are never printed: only whether each one is set.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from domain.errors import ConfigError, ContentPipelineError
import difflib

providers_app = typer.Typer(help="Image-generation providers: what is configured, and whether it works.", no_args_is_help=True)
models_app = typer.Typer(help="Local models and LoRAs for the diffusers provider.", no_args_is_help=True)

console = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 200)


def _settings_and_secrets() -> tuple[Any, Any]:
    from config.settings import get_secrets, get_settings  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    try:
        return get_settings(), get_secrets()
    except ConfigError as exc:
        err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None


def _prices(provider_cls: Any, config: Any) -> str:
    """The price table as ``model: USD`` or ``model: tier/tier/tier USD``."""
    if getattr(config, "cost_usd", 0):
        return f"{config.cost_usd:.3f} per image (cost_usd)"
    published = provider_cls.price_table
    table: dict[str, Any] = dict(published.prices) if published is not None else {}
    table.update(getattr(config, "prices_usd", {}) or {})
    if published is not None:
        table.update(
            {m: f"{published.hardware_usd_per_second[h]:g}/s ({h})" for m, h in published.model_hardware.items() if h in published.hardware_usd_per_second}
        )
    if not table:
        return "0 (self-hosted / local)" if not provider_cls.is_placeholder else "0 (placeholder)"
    unit = " /MP" if published is not None and published.unit == "megapixel" else ""
    parts = []
    for model, entry in table.items():
        if isinstance(entry, str):
            parts.append(f"{model}: {entry}")
        elif isinstance(entry, dict) and any(t in entry for t in ("standard", "hd", "ultra-hd")):
            tiers = "/".join(f"{entry[t]:g}" for t in ("standard", "hd", "ultra-hd") if t in entry)
            parts.append(f"{model}: {tiers}{unit} (std/hd/uhd)")
        elif isinstance(entry, dict):
            parts.append(f"{model}: " + ", ".join(f"{k} {v:g}" for k, v in entry.items()) + unit)
        else:
            parts.append(f"{model}: {entry:g}{unit}")
    source = f" [{published.source_url}, {published.checked}]" if published is not None else ""
    return "; ".join(parts) + source


def chain_use(name: str, settings: Any, secrets: Any) -> str:
    """Whether the chain calls provider ``name``: ``yes``, or ``no: <why>`` (not in the
    chain, disabled, or a key it needs is not set)."""
    from cli.doctor import missing_keys  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from providers.registry import provider_class  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    if name not in settings.chain:
        return "no: not in the chain"
    if not settings.provider_config(name).enabled:
        return f"no: providers.{name}.enabled is false"
    missing = missing_keys(provider_class(name), secrets)
    return f"no: {missing[0]} not set" if missing else "yes"


@providers_app.command("list")
def providers_list(
    show_all: Annotated[bool, typer.Option("--all", help="Every known provider, not only those of the chain.")] = False,
) -> None:
    """The providers of the chain (in order) with their model, known models, prices (USD) and secrets."""
    from providers.registry import PROVIDERS, provider_class  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    settings, secrets = _settings_and_secrets()
    names = list(settings.chain) + ([n for n in PROVIDERS if n not in settings.chain] if show_all else [])
    table = Table(title=f"providers (chain: {' -> '.join(settings.chain)})")
    for column in ("#", "provider", "used by the chain", "model", "other models", "price USD per image", "secrets", "kind"):
        table.add_column(column, overflow="fold")
    for name in names:
        cls = provider_class(name)
        config = settings.provider_config(name)
        position = str(settings.chain.index(name) + 1) if name in settings.chain else "-"
        used = chain_use(name, settings, secrets)
        model = config.model or cls.default_model or "-"
        if name == "diffusers":
            known = [f"{n} ({m.description or m.path})" for n, m in getattr(config, "models", {}).items()]
        else:
            known = [m for m in cls.models if m != model]
        secret_state = ", ".join(f"{names[0]}={'set' if secrets.lookup(names) is not None else 'not set'}" for names in cls.secret_env.values()) or "-"
        kind = "placeholder (never published)" if cls.is_placeholder else "real"
        table.add_row(position, f"{name}\n{cls.display_name}", used, model, ", ".join(known) or "-", _prices(cls, config), secret_state, kind)
    console.print(table)


@providers_app.command("docs")
def providers_docs(
    write: Annotated[bool, typer.Option("--write", help="Rewrite the files instead of checking them.")] = False,
    root: Annotated[Path | None, typer.Option("--root", help="The checkout holding README.md (default: this one).")] = None,
) -> None:
    """README.md's provider table, content-pipeline.yaml's provider examples and .env.example,
    generated from each provider class (cli/provider_docs.py). Without --write: prints how
    each checked-in file differs and exits 1 when one does (for CI)."""

    from cli.provider_docs import ROOT, generated  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    folder = root or ROOT
    try:
        files = generated(folder)
    except ConfigError as exc:
        err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    stale = [f for f in files if f.current != f.expected]
    for file in stale:
        if write:
            (folder / file.path).write_text(file.expected, encoding="utf-8")
            console.print(f"wrote {file.path}", highlight=False)
        else:
            diff = difflib.unified_diff(
                file.current.splitlines(keepends=True), file.expected.splitlines(keepends=True), f"{file.path} (checked in)", f"{file.path} (generated)"
            )
            sys.stdout.write("".join(diff))
    if stale and not write:
        err.print("[bold red]error:[/] provider docs are out of date: run content-pipeline providers docs --write", markup=True, highlight=False)
        raise typer.Exit(1)
    if not stale:
        console.print("provider docs are up to date", highlight=False)


@providers_app.command("check")
def providers_check(
    names: Annotated[list[str] | None, typer.Argument(help="Providers to check (default: the enabled ones of the chain).")] = None,
) -> None:
    """Reachability and credentials of each provider, through free endpoints (model lists,
    account, balance): no image is generated and nothing is spent."""
    from providers.download import SafeDownloader  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from providers.registry import PROVIDERS, provider_class  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    settings, secrets = _settings_and_secrets()
    chosen = names or [n for n in settings.chain if settings.provider_config(n).enabled]
    unknown = [n for n in chosen if n not in PROVIDERS]
    if unknown:
        err.print(f"[bold red]error:[/] unknown provider {unknown[0]!r} (known: {', '.join(sorted(PROVIDERS))})", markup=True, highlight=False)
        raise typer.Exit(2)
    downloader = SafeDownloader.from_config(settings.providers.download)
    failed = 0
    table = Table(title="provider check (no money spent)")
    for column in ("provider", "status", "detail"):
        table.add_column(column, overflow="fold")
    for name in chosen:
        try:
            provider = provider_class(name)(config=settings.provider_config(name), secrets=secrets, downloader=downloader)
            try:
                outcome = provider.check()
            finally:
                provider.close()
            ok, detail = outcome.ok, outcome.detail
        except ContentPipelineError as exc:
            ok, detail = False, str(exc)
        except Exception as exc:
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        for value in secrets.known_values():
            detail = detail.replace(value, "***")
        failed += not ok
        table.add_row(name, "[green]ok[/]" if ok else "[red]FAILED[/]", detail)
    console.print(table)
    if failed:
        raise typer.Exit(1)


@models_app.command("pull")
def models_pull(
    reference: Annotated[str, typer.Argument(help="civitai:<model-version-id>, e.g. civitai:128713")],
    models_dir: Annotated[Path | None, typer.Option("--models-dir", help="Default: providers.diffusers.models_dir.")] = None,
) -> None:
    """Download a model or LoRA from Civitai (CIVITAI_API_TOKEN), verify its SHA-256, resume
    an interrupted download, and print the configuration that uses it."""
    from providers.civitai import CivitaiClient  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    source, _, version = reference.partition(":")
    if source != "civitai" or not version.isdigit():
        err.print(f"[bold red]error:[/] {reference!r}: expected civitai:<model-version-id> (digits)", markup=True, highlight=False)
        raise typer.Exit(2)
    settings, secrets = _settings_and_secrets()
    base = settings.config_file.parent if settings.config_file else Path.cwd()
    folder = models_dir or settings.providers.diffusers.models_dir
    folder = folder if folder.is_absolute() else (base / folder).resolve()
    from providers.civitai import TOKEN_ENV  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    token = secrets.lookup(TOKEN_ENV)
    civitai = settings.providers.civitai
    client = CivitaiClient(base_url=civitai.base_url, token=token, timeout_s=civitai.timeout_s)
    try:
        file = client.version_file(int(version))
        console.print(f"{file.model_name} ({file.model_type}) -> {folder / file.folder / file.name}")
        with Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(), console=console
        ) as progress:
            task = progress.add_task(file.name, total=file.size_bytes or None)
            result = client.pull(file, folder, lambda done, total: progress.update(task, completed=done, total=total or None))
    except ContentPipelineError as exc:
        err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
        raise typer.Exit(1) from None
    how = "already present" if result.already_present else (f"resumed at {result.resumed_from} bytes" if result.resumed_from else "downloaded")
    console.print(f"[green]✓[/] {how}: {result.path} ({result.size_bytes} bytes, SHA-256 {result.sha256} verified)")
    stem = Path(file.name).stem.lower().replace(" ", "-")
    if file.folder == "loras":
        console.print(f"use it under a model of providers.diffusers.models:\n  loras:\n    {stem}: {{path: {result.path}, weight: 0.8, trigger_words: []}}")
    else:
        console.print(f"use it in providers.diffusers.models:\n  {stem}: {{path: {result.path}, pipeline: sd15}}")
