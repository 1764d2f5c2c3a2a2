"""Reports over the recorded data: per provider and model, charts, a contact sheet.

``build_report(db, since, until)`` reads the attempts and images of ``[since, until)``
(UTC, timezone-aware) and returns, per (provider, model): images made, success rate
(successful / (successful + failed) calls; skipped calls are not calls), mean and
95th-percentile seconds of the successful calls, cost in USD, cost per image and the
mean quality score (``ImageRecord.quality_score`` where the quality stage recorded
one, else n/a). Every call counts under its provider: a call that failed before the
server said which model it runs (model ``server-default``, none) counts under the
provider's only model of the period, else under ``(unknown)`` (``model_of``).

Per client (config/clients.py; the client recorded on each image row): ``Report.clients``
holds, per client (``-``: images of no client), the spend (USD of the calls made for its
images in the period), the real images made, those published and rejected, the
acceptance rate (published / (published + rejected): the share of decided images a person,
or an auto-publishing category, let out) and the cost per published image. With
``client=`` the whole report covers that client's images and calls only.

``write_charts`` draws PNGs with matplotlib (cost per day with the daily budget cap,
success rate and latency per provider); ``write_contact_sheet`` writes one
self-contained HTML page (charts and thumbnails inlined as data URIs) of the period's
images.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from domain.errors import StorageError
from storage.db import AttemptRecord, Database, ImageRecord, RenditionRecord
from storage.objects import LocalStore, ObjectStore
import numpy as np
from PIL import Image
from storage.crypto import is_encrypted


#: The report's columns, in order.
COLUMNS = ("provider", "model", "images", "success", "mean s", "p95 s", "cost USD", "USD/image", "quality")
#: The per-client table's columns, in order.
CLIENT_COLUMNS = ("client", "spend USD", "images", "published", "rejected", "acceptance", "USD/published")
#: The client column of images that belong to no client.
NO_CLIENT = "-"


@dataclass(frozen=True)
class ClientStats:
    """One line of the per-client table over the period (USD; counts of images)."""

    client: str
    cost_usd: float
    images: int
    published: int
    rejected: int

    @property
    def acceptance_rate(self) -> float | None:
        """Published share of the decided images (0..1), None when none was decided."""
        decided = self.published + self.rejected
        return self.published / decided if decided else None

    @property
    def cost_per_published(self) -> float | None:
        """USD spent per published image, None when none was published."""
        return self.cost_usd / self.published if self.published else None

    def cells(self) -> dict[str, str]:
        """The line as text cells, by CLIENT_COLUMNS."""
        rate, unit = self.acceptance_rate, self.cost_per_published
        return {
            "client": self.client,
            "spend USD": f"{self.cost_usd:.2f}",
            "images": str(self.images),
            "published": str(self.published),
            "rejected": str(self.rejected),
            "acceptance": "n/a" if rate is None else f"{rate * 100:.0f} %",
            "USD/published": "n/a" if unit is None else f"{unit:.3f}",
        }


@dataclass(frozen=True)
class ProviderStats:
    """One line of the report: a provider and model over the period (USD, seconds)."""

    provider: str
    model: str
    images: int
    calls: int
    failures: int
    mean_s: float | None
    p95_s: float | None
    cost_usd: float
    mean_quality: float | None

    @property
    def success_rate(self) -> float | None:
        """Successful share of the calls (0..1), None without calls."""
        return self.images / self.calls if self.calls else None

    @property
    def cost_per_image(self) -> float | None:
        return self.cost_usd / self.images if self.images else None


@dataclass
class Report:
    since: datetime
    until: datetime
    stats: list[ProviderStats]
    #: {day: {provider: USD}} for the cost-per-day chart
    cost_per_day: dict[date, dict[str, float]]
    images: list[ImageRecord] = field(default_factory=list)
    #: Per client (``-``: no client), sorted by name; the report's own client when it has one.
    clients: list[ClientStats] = field(default_factory=list)
    #: The client the report is limited to (None: every image).
    client: str | None = None

    @property
    def last_day(self) -> date:
        """The last day the period includes (``until`` is exclusive)."""
        return (self.until - timedelta(microseconds=1)).date()

    @property
    def total_cost(self) -> float:
        return sum(s.cost_usd for s in self.stats)

    @property
    def total_images(self) -> int:
        return sum(s.images for s in self.stats)

    def rows(self) -> list[dict[str, str]]:
        """The report as text cells, one dict per provider and model."""

        def fmt(value: float | None, pattern: str) -> str:
            return "n/a" if value is None else pattern.format(value)

        return [
            {
                "provider": s.provider,
                "model": s.model,
                "images": str(s.images),
                "success": fmt(None if s.success_rate is None else s.success_rate * 100, "{:.0f} %"),
                "mean s": fmt(s.mean_s, "{:.2f}"),
                "p95 s": fmt(s.p95_s, "{:.2f}"),
                "cost USD": f"{s.cost_usd:.2f}",
                "USD/image": fmt(s.cost_per_image, "{:.3f}"),
                "quality": fmt(s.mean_quality, "{:.2f}"),
            }
            for s in self.stats
        ]

    def text(self) -> str:
        """A plain-text table (fixed width) for messages and logs."""
        rows = self.rows()
        header = list(COLUMNS)
        widths = {h: max([len(h)] + [len(r[h]) for r in rows]) for h in header}
        lines = ["  ".join(h.ljust(widths[h]) for h in header)]
        lines += ["  ".join(r[h].ljust(widths[h]) for h in header) for r in rows]
        whose = f" for client {self.client}" if self.client else ""
        lines.append(f"total{whose}: {self.total_images} images, USD {self.total_cost:.2f}, {self.since:%Y-%m-%d} to {self.last_day} (UTC)")
        if self.shows_clients:
            cells = [c.cells() for c in self.clients]
            widths = {h: max([len(h)] + [len(r[h]) for r in cells]) for h in CLIENT_COLUMNS}
            lines += ["", "per client:", "  ".join(h.ljust(widths[h]) for h in CLIENT_COLUMNS)]
            lines += ["  ".join(r[h].ljust(widths[h]) for h in CLIENT_COLUMNS) for r in cells]
        return "\n".join(lines)

    @property
    def shows_clients(self) -> bool:
        """Whether the per-client table says anything: a client's report, or images of a client."""
        return bool(self.client) or any(c.client != NO_CLIENT for c in self.clients)


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100, linear interpolation, numpy's default method)."""

    return float(np.percentile(values, q)) if values else None


