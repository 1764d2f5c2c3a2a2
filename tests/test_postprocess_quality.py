"""Quality score from measurable properties, perceptual hash and the near-duplicate check."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pytest
import skimage.data
from PIL import Image, ImageEnhance, ImageFilter

from domain.model import ImageSlot, ImageStatus
from domain.errors import ConfigError
from config.imaging import TaggingConfig
from imaging.categorize import categorize_image
from imaging.quality import hamming, measure, nearest_duplicate, perceptual_hash
from wiring.runtime import get_runtime
from imaging.tagging import zero_shot_tags
from imaging.watermark import content_id, read
from tests.rows import plan_row, set_row


def photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")


def reencoded_and_resized(image: Image.Image) -> Image.Image:
    """The same photo as JPEG quality 70, 7 % smaller."""
    small = image.resize((round(image.width * 0.93), round(image.height * 0.93)), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=70)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def test_quality_measures_follow_the_image() -> None:
    sharp = measure(photo("astronaut"))
    blurred = measure(photo("astronaut").filter(ImageFilter.GaussianBlur(4)))
    dark = measure(ImageEnhance.Brightness(photo("astronaut")).enhance(0.15))
    grey = measure(photo("astronaut").convert("L"))
    flat = measure(Image.new("RGB", (256, 256), (128, 128, 128)))
    for report in (sharp, blurred, dark, grey, flat):
        assert 0.0 <= report.score <= 1.0
        assert all(0.0 <= report.metrics[k] <= 1.0 for k in ("sharpness", "exposure", "contrast", "colourfulness"))
    assert sharp.metrics["sharpness"] > blurred.metrics["sharpness"] + 0.2
    assert sharp.metrics["exposure"] > dark.metrics["exposure"] + 0.3
    assert sharp.metrics["colourfulness"] > 0.3 and grey.metrics["colourfulness"] == 0.0
    assert flat.metrics["contrast"] == 0.0 and flat.metrics["sharpness"] == 0.0
    assert sharp.score > max(blurred.score, dark.score, grey.score, flat.score)


def test_aesthetic_scorer_is_averaged_in() -> None:
    base = measure(photo("coffee"))
    with_model = measure(photo("coffee"), aesthetic=lambda image: 1.0)
    assert with_model.metrics["aesthetic"] == 1.0
    assert with_model.score == pytest.approx((base.score + 1.0) / 2, abs=1e-3)
    with pytest.raises(ValueError, match="outside 0..1"):
        measure(photo("coffee"), aesthetic=lambda image: 7.0)


def test_near_duplicate_caught_and_a_different_photo_not() -> None:
    coffee = perceptual_hash(photo("coffee"))
    again = perceptual_hash(reencoded_and_resized(photo("coffee")))
    cat = perceptual_hash(photo("chelsea"))
    assert len(coffee) == 16
    assert hamming(coffee, again) <= 4
    assert hamming(coffee, cat) > 16
    published = [("cat1", cat), ("coffee1", coffee)]
    assert nearest_duplicate(again, published, max_distance=8) == ("coffee1", hamming(coffee, again))
    assert nearest_duplicate(perceptual_hash(photo("rocket")), published, max_distance=8) is None


def _row(db, index: int, category: str, image: Image.Image, tmp_path: Path, *, status: ImageStatus) -> int:  # type: ignore[no-untyped-def]
    slot = ImageSlot("daily", date(2026, 11, 21), "s", index, category)
    row = plan_row(db, slot, prompt="a photo", template="t")
    path = tmp_path / f"{row.image_id}.png"
    image.save(path)
    set_row(db, row.id, ImageStatus.generated, spool_path=str(path), provider="automatic1111")
    set_row(db, row.id, ImageStatus.processed, phash=perceptual_hash(image), quality_score=0.5)
    if status.rank > ImageStatus.processed.rank:
        set_row(db, row.id, status)
    return row.id


def test_categorize_image_skips_a_near_duplicate_of_a_published_image(make_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    make_config()
    rt = get_runtime()
    db = rt.db
    published = _row(db, 0, "food", photo("coffee"), tmp_path, status=ImageStatus.done)
    duplicate = _row(db, 1, "food", reencoded_and_resized(photo("coffee")), tmp_path, status=ImageStatus.processed)
    different = _row(db, 2, "food", photo("chelsea"), tmp_path, status=ImageStatus.processed)
    elsewhere = _row(db, 3, "products", reencoded_and_resized(photo("coffee")), tmp_path, status=ImageStatus.processed)
    assert "food" in categorize_image(db, duplicate, rt.settings)
    row = db.get(duplicate)
    assert row.status == "skipped" and row.duplicate_of == db.get(published).image_id
    assert "near-duplicate of published image" in (row.error or "")
    categorize_image(db, different, rt.settings)
    assert db.get(different).status == "processed" and db.get(different).duplicate_of is None
    categorize_image(db, elsewhere, rt.settings)  # scope "category": another category is not compared
    assert db.get(elsewhere).status == "processed"
    make_config(dedup={"scope": "all", "action": "keep"})
    rt = get_runtime()
    categorize_image(rt.db, elsewhere, rt.settings)
    row = rt.db.get(elsewhere)
    assert row.status == "processed" and row.duplicate_of == rt.db.get(published).image_id


def test_zero_shot_tagging_is_optional_with_a_clear_install_hint(tmp_path: Path) -> None:
    assert zero_shot_tags(photo("coffee"), TaggingConfig()) == []
    config = TaggingConfig(clip_model="ViT-B-32", clip_weights=tmp_path / "missing.bin", vocabulary=["coffee", "cat"])
    try:
        import open_clip  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="pip install torch==2.13.0 open_clip_torch"):
            zero_shot_tags(photo("coffee"), config)
    else:  # pragma: no cover - only where open_clip is installed
        with pytest.raises(ConfigError, match="a local weights file is required"):
            zero_shot_tags(photo("coffee"), config)


def test_postprocess_image_in_threads_and_in_processes_gives_the_same_files(make_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from imaging.postprocess import postprocess_image

    results = {}
    for index, executor in enumerate(("threads", "processes")):
        make_config(processing={"executor": executor, "workers": 1})
        rt = get_runtime()
        slot = ImageSlot("daily", date(2026, 11, 21), "s", index, "food")
        row = plan_row(rt.db, slot, prompt="coffee", template="t", template_version=1)
        spool = tmp_path / executor / f"{row.image_id}.png"
        spool.parent.mkdir()
        photo("coffee").save(spool)
        pk = set_row(rt.db, row.id, ImageStatus.generated, spool_path=str(spool), provider="automatic1111", seed=3).id
        files = postprocess_image(rt.db, pk, rt.settings)
        row = rt.db.get(pk)
        assert row.status == "processed" and row.quality_score and row.phash
        for item in files:  # the watermark (on by default) carries the row's own image id, in either executor
            with Image.open(item.path) as published:
                assert read(published).content_id == f"{content_id(row.image_id):08x}", (executor, item.name)
        results[executor] = ([(f.name, f.width, f.height) for f in files], row.quality_score, row.phash)
    # same sizes and measures (byte counts differ: the provenance and the watermark carry the image id)
    assert results["threads"] == results["processes"]
    assert [name for name, *_ in results["threads"][0]] == ["original", "web", "thumb"]
