"""What a run shows: the summary in words (done / placeholder / failed / blocked / skipped),
the gallery's thumbnails (inline for a local store, presigned on S3 through moto's server),
and the same words in the CLI table."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import pytest
from PIL import Image

from reporting.artifacts import THUMB_MAX_BYTES, THUMB_SIDE, gallery_markdown, summary_rows, thumbnail_data_uri
from reporting.summary import count_outcomes, outcome_of, summary_words
from tests.conftest import a1111_config
from tests.rows import flow_summary
from tests.s3server import S3Server
from tests.servers import photo


@dataclass(frozen=True)
class Img:
    image_id: str
    status: str
    placeholder: bool = False
    cost_usd: float = 0.0
    slot: str = "0600-food#0"
    template: str | None = "pasta-dish"
    provider: str | None = "automatic1111"
    seconds: float = 1.0
    storage_key: str | None = None
    error: str | None = None


def test_outcomes_in_words() -> None:
    images = [
        Img("a", "done", cost_usd=0.05),
        Img("b", "done", cost_usd=0.05),
        Img("c", "done", placeholder=True),
        Img("d", "done", placeholder=True),
        Img("e", "failed"),
        Img("f", "blocked"),
        Img("g", "skipped"),
    ]
    assert [outcome_of(i) for i in images] == ["done", "done", "placeholder", "placeholder", "failed", "blocked", "skipped"]
    assert summary_words(images) == "7 images: 2 done, 2 placeholders, 1 failed, 1 blocked, 1 skipped; USD 0.10"
    assert summary_words([Img("a", "done", placeholder=True)]) == ("1 image: 0 done, 1 placeholder, 0 failed, 0 blocked, 0 skipped; USD 0.00")
    # an upload left pending is neither done nor failed
    assert count_outcomes([Img("a", "processed")]) == {"done": 0, "placeholder": 0, "failed": 0, "blocked": 0, "skipped": 0, "unfinished": 1}


def test_review_decisions_are_outcomes_not_unfinished() -> None:
    """After a review, rejected (and superseded) images are decided, and in_review ones wait for a person."""
    images = [Img(str(n), "done") for n in range(5)] + [Img("r1", "rejected"), Img("r2", "rejected")]
    assert summary_words(images) == "7 images: 5 done, 0 placeholders, 0 failed, 0 blocked, 0 skipped, 2 rejected; USD 0.00"
    counts = count_outcomes(images + [Img("s", "superseded"), Img("w", "in_review")])
    assert counts["rejected"] == 2 and counts["superseded"] == 1 and counts["in review"] == 1
    assert "unfinished" not in counts


def _decode(uri: str) -> Image.Image:
    assert uri.startswith("data:image/jpeg;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


def test_thumbnail_is_size_capped() -> None:
    big = photo(1600, 1200, "astronaut")
    uri = thumbnail_data_uri(big)
    assert uri is not None
    raw = base64.b64decode(uri.split(",", 1)[1])
    assert len(raw) <= THUMB_MAX_BYTES
    with _decode(uri) as thumb:
        assert max(thumb.size) <= THUMB_SIDE and thumb.format == "JPEG"
    tiny_cap = thumbnail_data_uri(big, max_bytes=1500)  # smaller side and quality until it fits
    assert tiny_cap is not None and len(base64.b64decode(tiny_cap.split(",", 1)[1])) <= 1500
    assert thumbnail_data_uri(b"<html>not an image</html>") is None


def _markdown_images(markdown: str) -> list[str]:
    return [part.split(")", 1)[0] for part in markdown.split("](")[1:] if part.startswith(("data:", "http"))]


@pytest.mark.usefixtures("prefect_server")
def test_budget_forced_placeholders_are_counted_as_placeholders(make_config) -> None:  # type: ignore[no-untyped-def]
    """A paid provider (USD 0.05 per image) under a USD 0.10 daily cap: 2 real images, then
    the chain falls to the placeholder. The summary says so in words, not ``{'done': 6}``."""
    from prefect.artifacts import Artifact

    from flows.adhoc import generate
    from tests.servers import A1111Server

    with A1111Server() as server:
        make_config(**a1111_config(server.url, cost_usd=0.05), budget={"daily_usd": 0.10}, dedup={"enabled": False}, concurrency=1)
        summary = flow_summary(generate(template="pasta-dish", count=6, batch="budget", return_state=True))
    assert summary.counts() == {"done": 2, "placeholder": 4, "failed": 0, "blocked": 0, "skipped": 0}
    artifact = Artifact.get("adhoc-run-summary")
    assert artifact is not None
    assert artifact.description == "adhoc: 6 images: 2 done, 4 placeholders, 0 failed, 0 blocked, 0 skipped; USD 0.10"
    table = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    assert sorted(r["outcome"] for r in table) == ["done"] * 2 + ["placeholder"] * 4
    assert "{" not in artifact.description

    gallery = Artifact.get("adhoc-gallery")
    assert gallery is not None and gallery.data.startswith("### adhoc: 6 images: 2 done, 4 placeholders")
    thumbs = _markdown_images(gallery.data)
    assert len(thumbs) == 6 and all(t.startswith("data:image/jpeg;base64,") for t in thumbs)
    assert "file://" not in gallery.data  # a browser blocks file:// images inside an http page
    for uri in thumbs:
        with _decode(uri) as thumb:
            assert max(thumb.size) <= THUMB_SIDE
            assert len(set(thumb.convert("L").resize((16, 16)).getdata())) > 4  # a picture, not a blank


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with S3Server() as server:
        yield server


@pytest.mark.usefixtures("prefect_server")
def test_s3_gallery_links_presigned_thumbnails_that_download(make_config, s3_env: S3Server) -> None:  # type: ignore[no-untyped-def]
    from flows.adhoc import generate
    from wiring.runtime import get_runtime

    s3_env.client().create_bucket(Bucket="gallery")
    make_config(storage_url="s3://gallery/studio", s3={"endpoint_url": s3_env.url})
    summary = flow_summary(generate(template="sneaker", count=2, batch="s3", return_state=True))
    markdown = gallery_markdown("adhoc", summary.images, get_runtime().store, get_runtime().db)
    links = _markdown_images(markdown)
    assert len(links) == 2 + 2  # a thumbnail and the original's link per image
    thumbs = [link for link in links if "thumb" in link or ".webp" in link]
    assert len(thumbs) == 2 and all("X-Amz-Signature=" in t for t in thumbs)
    rt = get_runtime()
    for image, link in zip(summary.images, thumbs):
        answer = httpx.get(link, timeout=10)
        assert answer.status_code == 200
        with Image.open(io.BytesIO(answer.content)) as thumb:
            assert thumb.size == (320, 320)
        assert image.image_id in markdown
    assert rt.settings.storage_url == "s3://gallery/studio"


def test_local_gallery_leaves_thumbnails_out_past_its_size_cap(make_config, monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import reporting.artifacts as artifacts
    from storage.db import ImageRecord, RenditionRecord
    from storage.objects import sha256_hex
    from wiring.runtime import get_runtime

    make_config()
    rt = get_runtime()
    images = []
    with rt.db.session() as session:
        for index, name in enumerate(("coffee", "rocket", "chelsea")):
            data = photo(320, 320, name)
            key = f"content/food/2026/11/x-{index}.thumb.png"
            rt.store.put(key, data, content_type="image/png")
            row = ImageRecord(
                idempotency_key=f"k{index}",
                image_id=f"id{index:010d}",
                flow="adhoc",
                slot="s",
                run_date=date(2026, 11, 21),
                slot_index=index,
                category="food",
                status="done",
                storage_key=key,
            )
            session.add(row)
            session.flush()
            session.add(
                RenditionRecord(image_pk=row.id, name="thumb", storage_key=key, format="png", width=320, height=320, bytes=len(data), checksum=sha256_hex(data))
            )
            images.append(Img(row.image_id, "done", storage_key=key))
        session.commit()
    full = gallery_markdown("adhoc", images, rt.store, rt.db)
    assert len(_markdown_images(full)) == 3
    one_thumb = len(full) // 2  # room for about one thumbnail
    monkeypatch.setattr(artifacts, "GALLERY_MAX_BYTES", one_thumb)
    capped = gallery_markdown("adhoc", images, rt.store, rt.db)
    assert len(capped) <= one_thumb + 2000 and 1 <= len(_markdown_images(capped)) < 3
    assert "(thumbnail left out: gallery size cap)" in capped
    assert all(i.image_id in capped for i in images)


def test_the_progress_artifact_is_updated_at_most_once_a_second_and_for_the_last_image(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import uuid

    import prefect.artifacts

    from reporting.artifacts import ProgressReporter
    from reporting.summary import ImageSummary

    updates: list[tuple[float, str]] = []
    monkeypatch.setattr(prefect.artifacts, "create_progress_artifact", lambda **kwargs: uuid.uuid4())
    monkeypatch.setattr(prefect.artifacts, "update_progress_artifact", lambda artifact_id, progress, description: updates.append((progress, description)))
    clock = [100.0]
    monkeypatch.setattr("reporting.artifacts.time.monotonic", lambda: clock[0])
    reporter = ProgressReporter("daily", 4)
    image = ImageSummary("abc", "0600-food#0", "t", "automatic1111", False, 0.01, 1.0, "done", "k.png", None)
    clock[0] += 0.2
    reporter.image_finished(image)  # 0.2 s after the start: not yet
    clock[0] += 1.0
    reporter.image_finished(image)  # 1.2 s: updated
    reporter.image_finished(image)  # at once again: not
    assert reporter.image_finished(image) == 100.0  # the last image: always
    assert [u[0] for u in updates] == [50.0, 100.0] and updates[-1][1].startswith("4 of 4 images finished")


def _not_found(*args: object, **kwargs: object) -> None:
    import httpx
    from prefect.exceptions import ObjectNotFound

    request = httpx.Request("PATCH", "http://127.0.0.1/api/artifacts/x")
    raise ObjectNotFound(httpx.HTTPStatusError("404 Not Found", request=request, response=httpx.Response(404, request=request)))


def test_a_progress_artifact_the_api_lost_is_logged_once_and_the_run_goes_on(monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    import uuid

    import prefect.artifacts

    from reporting.artifacts import ProgressReporter
    from reporting.summary import ImageSummary

    calls: list[str] = []

    def update(*args: object, **kwargs: object) -> None:
        calls.append("update")
        _not_found()

    monkeypatch.setattr(prefect.artifacts, "create_progress_artifact", lambda **kwargs: uuid.uuid4())
    monkeypatch.setattr(prefect.artifacts, "update_progress_artifact", update)
    reporter = ProgressReporter("daily", 2, interval_s=0.0)
    image = ImageSummary("abc", "0600-food#0", "t", "automatic1111", False, 0.01, 1.0, "done", "k.png", None)
    with caplog.at_level("WARNING"):
        assert reporter.image_finished(image) == 50.0
        assert reporter.image_finished(image) == 100.0
    assert calls == ["update"]  # not retried after the 404
    warnings = [r.getMessage() for r in caplog.records if "progress artifact left out" in r.getMessage()]
    assert len(warnings) == 1 and "ObjectNotFound" in warnings[0]


def test_a_progress_artifact_the_api_refuses_to_create_does_not_fail_the_run(monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    import prefect.artifacts

    from reporting.artifacts import ProgressReporter
    from reporting.summary import ImageSummary

    monkeypatch.setattr(prefect.artifacts, "create_progress_artifact", _not_found)
    monkeypatch.setattr(prefect.artifacts, "update_progress_artifact", lambda *a, **k: pytest.fail("updated an artifact that was never created"))
    with caplog.at_level("WARNING"):
        reporter = ProgressReporter("daily", 1)
        image = ImageSummary("abc", "0600-food#0", "t", "automatic1111", False, 0.01, 1.0, "done", "k.png", None)
        assert reporter.image_finished(image) == 100.0
    assert reporter.artifact_id is None
    assert sum("progress artifact left out" in r.getMessage() for r in caplog.records) == 1


def test_the_cli_summary_table_shows_the_whole_storage_key_on_a_narrow_terminal() -> None:
    """rich cuts a long cell with "…" by default: the stored key is folded over lines instead,
    and the summary artifact's rows carry it whole."""
    from rich.console import Console

    from cli.run import summary_table
    from reporting.summary import ImageSummary, RunSummary

    key = "content/food/2026/11/pasta-dish-0123456789ab-v2-original.png"
    image = ImageSummary("0123456789ab", "morning#0", "pasta-dish", "automatic1111", False, 0.0, 1.5, "done", key, None)
    summary = RunSummary("daily", [image], "output", "sqlite:///output/content-pipeline.db", [])
    console = Console(width=90, record=True)
    console.print(summary_table(summary))
    text = console.export_text()
    assert "…" not in text
    cells = [line.split("│")[-2].strip() for line in text.splitlines() if line.count("│") == 8]
    assert "".join(cells) == key, text
    assert summary_rows([image])[0]["storage_key"] == key