def build_report(db: Database, since: datetime, until: datetime, *, client: str | None = None) -> Report:
    """Per-provider-and-model and per-client figures of ``[since, until)`` (of ``client``'s
    images and their calls only, when given); see the module docstring."""
    with db.session() as session:
        attempt_query = select(AttemptRecord, ImageRecord.client).join(ImageRecord, col(ImageRecord.id) == col(AttemptRecord.image_pk))
        attempt_query = attempt_query.where(AttemptRecord.created_at >= since, AttemptRecord.created_at < until)
        image_query = select(ImageRecord).where(ImageRecord.created_at >= since, ImageRecord.created_at < until)
        if client is not None:
            attempt_query = attempt_query.where(ImageRecord.client == client)
            image_query = image_query.where(ImageRecord.client == client)
        pairs = list(session.exec(attempt_query.order_by(col(AttemptRecord.id))))
        images = list(session.exec(image_query.order_by(col(ImageRecord.id))))
    attempts = [attempt for attempt, _ in pairs]
    groups: dict[tuple[str, str], list[AttemptRecord]] = defaultdict(list)
    cost_per_day: dict[date, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    called = [a for a in attempts if a.status != "skipped"]
    known: dict[str, set[str]] = defaultdict(set)
    for attempt in called:
        if not model_unknown(attempt.model):
            known[attempt.provider].add(str(attempt.model))
    for attempt in called:
        groups[(attempt.provider, model_of(attempt, known[attempt.provider]))].append(attempt)
        day = _aware(attempt.created_at).date()
        cost_per_day[day][attempt.provider] += attempt.cost_usd
    quality: dict[tuple[str, str], list[float]] = defaultdict(list)
    for image in images:
        score = getattr(image, "quality_score", None)
        if score is not None and image.provider:
            quality[(image.provider, image.model or "-")].append(float(score))
    stats = []
    for (provider, model), rows in sorted(groups.items()):
        ok = [a.latency_s for a in rows if a.status == "success"]
        scores = quality.get((provider, model), [])
        stats.append(
            ProviderStats(
                provider=provider,
                model=model,
                images=len(ok),
                calls=len(rows),
                failures=sum(1 for a in rows if a.status == "failed"),
                mean_s=sum(ok) / len(ok) if ok else None,
                p95_s=percentile(ok, 95),
                cost_usd=round(sum(a.cost_usd for a in rows), 6),
                mean_quality=sum(scores) / len(scores) if scores else None,
            )
        )
    days = {d: dict(v) for d, v in sorted(cost_per_day.items())}
    done = [i for i in images if i.status in ("uploaded", "done")]
    return Report(since, until, stats, days, done, client_stats(pairs, images, client), client)


def client_stats(pairs: list[Any], images: list[ImageRecord], client: str | None = None) -> list[ClientStats]:
    """Per client: ``pairs`` are (attempt, its image's client), ``images`` the period's rows."""
    spend: dict[str, float] = defaultdict(float)
    for attempt, owner in pairs:
        spend[owner or NO_CLIENT] += attempt.cost_usd
    made: dict[str, list[ImageRecord]] = defaultdict(list)
    for image in images:
        made[image.client or NO_CLIENT].append(image)
    names = sorted(set(spend) | set(made) | ({client} if client else set()))
    return [
        ClientStats(
            client=name,
            cost_usd=round(spend.get(name, 0.0), 6),
            images=sum(1 for i in made.get(name, []) if i.generated_at is not None and not i.is_placeholder),
            published=sum(1 for i in made.get(name, []) if i.published_at is not None),
            rejected=sum(1 for i in made.get(name, []) if i.status == "rejected"),
        )
        for name in names
    ]


#: Model names that say "whichever model the server has loaded": not a model.
UNKNOWN_MODELS = frozenset({"", "-", "server-default"})


def model_unknown(model: str | None) -> bool:
    """True when an attempt's model does not name a model (a failure before any answer)."""
    return model is None or model.strip() in UNKNOWN_MODELS


def model_of(attempt: AttemptRecord, known: set[str]) -> str:
    """The report row of ``attempt``'s model: its own when known; else the provider's only
    known model of the period (a call that failed before the server said which model it
    runs used that one), else ``(unknown)``. Never a row of its own for a placeholder name."""
    if not model_unknown(attempt.model):
        return str(attempt.model)
    return next(iter(known)) if len(known) == 1 else "(unknown)"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# -- charts ---------------------------------------------------------------------------------
def write_charts(report: Report, out_dir: Path, daily_cap_usd: float | None = None) -> list[Path]:
    """``cost-per-day.png``, ``success-rate.png`` and ``latency.png`` in ``out_dir`` (PNG, 100 dpi).

    The cost chart draws ``daily_cap_usd`` (the global daily budget, USD) as a dashed line
    and its axis starts at 0 (a period where every cost is 0 gets the axis 0..1 or 0..cap)."""
    import matplotlib  # noqa: PLC0415 - matplotlib: heavy, only for report charts

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415 - matplotlib: heavy, only for report charts

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []

    days = []
    day = report.since.date()
    while day < report.until.date() or (day == report.until.date() and report.until.time() != datetime.min.time()):
        days.append(day)
        day += timedelta(days=1)
    providers = sorted({p for per_day in report.cost_per_day.values() for p in per_day})
    fig, ax = plt.subplots(figsize=(8, 4))
    bottom = [0.0] * len(days)
    for provider in providers:
        values = [report.cost_per_day.get(d, {}).get(provider, 0.0) for d in days]
        ax.bar([d.strftime("%m-%d") for d in days], values, bottom=bottom, label=provider)
        bottom = [b + v for b, v in zip(bottom, values)]
    if daily_cap_usd:
        ax.axhline(daily_cap_usd, color=CAP_COLOUR, linestyle="--", linewidth=2, label=f"daily cap USD {daily_cap_usd:g}")
    ax.set_ylim(*cost_axis(bottom, daily_cap_usd))
    ax.set_title("Cost per day (USD)")
    ax.set_ylabel("USD")
    if providers or daily_cap_usd:
        ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    paths.append(_save(fig, out_dir / "cost-per-day.png"))

    labels = [f"{s.provider}\n{s.model[:24]}" for s in report.stats]
    fig, ax = plt.subplots(figsize=(8, 4))
    rates = [(s.success_rate or 0.0) * 100 for s in report.stats]
    ax.bar(labels, rates, color="#4c9a2a")
    ax.set_ylim(0, 100)
    ax.set_ylabel("% of calls")
    ax.set_title("Success rate per provider and model")
    for index, rate in enumerate(rates):
        ax.annotate(f"{rate:.0f} %", (index, rate), ha="center", va="bottom")
    fig.tight_layout()
    paths.append(_save(fig, out_dir / "success-rate.png"))

    fig, ax = plt.subplots(figsize=(8, 4))
    xs = range(len(report.stats))
    ax.bar([x - 0.2 for x in xs], [s.mean_s or 0.0 for s in report.stats], width=0.4, label="mean")
    ax.bar([x + 0.2 for x in xs], [s.p95_s or 0.0 for s in report.stats], width=0.4, label="p95")
    ax.set_xticks(list(xs), labels)
    ax.set_ylabel("seconds")
    ax.set_title("Latency of successful calls")
    ax.legend()
    fig.tight_layout()
    paths.append(_save(fig, out_dir / "latency.png"))
    return paths


#: The colour of the budget-cap line on the cost chart.
CAP_COLOUR = "#c0392b"


def cost_axis(day_totals: list[float], daily_cap_usd: float | None) -> tuple[float, float]:
    """The cost chart's y range (USD): from 0 (never negative, even when every cost is 0,
    where matplotlib would centre the axis on 0) to 15 % above the highest day or the cap."""
    highest = max([*day_totals, daily_cap_usd or 0.0, 0.0])
    return 0.0, highest * 1.15 if highest > 0 else 1.0


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt  # noqa: PLC0415 - matplotlib: heavy, only for report charts

    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# -- contact sheet ------------------------------------------------------------------------------
def _thumbnail(db: Database, store: ObjectStore, image: ImageRecord, side: int = 256) -> str | None:
    """A JPEG data URI of ``image`` at most ``side`` pixels, or None when the store cannot give it."""

    with db.session() as session:
        renditions = list(session.exec(select(RenditionRecord).where(RenditionRecord.image_pk == image.id)))
    by_name = {r.name: r for r in renditions}
    candidates = [r.storage_key for r in sorted(renditions, key=lambda r: r.bytes) if r.name != "original"]
    if "original" in by_name:
        candidates.append(by_name["original"].storage_key)
    elif image.storage_key:
        candidates.append(image.storage_key)
    for key in candidates:
        try:
            data = store.get(key)
            with Image.open(io.BytesIO(data)) as opened:
                picture = opened.convert("RGB")
                picture.thumbnail((side, side))
                buffer = io.BytesIO()
                picture.save(buffer, "JPEG", quality=80)
            return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
        except (StorageError, OSError, ValueError):
            continue
    return None


#: The inlined contact sheet of a report on a local store: tiles of ``SHEET_TILE`` pixels,
#: ``SHEET_COLUMNS`` a row, at most ``SHEET_MAX_IMAGES`` images and ``SHEET_MAX_BYTES`` bytes of JPEG.
SHEET_TILE = 160
SHEET_COLUMNS = 6
SHEET_MAX_IMAGES = 60
SHEET_MAX_BYTES = 400_000


def contact_sheet_data_uri(report: Report, db: Database, store: ObjectStore, max_bytes: int = SHEET_MAX_BYTES) -> str | None:
    """One JPEG of the period's images (the first ``SHEET_MAX_IMAGES``, ``SHEET_TILE``-pixel
    tiles, ``SHEET_COLUMNS`` a row) as a ``data:image/jpeg;base64,...`` URI of at most
    ``max_bytes`` bytes (lower quality, then smaller, until it fits): what the Prefect UI
    shows where a ``file://`` link would be refused. None without a readable image."""
    tiles: list[Image.Image] = []
    for image in report.images[:SHEET_MAX_IMAGES]:
        uri = _thumbnail(db, store, image, side=SHEET_TILE)
        if uri:
            with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as opened:
                tiles.append(opened.convert("RGB"))
    if not tiles:
        return None
    rows = (len(tiles) + SHEET_COLUMNS - 1) // SHEET_COLUMNS
    sheet: Image.Image = Image.new("RGB", (min(len(tiles), SHEET_COLUMNS) * SHEET_TILE, rows * SHEET_TILE), "white")
    for index, tile in enumerate(tiles):
        column, row = index % SHEET_COLUMNS, index // SHEET_COLUMNS
        sheet.paste(tile, (column * SHEET_TILE + (SHEET_TILE - tile.width) // 2, row * SHEET_TILE + (SHEET_TILE - tile.height) // 2))
    while sheet.width >= 64:
        for quality in (80, 65, 50, 35):
            buffer = io.BytesIO()
            sheet.save(buffer, "JPEG", quality=quality, optimize=True)
            if buffer.tell() <= max_bytes:
                return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
        sheet = sheet.resize((sheet.width // 2, max(1, sheet.height // 2)))
    return None


def _link(store: ObjectStore, key: str | None) -> str:
    """The key as a link to the stored file (presigned on S3), or plain text when the store cannot sign."""
    if not key:
        return ""
    try:
        return f'<a href="{html.escape(store.url(key))}">{html.escape(key)}</a>'
    except StorageError:
        return html.escape(key)


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="icon" href="data:,">
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; background: #f6f6f4; color: #222; }}
h1 {{ font-size: 20px; margin: 0 0 4px; }} p.sub {{ margin: 0 0 16px; color: #555; }}
table {{ border-collapse: collapse; margin-bottom: 20px; font-size: 13px; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }} th {{ background: #e8e8e4; }}
td:first-child, td:nth-child(2) {{ text-align: left; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 14px; }}
.card {{ background: #fff; border-radius: 6px; box-shadow: 0 1px 3px rgba(0,0,0,.15); overflow: hidden; font-size: 12px; }}
.card img {{ width: 100%; height: 200px; object-fit: cover; display: block; background: #ddd; }}
.card .missing {{ height: 200px; display: flex; align-items: center; justify-content: center; background: #eee; color: #888; }}
.card .meta {{ padding: 8px; }} .card .prompt {{ color: #444; margin-top: 4px; }}
.badge {{ display: inline-block; padding: 1px 6px; border-radius: 3px; background: #e0e0e0; margin-right: 4px; }}
.badge.placeholder {{ background: #f3c0c0; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 20px; }}
.chart {{ width: 560px; max-width: 100%; background: #fff; border-radius: 6px; }}
</style></head><body>
<h1>{title}</h1><p class="sub">{subtitle}</p>
{table}
<div class="grid">
{cards}
</div></body></html>
"""


def _shown_prompt(image: Any) -> str:
    """The prompt a contact sheet shows: none for a private one (``embed_prompt: false``) or
    one still encrypted at rest."""

    if getattr(image, "prompt_private", False) or is_encrypted(image.prompt):
        return ""
    return str(image.prompt or "")


def write_contact_sheet(report: Report, db: Database, store: ObjectStore, path: Path, charts: list[Path] | None = None) -> Path:
    """One self-contained HTML page: the report table, the ``charts`` (PNG files, inlined
    as data URIs) and a card per image (thumbnail, prompt, provider, cost)."""
    esc = html.escape
    rows = report.rows()
    header = list(COLUMNS)
    table = "<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>"
    table += "".join("<tr>" + "".join(f"<td>{esc(r[h])}</td>" for h in header) + "</tr>" for r in rows) + "</table>"
    if report.shows_clients:
        cells = [c.cells() for c in report.clients]
        table += "<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in CLIENT_COLUMNS) + "</tr>"
        table += "".join("<tr>" + "".join(f"<td>{esc(r[h])}</td>" for h in CLIENT_COLUMNS) + "</tr>" for r in cells) + "</table>"
    if charts:
        table += (
            '<div class="charts">'
            + "".join(f'<img class="chart" alt="{esc(c.stem)}" src="data:image/png;base64,{base64.b64encode(c.read_bytes()).decode()}">' for c in charts)
            + "</div>"
        )
    cards = []
    for image in report.images:
        thumb = _thumbnail(db, store, image)
        picture = f'<img src="{thumb}" alt="{esc(image.template or image.category)}">' if thumb else '<div class="missing">image not available</div>'
        badges = f'<span class="badge">{esc(image.category)}</span>'
        if image.is_placeholder:
            badges += '<span class="badge placeholder">placeholder</span>'
        cards.append(
            f'<div class="card">{picture}<div class="meta">{badges}<br>'
            f"<b>{esc(image.template or '-')}</b> · {esc(image.provider or '-')} · {esc(image.model or '-')}<br>"
            f"USD {image.cost_usd:.3f} · {image.seconds:.1f} s · seed {image.seed} · {esc(image.trigger)}<br>"
            f'<div class="prompt">{esc(_shown_prompt(image)[:240])}</div>'
            f"<small>{_link(store, image.storage_key)}</small></div></div>"
        )
    page = _PAGE.format(
        title=esc(f"content-pipeline{f' ({report.client})' if report.client else ''}: {report.since:%Y-%m-%d} to {report.last_day}"),
        subtitle=esc(f"{len(report.images)} images, {report.total_images} successful calls, USD {report.total_cost:.2f}"),
        table=table,
        cards="\n".join(cards) or "<p>No images in this period.</p>",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def period(since: date | None, until: date | None, *, days: int = 7, today: date | None = None) -> tuple[datetime, datetime]:
    """``[since, until)`` as aware UTC datetimes; ``until`` is inclusive as a date (default
    today), ``since`` defaults to ``days`` days before it. ValueError when since > until."""
    end = until or today or datetime.now(UTC).date()
    start = since or end - timedelta(days=days - 1)
    if start > end:
        raise ValueError(f"--since {start} is after --until {end}")
    return (datetime.combine(start, datetime.min.time(), UTC), datetime.combine(end + timedelta(days=1), datetime.min.time(), UTC))


def write_report(
    db: Database, store: ObjectStore, since: datetime, until: datetime, out_dir: Path, daily_cap_usd: float | None = None, *, client: str | None = None
) -> tuple[Report, list[Path]]:
    """Build the report (of ``client`` only, when given) and write its charts and contact sheet
    (``index.html``, charts shown in it) in ``out_dir``; ``daily_cap_usd`` is drawn on the cost chart."""
    report = build_report(db, since, until, client=client)
    files = write_charts(report, out_dir, daily_cap_usd)
    files.append(write_contact_sheet(report, db, store, out_dir / "index.html", charts=list(files)))
    return report, files


def _as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def report_period(until: Any, days: Any) -> tuple[str, str]:
    """The first and last day (``YYYY-MM-DD``, UTC) a report of ``days`` days ending ``until`` covers."""
    start, end = period(None, _as_date(until), days=int(days or 7))
    return f"{start:%Y-%m-%d}", f"{(end - timedelta(days=1)):%Y-%m-%d}"


def sheet_link(store: ObjectStore, sheet: Path, folder_name: str) -> str:
    """Where the contact sheet is: on an S3 store the page is stored under
    ``reports/<folder>/`` and its presigned https URL returned; on a local store its path on
    this machine (a browser refuses a ``file://`` link from the Prefect UI: the run's
    artifact inlines the sheet instead, ``contact_sheet_data_uri``)."""
    if isinstance(store, LocalStore):
        return str(sheet.resolve())
    data = sheet.read_bytes()
    key = f"reports/{folder_name}/index-{hashlib.sha256(data).hexdigest()[:12]}.html"
    store.put(key, data, content_type="text/html; charset=utf-8")
    return store.presigned_url(key)
