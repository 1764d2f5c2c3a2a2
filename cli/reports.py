"""``content-pipeline report``, ``share``, ``history`` and ``ab report``: what the recorded data says."""

from __future__ import annotations


import json
from pathlib import Path
from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlmodel import col, select

from domain.errors import TemplateError
from providers.registry import PROVIDERS
from cli.common import console, fail, load_settings, parse_day


def _as_date(value: date | None) -> date | None:
    """Typer hands ``formats=`` options over as datetimes: the day of one, or None."""
    return value.date() if isinstance(value, datetime) else value


def report_cmd(
    since: Annotated[
        date | None, typer.Option("--since", parser=parse_day, metavar="YYYY-MM-DD", help="First day (UTC); default 6 days before --until.")
    ] = None,
    until: Annotated[date | None, typer.Option("--until", parser=parse_day, metavar="YYYY-MM-DD", help="Last day, included (UTC); default today.")] = None,
    out: Annotated[str | None, typer.Option("--out", help="Folder for the charts and contact sheet; default <output_dir>/reports/<since>_<until>.")] = None,
    client: Annotated[str | None, typer.Option("--client", help="Only this client's images and calls (clients in the configuration).")] = None,
) -> None:
    """Per provider and model: images, success rate, mean / p95 seconds, cost, cost per image, quality;
    per client: spend, images, published, rejected, acceptance rate, cost per published image;
    writes PNG charts and an HTML contact sheet of the period's images."""

    from reporting.report import period, write_report  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from wiring.runtime import get_runtime  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    settings = load_settings()
    try:
        start, end = period(_as_date(since), _as_date(until))
    except ValueError as exc:
        raise fail(exc) from None
    if client is not None and settings.clients.get(client) is None:
        known = ", ".join(settings.clients.names()) or "none configured"
        raise fail(ValueError(f"--client {client[:40]!r}: no such client in {settings.config_file or 'the configuration'} (clients: {known})"))
    last_day = (end - timedelta(days=1)).date()
    folder = Path(out) if out else settings.output_dir / "reports" / (f"{start:%Y-%m-%d}_{last_day}" + (f"_{client}" if client else ""))
    rt = get_runtime()
    report, files = write_report(rt.db, rt.store, start, end, folder, daily_cap_usd=settings.budget.daily_usd, client=client)
    whose = f" for client {client}" if client else ""
    table = Table(title=f"{start:%Y-%m-%d} to {report.last_day} (UTC){whose}: {report.total_images} images, USD {report.total_cost:.2f}")
    from reporting.report import CLIENT_COLUMNS, COLUMNS  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("provider", "model") else "right")
    for row in report.rows():
        table.add_row(*(row[c] for c in COLUMNS))
    console.print(table)
    if not report.stats:
        console.print("no provider calls in this period")
    if report.shows_clients:
        clients = Table(title="per client")
        for column in CLIENT_COLUMNS:
            clients.add_column(column, justify="left" if column == "client" else "right")
        for line in report.clients:
            cells = line.cells()
            clients.add_row(*(cells[c] for c in CLIENT_COLUMNS))
        console.print(clients)
    for path in files:
        console.print(f"wrote {path}", highlight=False)
    from cli.publish import reservation_calendar  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    calendar = reservation_calendar(start.date())
    console.print(calendar if calendar is not None else "no reservations from the period's start on")


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
        console.print(
            f"{image_id}: {row.template} via {row.provider} ({row.status}); files in the local store {rt.store.root} (no expiry; copy them to share)",
            highlight=False,
            soft_wrap=True,
        )
    else:
        console.print(f"{image_id}: {row.template} via {row.provider} ({row.status}); presigned links valid {expires} s", highlight=False, soft_wrap=True)
    for rendition in renditions:
        console.print(
            f"{rendition.name:10} {rendition.width}x{rendition.height} {rt.store.presigned_url(rendition.storage_key, expires)}",
            highlight=False,
            soft_wrap=True,
        )


