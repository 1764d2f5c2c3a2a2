"""The publishing commands of ``content-pipeline`` (registered on the main Typer app).

    content-pipeline review list [--category C]
    content-pipeline review approve IMAGE... [--reviewer NAME] [--note TEXT]
    content-pipeline review reject IMAGE... --note TEXT [--reviewer NAME]
    content-pipeline reserve --category food --for 2026-12-03 [--channel instagram] [--no-on-demand]
    content-pipeline release RESERVATION_ID
    content-pipeline regenerate IMAGE [--seed N] [--provider P]
    content-pipeline versions IMAGE
    content-pipeline backup verify

Exit codes: 0 success, 1 refused / not found / differences found, 2 bad configuration.
"""

from __future__ import annotations

import getpass
from datetime import date, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlmodel import select

from cli.common import parse_day

review_app = typer.Typer(help="Review images waiting for a decision (categories with review: required).", no_args_is_help=True)
backup_app = typer.Typer(help="The backup store (publishing.backup_url).", no_args_is_help=True)


def _console() -> tuple[Console, Console]:
    from cli.common import console, err  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    return console, err


def _fail(message: str, code: int = 1) -> typer.Exit:
    _console()[1].print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    return typer.Exit(code)


def _runtime() -> Any:
    from cli.common import load_settings  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from wiring.runtime import get_runtime  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    load_settings()  # a bad configuration: one clear line, exit 2
    return get_runtime()


def _reviewer(value: str | None) -> str:
    if value:
        return value
    try:
        return f"{getpass.getuser()} (cli)"
    except Exception:
        return "cli"


def _rows(image_ids: list[str], where: str = "") -> list[Any]:
    """The rows of ``image_ids``; an unknown id: one line saying where the ids are listed
    (``where``: "review", for the review commands), exit 2."""
    from publishing.versions import find_image  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    rt = _runtime()
    rows = []
    for image_id in image_ids:
        try:
            rows.append(find_image(rt.db, image_id))
        except KeyError as exc:
            if where == "review":
                raise _fail(f"no image {image_id[:40]!r} in review: content-pipeline review list shows the ids", 2) from None
            raise _fail(str(exc.args[0] if exc.args else exc)) from None
    return rows


@review_app.command("list")
def review_list(category: Annotated[str | None, typer.Option(help="Only this category.")] = None) -> None:
    """The images waiting in review: id, version, category, template, provider, USD, prompt, file."""

    from domain.model import ImageStatus  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from storage.db import ImageRecord  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    console, _ = _console()
    rt = _runtime()
    with rt.db.session() as session:
        query = select(ImageRecord).where(ImageRecord.status == ImageStatus.in_review.value)
        if category:
            query = query.where(ImageRecord.category == category)
        rows = list(session.exec(query.order_by(ImageRecord.id)))  # type: ignore[arg-type]
    table = Table(title=f"{len(rows)} image(s) in review")
    for column in ("image", "v", "category", "template", "provider", "USD", "prompt", "file"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row.image_id,
            str(row.version),
            row.category,
            row.template or "-",
            row.provider or "-",
            f"{row.cost_usd:.3f}",
            (row.prompt or "-")[:80],
            row.storage_key or "-",
        )
    console.print(table)


def _decide(image_ids: list[str], reviewer: str | None, note: str | None, approve: bool) -> None:
    from domain.errors import ReviewerRefusedError  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from domain.model import ImageStatus  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    console, _ = _console()
    rows = _rows(image_ids, "review")
    publisher = _runtime().publisher()
    who = _reviewer(reviewer)
    failed = 0
    for row in rows:
        if ImageStatus(row.status) is not ImageStatus.in_review:
            _console()[1].print(f"image {row.image_id} is {row.status}, not in review: left as it is", highlight=False)
            failed += 1
            continue
        try:
            done = publisher.approve(row.id, who, note) if approve else publisher.reject(row.id, who, note)
        except ReviewerRefusedError as exc:
            _console()[1].print(f"error: {exc}", highlight=False)
            failed += 1
            continue
        console.print(
            f"{done.image_id}: {'published at ' + (done.storage_key or '-') if approve else 'rejected, kept at ' + (done.storage_key or '-')} (by {who})",
            highlight=False,
        )
    publisher.deliver_new()
    if failed:
        raise typer.Exit(1)


@review_app.command("approve")
def review_approve(
    images: Annotated[list[str], typer.Argument(help="Image ids (review list shows them).")],
    reviewer: Annotated[str | None, typer.Option(help="Your name (default: the login name).")] = None,
    note: Annotated[str | None, typer.Option(help="A note recorded on the images.")] = None,
) -> None:
    """Approve images in review: each is published (under content/, announced, backed up)."""
    _decide(images, reviewer, note, approve=True)


@review_app.command("reject")
def review_reject(
    images: Annotated[list[str], typer.Argument(help="Image ids (review list shows them).")],
    note: Annotated[str, typer.Option(help="Why: recorded on the images and next to their files.")],
    reviewer: Annotated[str | None, typer.Option(help="Your name (default: the login name).")] = None,
) -> None:
    """Reject images in review: their files move under rejected/ with the note."""
    _decide(images, reviewer, note, approve=False)


