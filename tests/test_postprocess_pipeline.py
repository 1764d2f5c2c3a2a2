"""The post-processing stages inside real flow runs: bad images recorded as failed,
provenance + sidecar published, the image safety classifier, near-duplicates skipped."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import pytest
from PIL import Image

from domain.model import ImageStatus
from generation.plan import plan_daily
from imaging.provenance import DIGITAL_SOURCE_TYPE, read_provenance
from generation.record import record_planned
from wiring.runtime import get_runtime
from tests.conftest import a1111_config
from tests.rows import flow_summary, set_row
from tests.servers import A1111Server
from tests.test_postprocess_decode import bad_inputs

pytestmark = pytest.mark.usefixtures("prefect_server")

RUN_DATE = date(2026, 11, 21)


def flag_everything(image: Image.Image) -> dict[str, float]:
    """A stand-in safety classifier (the shape of a transformers image-classification
    pipeline's answer): a warm, bright photo scores as 'nsfw'."""
    r, g, b = Image.Image.resize(image.convert("RGB"), (1, 1)).getpixel((0, 0))  # type: ignore[misc]
    warm = r > b
    return {"nsfw": 0.93 if warm else 0.01, "normal": 0.07 if warm else 0.99}


def test_bad_images_are_recorded_as_failed_and_the_rest_published(make_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from flows.daily import daily_content

    with A1111Server() as server:
        make_config(**a1111_config(server.url), dedup={"enabled": False})
        rt = get_runtime()
        assert rt.library.schedules is not None
        pks = record_planned(rt.db, rt.library, plan_daily(rt.library.schedules, RUN_DATE))
        spool = rt.settings.spool_dir
        spool.mkdir(parents=True, exist_ok=True)
        corrupted: dict[int, str] = {}
        for pk, (case, (data, _error)) in zip(pks, bad_inputs().items()):
            row = rt.db.get(pk)
            path = spool / f"{row.image_id}.png"
            path.write_bytes(data)
            # as if a provider's answer had been spooled: a resumed run takes it from here
            set_row(
                rt.db,
                pk,
                ImageStatus.generated,
                spool_path=str(path),
                checksum=hashlib.sha256(data).hexdigest(),
                provider="automatic1111",
                model="test",
                width=1024,
                height=1024,
                seed=row.seed,
            )
            corrupted[pk] = case
        summary = flow_summary(daily_content(run_date=RUN_DATE, return_state=True))
    assert len(summary.images) == 8
    expected = {"bomb": "decompression bomb", "truncated": "truncated or damaged", "empty": "0 bytes", "html": "not an image in an allowed format"}
    for pk, case in corrupted.items():
        row = rt.db.get(pk)
        assert row.status == "failed", (case, row.status)
        assert expected[case] in (row.error or ""), (case, row.error)
        assert row.image_id in row.error  # names the file
        assert row.storage_key is None and not rt.db.renditions(pk)
    done = [r for r in rt.db.images() if r.id not in corrupted]
    assert {r.status for r in done} == {"done"}
    output = tmp_path / "output"
    for row in done:
        assert row.quality_score is not None and 0 < row.quality_score <= 1
        assert set(row.quality_metrics or {}) >= {"sharpness", "exposure", "contrast", "colourfulness"}
        assert row.phash and len(row.phash) == 16
        assert row.sidecar_key == row.storage_key.rsplit(".", 1)[0] + ".json"
        document = json.loads((output / row.sidecar_key).read_text())
        assert document["provenance"]["prompt"] == row.prompt
        assert document["provenance"]["seed"] == row.seed
        assert document["provenance"]["digital_source_type"] == DIGITAL_SOURCE_TYPE
        assert document["quality_score"] == row.quality_score and document["phash"] == row.phash
        stored = {f["name"]: f for f in document["files"]}
        assert set(stored) == {"original", "web", "thumb"}
        for name, entry in stored.items():
            path = output / entry["key"]
            assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
            found = read_provenance(path)
            assert found["prompt"] == row.prompt and found["seed"] == str(row.seed), name
            assert found["digital_source_type"] == DIGITAL_SOURCE_TYPE
    # a re-run changes nothing: same files, same rows
    before = sorted((p.name, p.stat().st_size) for p in output.rglob("*") if p.is_file() and "spool" not in p.parts and ".db" not in p.name)
    daily_content(run_date=RUN_DATE, return_state=True)  # the corrupt outputs are rejections: not retried
    after = sorted((p.name, p.stat().st_size) for p in output.rglob("*") if p.is_file() and "spool" not in p.parts and ".db" not in p.name)
    assert before == after


def test_image_safety_classifier_blocks_and_never_uploads(make_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from flows.adhoc import generate

    with A1111Server() as server:  # coffee: a warm photo
        make_config(**a1111_config(server.url), policy={"image_classifier": "tests.test_postprocess_pipeline:flag_everything"})
        summary = flow_summary(generate(template="ceramic-mug", count=2, batch="safety", return_state=True))
    assert [i.status for i in summary.images] == ["blocked", "blocked"]
    rows = get_runtime().db.images()
    assert all(r.error == "content policy: image classifier: nsfw 0.93 >= 0.50" for r in rows)
    assert all(r.storage_key is None for r in rows)
    assert not (tmp_path / "output" / "content").exists()


def test_near_duplicates_skipped_against_published_images(make_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from flows.adhoc import generate

    with A1111Server() as server:  # answers every prompt with the same photo
        make_config(**a1111_config(server.url), concurrency=1, dedup={"scope": "all"})
        summary = flow_summary(generate(template="ceramic-mug", count=3, batch="dups", return_state=True))
    statuses = [i.status for i in summary.images]
    assert sorted(statuses) == ["done", "skipped", "skipped"]
    rows = get_runtime().db.images()
    [published] = [r for r in rows if r.status == "done"]
    for row in rows:
        if row.status == "skipped":
            assert row.duplicate_of == published.image_id
            assert "near-duplicate of published image" in (row.error or "")
            assert row.storage_key is None
    sidecars = [p for p in (tmp_path / "output" / "content").rglob("*.json") if not p.name.endswith(".meta.json")]
    assert [p.name for p in sidecars] == [Path(published.sidecar_key).name]
