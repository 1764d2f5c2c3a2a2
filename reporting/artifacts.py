"""What a flow run shows in the Prefect UI: the run summary table and the gallery.

* ``outcome_of(image)``: an image's outcome in words, after domain.model.ImageStatus:
  ``done`` (a real image, stored), ``placeholder`` (status ``placeholder``, or made by a
  placeholder provider: stored under ``placeholder/``, never published), ``failed``,
  ``blocked``, ``skipped``, a review's ``rejected`` / ``superseded`` (decided, not
  unfinished), ``in review`` (waits for a person) or ``unfinished`` (a status a later run
  resumes from, e.g. an upload still pending, or a slot another run holds).
* ``summary_words(images)``: ``"6 images: 2 done, 4 placeholders, 0 failed, 0 blocked,
  0 skipped; USD 0.12"``, the summary artifact's description and the CLI's title line.
* ``gallery_markdown`` / ``publish_gallery``: one markdown row per image with a
  thumbnail of its smallest rendition. A browser shows an ``<img>`` of a page served over
  http(s) only from http(s) or ``data:`` URLs (a ``file://`` image is blocked: Chromium's
  "Not allowed to load local resource"), so a store whose URLs are http(s) (S3:
  presigned GET URLs) is linked, and a local folder's thumbnail is inlined as a
  ``data:image/jpeg`` URI, re-encoded to at most ``THUMB_SIDE`` pixels and
  ``THUMB_MAX_BYTES`` bytes, within ``GALLERY_MAX_BYTES`` for the whole artifact.

Images are duck-typed (``flows.run.ImageSummary``: image_id, slot, template,
provider, placeholder, cost_usd, seconds, status, storage_key, error) so this module
does not import the pipeline.
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from uuid import UUID

from domain.errors import StorageError
from domain.log import get_logger, image_line
from reporting.summary import ImageSummary, outcome_of, outcome_words, summary_words
from PIL import Image
from sqlmodel import select
from storage.db import ImageRecord, RenditionRecord
import httpx

#: Largest side (pixels) of an inlined thumbnail.
THUMB_SIDE = 192
#: Largest inlined thumbnail (bytes of JPEG, before base64).
THUMB_MAX_BYTES = 24_000
#: Largest gallery markdown (bytes); past it thumbnails are left out, each row says so.
GALLERY_MAX_BYTES = 1_500_000


def summary_rows(images: Iterable[Any]) -> list[dict[str, Any]]:
    """The summary table: one row per image, its outcome in words, stored key or error."""
    return [
        {
            "image_id": i.image_id,
            "slot": i.slot,
            "template": i.template,
            "provider": i.provider,
            "outcome": outcome_of(i),
            "status": i.status,
            "cost_usd": i.cost_usd,
            "seconds": i.seconds,
            "storage_key": i.storage_key,
            "error": (i.error or "")[:300] or None,
        }
        for i in images
    ]


def publish_summary(flow_name: str, images: Sequence[Any]) -> None:
    """The ``<flow>-run-summary`` table artifact, described in words (``summary_words``)."""
    from prefect.artifacts import create_table_artifact  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs

    create_table_artifact(key=f"{flow_name}-run-summary", table=summary_rows(images), description=f"{flow_name}: {summary_words(images)}")


def thumbnail_data_uri(data: bytes, side: int = THUMB_SIDE, max_bytes: int = THUMB_MAX_BYTES) -> str | None:
    """``data`` (any image Pillow opens) as a ``data:image/jpeg;base64,...`` URI at most
    ``side`` pixels and ``max_bytes`` bytes (lower JPEG quality, then a smaller side,
    until it fits); None when the bytes do not decode."""

    try:
        with Image.open(io.BytesIO(data)) as opened:
            picture = opened.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    size = side
    while size >= 32:
        copy = picture.copy()
        copy.thumbnail((size, size))
        for quality in (75, 60, 45, 30):
            buffer = io.BytesIO()
            copy.save(buffer, "JPEG", quality=quality, optimize=True)
            if buffer.tell() <= max_bytes:
                return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
        size //= 2
    return None


def _renditions_of(db: Any, image_id: str) -> list[Any]:

    with db.session() as session:
        row = session.exec(select(ImageRecord).where(ImageRecord.image_id == image_id)).first()
        if row is None:
            return []
        return list(session.exec(select(RenditionRecord).where(RenditionRecord.image_pk == row.id)).all())


def _is_web_url(url: str) -> bool:
    return urlparse(url).scheme in ("http", "https")


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return " ".join(str(text).replace("|", "\\|").split())


def gallery_markdown(flow_name: str, images: Sequence[Any], store: Any, db: Any) -> str:
    """A markdown gallery: a title line in words, then one row per image with a thumbnail
    of its smallest rendition (see the module docstring), outcome, and where it went."""
    lines = [
        f"### {flow_name}: {summary_words(images)}",
        "",
        "| thumbnail | image | slot | template | provider | outcome | stored at / error |",
        "|---|---|---|---|---|---|---|",
    ]
    used = sum(len(line) + 1 for line in lines)
    for image in images:
        thumb, where = "-", _cell((image.error or "-")[:160])
        if image.storage_key:
            renditions = _renditions_of(db, image.image_id)
            smallest = min(renditions, key=lambda r: r.width * r.height) if renditions else None
            key = smallest.storage_key if smallest is not None else image.storage_key
            try:
                url = store.url(key)
            except StorageError:
                url = ""
            if _is_web_url(url):
                thumb = f"![{image.image_id}]({url})"
                original = store.url(image.storage_key)
                where = f"[{_cell(image.storage_key)}]({original})"
            else:
                where = f"`{_cell(image.storage_key)}`"
                try:
                    uri = thumbnail_data_uri(store.get(key))
                except StorageError:
                    uri = None
                if uri is None:
                    thumb = "(thumbnail unreadable)"
                elif used + len(uri) > GALLERY_MAX_BYTES:
                    thumb = "(thumbnail left out: gallery size cap)"
                else:
                    thumb = f"![{image.image_id}]({uri})"
        provider = (image.provider or "-") + (" (placeholder)" if image.placeholder else "")
        line = f"| {thumb} | {image.image_id} | {_cell(image.slot)} | {_cell(image.template or '-')} | {_cell(provider)} | {outcome_of(image)} | {where} |"
        used += len(line) + 1
        lines.append(line)
    return "\n".join(lines)


def publish_gallery(flow_name: str, images: Sequence[Any], store: Any, db: Any) -> None:
    """Publish ``gallery_markdown`` as the ``<flow>-gallery`` markdown artifact."""
    from prefect.artifacts import create_markdown_artifact  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs

    create_markdown_artifact(
        markdown=gallery_markdown(flow_name, images, store, db), key=f"{flow_name}-gallery", description=f"{flow_name}: thumbnails of the {len(images)} images"
    )


def _api_errors() -> tuple[type[Exception], ...]:
    """The errors of a Prefect API call: the client's ``PrefectException`` (e.g.
    ``ObjectNotFound`` on a 404) and httpx's transport and status errors
    (https://docs.prefect.io/v3/api-ref/python/prefect-exceptions)."""
    from prefect.exceptions import PrefectException  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs

    return (PrefectException, httpx.HTTPError)


class ProgressReporter:
    """The run's progress artifact (``<flow>-progress``, percent of images finished),
    updated when an image reaches a terminal or resumable status, at most once every
    ``interval_s`` seconds (each update is a call to the Prefect API) and always for the
    last image; every image's line is logged.

    The artifact is a view, never the run's outcome: a Prefect API error creating or
    updating it is logged once and the artifact is left alone from then on
    (``artifact_id`` None).
    """

    def __init__(self, flow_name: str, total: int, *, interval_s: float = 1.0) -> None:
        from prefect.artifacts import create_progress_artifact  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs

        self.total = total
        self.finished = 0
        self.interval_s = interval_s
        self._updated = time.monotonic()
        self.counts: dict[str, int] = {}
        self.artifact_id: UUID | None = None
        try:
            artifact_id = create_progress_artifact(
                progress=0.0 if total else 100.0,
                key=f"{flow_name}-progress",
                description=f"{flow_name}: 0 of {total} images finished",
            )
        except _api_errors() as exc:
            self._give_up(exc)
            return
        assert isinstance(artifact_id, UUID)  # sync_compatible: a value, not a coroutine, in a sync flow
        self.artifact_id = artifact_id

    def _give_up(self, exc: Exception) -> None:
        """Log ``exc`` (once: the artifact is not touched again) and drop the artifact."""
        self.artifact_id = None
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        get_logger().warning("progress artifact left out: the Prefect API answered %s: %s", type(exc).__name__, first)

    def image_finished(self, image: ImageSummary) -> float:
        """Count ``image``; return the new progress in percent (0..100)."""
        from prefect.artifacts import update_progress_artifact  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs

        self.finished += 1
        self.counts[outcome_of(image)] = self.counts.get(outcome_of(image), 0) + 1
        percent = round(100.0 * self.finished / max(self.total, 1), 1)
        get_logger().info("%s: %s (%s/%s, %.0f%%)", image_line(image, "progress"), outcome_of(image), self.finished, self.total, percent)
        now = time.monotonic()
        if self.artifact_id is not None and (self.finished >= self.total or now - self._updated >= self.interval_s):
            self._updated = now
            words = outcome_words(self.counts)
            try:
                update_progress_artifact(self.artifact_id, progress=percent, description=f"{self.finished} of {self.total} images finished: {words}")
            except _api_errors() as exc:
                self._give_up(exc)
        return percent


def publish_report_artifacts(summary: dict[str, Any], rows: list[dict[str, str]], preview: str | None = None) -> None:
    """The report's table, charts and contact sheet as artifacts of the current run: the
    sheet as a link when it has an http(s) URL (S3, presigned), else as markdown with
    ``preview`` (a ``data:`` URI of the sheet as one JPEG) inlined and the page's path."""
    from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs

    words = f"{summary['since']} to {summary['last_day']} (UTC): {summary['images']} images, USD {summary['cost_usd']:.2f}"
    create_table_artifact(key="weekly-report", table=rows or [{"provider": "-", "model": "no provider calls"}], description=f"Per provider and model, {words}")
    charts = [Path(p) for p in summary["files"] if p.endswith(".png")]
    markdown = [f"# Weekly report, {words}", ""]
    for chart in charts:
        encoded = base64.b64encode(chart.read_bytes()).decode("ascii")
        markdown += [f"## {chart.stem.replace('-', ' ')}", "", f"![{chart.stem}](data:image/png;base64,{encoded})", ""]
    create_markdown_artifact(key="weekly-report-charts", markdown="\n".join(markdown), description=f"Charts, {words}")
    if _is_web_url(summary["sheet_url"]):
        create_link_artifact(
            key="weekly-report-contact-sheet",
            link=summary["sheet_url"],
            link_text=f"contact sheet {summary['since']} to {summary['last_day']}",
            description=f"Every image of {words}",
        )
        return
    sheet = [
        f"# Contact sheet, {words}",
        "",
        f"![contact sheet]({preview})" if preview else "(no image of the period could be read)",
        "",
        f"The full page (prompts, providers, costs): `{summary['sheet_url']}` on the machine that wrote the report.",
    ]
    create_markdown_artifact(key="weekly-report-contact-sheet", markdown="\n".join(sheet), description=f"Every image of {words}")