def reserve_cmd(
    category: Annotated[str, typer.Option("--category", help="The image category (food, products ...).")],
    for_date: Annotated[
        date | None,
        typer.Option("--for", parser=parse_day, metavar="YYYY-MM-DD", help="The post's date (YYYY-MM-DD); default tomorrow in the configured timezone."),
    ] = None,
    channel: Annotated[str | None, typer.Option(help="Where it will be posted (instagram ...).")] = None,
    on_demand: Annotated[bool, typer.Option(help="When none is free, request a generation (on-demand template).")] = True,
) -> None:
    """Reserve the best free published image of a category for a post (atomic: never shared)."""
    from storage.ledger import ImageLedger  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from generation.plan import local_today  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from publishing.reserve import reserve, unknown_category  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    console, _ = _console()
    rt = _runtime()
    problem = unknown_category(category, rt.library.categories)
    if problem:
        raise _fail(problem, 2)
    day = for_date or local_today(rt.settings.timezone) + timedelta(days=1)
    outcome = reserve(ImageLedger(rt.db), rt.settings, category, day, channel=channel, reserved_by=_reviewer(None), on_demand=on_demand)
    if outcome.state != "reserved":
        raise _fail(outcome.message)
    assert outcome.image is not None
    console.print(outcome.message, highlight=False)
    console.print(f"  {outcome.image.storage_key}  quality {outcome.image.quality_score}", highlight=False)


def release_cmd(reservation: Annotated[int, typer.Argument(help="The reservation number (report lists them).")]) -> None:
    """Release a reservation: its image is free again."""
    from storage.reservations import release_reservation  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    console, _ = _console()
    try:
        done = release_reservation(_runtime().db, reservation)
    except KeyError:
        raise _fail(f"no reservation {reservation}") from None
    console.print(f"reservation {done.id} of {done.for_date} released", highlight=False)


def regenerate_cmd(
    image: Annotated[str, typer.Argument(help="The image id to regenerate.")],
    seed: Annotated[int | None, typer.Option(min=0, max=2**32 - 1, help="Seed of the new version (default: new).")] = None,
    provider: Annotated[str | None, typer.Option(help="Only this provider (default: the chain).")] = None,
) -> None:
    """Make version n+1 of an image's slot; it is published or waits in review like any new image."""
    from cli.common import prefect_defaults  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from flows.review import regenerate_image  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    console, _ = _console()
    [row] = _rows([image])
    prefect_defaults()
    try:
        result = regenerate_image(image_id=row.image_id, seed=-1 if seed is None else seed, provider=provider or "")
    except ValueError as exc:
        raise _fail(str(exc)) from None
    console.print(
        f"{result['previous']} -> {result['image_id']} (version {result['version']}): {result['status']}"
        f"{'  ' + result['storage_key'] if result['storage_key'] else ''}",
        highlight=False,
    )
    if result["status"] not in ("done", "in_review"):
        raise typer.Exit(1)


def versions_cmd(image: Annotated[str, typer.Argument(help="Any version's image id.")]) -> None:
    """The version chain of an image's slot: every version, who reviewed it, where it is."""
    [row] = _rows([image])
    print_versions(row)


def print_versions(row: Any) -> None:
    from storage.versions import versions  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    console, _ = _console()
    chain = versions(_runtime().db, row.id)
    by_pk = {r.id: r for r in chain}
    table = Table(title=f"slot {row.flow}/{row.run_date}/{row.slot}#{row.slot_index}: {len(chain)} version(s)")
    for column in ("v", "image", "from", "status", "published", "reviewed", "note", "file"):
        table.add_column(column, overflow="fold")
    for r in chain:
        previous = by_pk.get(r.previous_pk)
        table.add_row(
            str(r.version),
            r.image_id,
            previous.image_id if previous else "-",
            r.status,
            f"{r.published_at:%Y-%m-%d %H:%M}" if r.published_at else "-",
            f"{r.reviewed_by} {r.reviewed_at:%Y-%m-%d %H:%M}" if r.reviewed_at else "-",
            (r.review_note or "-")[:80],
            r.storage_key or "-",
        )
    console.print(table)


@backup_app.command("verify")
def backup_verify() -> None:
    """Compare every published object (content/) with the backup store; exit 1 when any is
    missing or differs there."""
    from storage.backup import open_backup, verify  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    console, _ = _console()
    rt = _runtime()
    backup = open_backup(rt.settings, rt.secrets)
    if backup is None:
        raise _fail("no backup store: set publishing.backup_url (file:///path or s3://bucket/prefix)", 2)
    report = verify(rt.store, backup)
    for key in report.missing:
        console.print(f"missing   {key}", highlight=False)
    for key, expected, actual in report.differing:
        console.print(f"differs   {key} (sha256 {expected[:12]} here, {actual[:12]} in the backup)", highlight=False)
    console.print(f"{len(report.checked)} objects checked: {len(report.missing)} missing, {len(report.differing)} differing", highlight=False)
    if not report.ok:
        raise typer.Exit(1)


def reservation_calendar(start: date, days: int = 30) -> Table | None:
    """A table of the active reservations from ``start`` for ``days`` days (None when none)."""
    from storage.ledger import ImageLedger  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from storage.reservations import list_reservations  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    rt = _runtime()
    ledger = ImageLedger(rt.db)
    reservations = list_reservations(rt.db, since=start, until=start + timedelta(days=days))
    if not reservations:
        return None
    images = {r.id: r for r in ledger.rows(sorted({x.image_pk for x in reservations}))}
    table = Table(title=f"reservations {start} to {start + timedelta(days=days)}")
    for column in ("date", "channel", "category", "image", "file", "reservation"):
        table.add_column(column, overflow="fold")
    for r in reservations:
        image = images[r.image_pk]
        table.add_row(r.for_date.isoformat(), r.channel or "-", r.category, image.image_id, image.storage_key or "-", str(r.id))
    return table


def register(app: typer.Typer) -> None:
    """Add the publishing commands to the ``content-pipeline`` app."""
    app.add_typer(review_app, name="review")
    app.add_typer(backup_app, name="backup")
    app.command("reserve")(reserve_cmd)
    app.command("release")(release_cmd)
    app.command("regenerate")(regenerate_cmd)
    app.command("versions")(versions_cmd)