def _why(call: Any) -> str:
    """`` (error_class: message)`` of a failed or skipped call, shortened; empty for a success."""
    detail = ": ".join(part for part in (call.error_class, " ".join((call.error or "").split())[:200]) if part)
    return f" ({detail})" if detail else ""


def history_cmd(
    since: Annotated[
        date | None, typer.Option("--since", parser=parse_day, metavar="YYYY-MM-DD", help="First day (UTC); default 6 days before --until.")
    ] = None,
    until: Annotated[date | None, typer.Option("--until", parser=parse_day, metavar="YYYY-MM-DD", help="Last day, included (UTC); default today.")] = None,
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
        start, end = period(_as_date(since), _as_date(until))
    except ValueError as exc:
        raise fail(exc) from None
    db = get_runtime().db
    with db.session() as session:
        images = list(
            session.exec(select(ImageRecord).where(ImageRecord.created_at >= start, ImageRecord.created_at < end).order_by(col(ImageRecord.id)).limit(limit))
        )
        calls = list(
            session.exec(
                select(AttemptRecord)
                .where(AttemptRecord.image_pk.in_([i.id for i in images]))  # type: ignore[attr-defined]
                .order_by(col(AttemptRecord.id))
            )
        )
    by_image: dict[int, list[Any]] = {}
    for call in calls:
        by_image.setdefault(call.image_pk, []).append(call)
    console.print(f"{len(images)} generations from {start:%Y-%m-%d} to {(end - timedelta(days=1)):%Y-%m-%d} (UTC)", highlight=False)
    for image in images:
        story = ", ".join(f"{c.provider} {c.status} {c.latency_s:.1f}s USD {c.cost_usd:.3f}" + _why(c) for c in by_image.get(image.id or 0, []))
        console.print(
            f"\n[bold]{image.image_id}[/]  {image.created_at:%Y-%m-%d %H:%M}  trigger {image.trigger}  "
            f"{image.flow}/{image.template or '-'}  v{image.version}  {image.status}  USD {image.cost_usd:.3f}",
            highlight=False,
        )
        from storage.crypto import is_encrypted  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

        prompt = "(encrypted at rest: set PROMPT_ENCRYPTION_KEY to read it)" if is_encrypted(image.prompt) else image.prompt or "-"
        console.print(f"  prompt: {prompt}", highlight=False, markup=False, soft_wrap=True)
        console.print(f"  calls:  {story or '-'}", highlight=False, markup=False, soft_wrap=True)
        console.print(
            f"  {'stored: ' + image.storage_key if image.storage_key else 'error:  ' + (image.error or '-')}", highlight=False, markup=False, soft_wrap=True
        )


ab_app = typer.Typer(help="A/B tests of template variants.", no_args_is_help=True)


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
            raise fail(ValueError(f"--template {template!r}: no template with A/B variants by that name (known: {', '.join(sorted(variants)) or 'none'})"))
        variants = {template: variants[template]}
    rows = report(get_database(settings.database_url), template=template, config=settings.ab, variants=variants)
    if as_json:
        console.print_json(json.dumps([asdict(r) for r in rows]))
        return
    table = Table(title=f"A/B variants ({settings.ab.strategy}; prior Beta({settings.ab.prior_alpha:g}, {settings.ab.prior_beta:g}))")
    for column in ("template", "variant", "trials", "successes", "success rate", "mean quality", "alpha", "beta", "posterior mean", "P(best)"):
        table.add_column(column, justify="left" if column in ("template", "variant") else "right")
    for r in rows:
        table.add_row(
            r.template,
            r.variant,
            str(r.trials),
            str(r.successes),
            f"{r.success_rate:.0%}",
            "-" if r.mean_quality is None else f"{r.mean_quality:.3f}",
            f"{r.alpha:.2f}",
            f"{r.beta:.2f}",
            f"{r.posterior_mean:.3f}",
            f"{r.p_best:.0%}",
        )
    console.print(table)
