"""Renditions on real photos: every fit, crop, format, the target-size search, enhancement."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image
from pydantic import ValidationError

from domain.errors import RenditionError
from config.imaging import RenditionConfig
from imaging.postprocess import TARGET_TOLERANCE, attention_box, encode_to_target, make_renditions, render
from imaging.provenance import Provenance
from imaging.quality import measure

FORMATS = {"jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF", "png": "PNG"}


def photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("src") / "coffee.png"
    photo("coffee").save(path)  # 600 x 400
    return path


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_fit_in_every_format(fmt: str, original: Path, tmp_path: Path) -> None:
    specs = [
        RenditionConfig(name="contain", width=300, height=300, fit="contain", format=fmt),
        RenditionConfig(name="cover", width=256, height=128, fit="cover", format=fmt),
        RenditionConfig(name="attention", width=200, height=200, fit="cover", crop="attention", format=fmt),
        RenditionConfig(name="exact", width=320, height=100, fit="exact", format=fmt),
        RenditionConfig(name="half", scale=0.5, format=fmt),
        RenditionConfig(name="double", scale=2.0, format=fmt, enhance=["autocontrast", "sharpen"]),
    ]
    files = {f.name: f for f in make_renditions(original, specs, tmp_path)}
    expected = {
        "original": (600, 400),
        "contain": (300, 200),
        "cover": (256, 128),
        "attention": (200, 200),
        "exact": (320, 100),
        "half": (300, 200),
        "double": (1200, 800),
    }
    assert {name: (f.width, f.height) for name, f in files.items()} == expected
    for name, file in files.items():
        with Image.open(file.path) as image:
            assert image.size == expected[name]
            assert image.format == ("PNG" if name == "original" else FORMATS[fmt])
            image.load()
        assert file.bytes == file.path.stat().st_size and len(file.checksum) == 64
        assert file.path.suffix == {"jpeg": ".jpg", "webp": ".webp", "avif": ".avif", "png": ".png"}["png" if name == "original" else fmt]
    # a rendition still looks like the photo: compare with a plain Pillow resize
    with Image.open(files["exact"].path) as image:
        ours = np.asarray(image.convert("RGB"), dtype=np.int16)
    reference = np.asarray(photo("coffee").resize((320, 100), Image.Resampling.LANCZOS), dtype=np.int16)
    assert np.abs(ours - reference).mean() < 8


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_a_rendition_encoded_into_its_file_is_the_in_memory_encoding(fmt: str, original: Path, tmp_path: Path) -> None:
    """render_one encodes straight into the file (Pillow then releases the GIL for JPEG
    and PNG): the same bytes as ``encode`` into memory, with the provenance, and no part
    file left behind."""
    import hashlib

    from imaging.postprocess import encode, render_one

    spec = RenditionConfig(name="web", width=300, height=300, format=fmt)
    provenance = Provenance(image_id="abc123", prompt="a cup", seed=7, provider="automatic1111", model="sdxl")
    made = render_one(Image.open(original), spec, tmp_path, provenance=provenance)
    expected = encode(render(Image.open(original), spec), spec, provenance=provenance)
    assert made.path.read_bytes() == expected and made.checksum == hashlib.sha256(expected).hexdigest()
    assert made.bytes == len(expected) and sorted(p.name for p in tmp_path.iterdir()) == [made.path.name]


def test_attention_crop_follows_the_subject() -> None:
    # the photo on the right of a wide flat canvas: attention crops there, centre does not
    subject = photo("chelsea").resize((300, 200))
    canvas = Image.new("RGB", (900, 200), (128, 128, 128))
    canvas.paste(subject, (600, 0))
    left, top, right, bottom = attention_box(canvas, (200, 200))
    assert (right - left, bottom - top) == (200, 200)
    assert left >= 550, left
    spec = RenditionConfig(name="sq", width=100, height=100, fit="cover", crop="attention")
    centre = RenditionConfig(name="sq", width=100, height=100, fit="cover")
    grey_std = lambda im: float(np.asarray(im.convert("L"), dtype=np.float32).std())  # noqa: E731
    assert grey_std(render(canvas, spec)) > 20 > grey_std(render(canvas, centre))
    # a tall image crops vertically
    tall = Image.new("RGB", (200, 900), (128, 128, 128))
    tall.paste(subject.resize((200, 150)), (0, 50))
    _, top, _, bottom = attention_box(tall, (200, 200))
    assert top <= 50 and bottom >= 200


@pytest.mark.parametrize("fmt,target", [("jpeg", 40_000), ("jpeg", 90_000), ("jpeg", 150_000), ("webp", 30_000), ("webp", 80_000), ("avif", 20_000)])
def test_target_size_search_lands_within_five_percent_below(fmt: str, target: int, tmp_path: Path) -> None:
    source = photo("astronaut")  # 512 x 512
    spec = RenditionConfig(name="sized", width=512, height=512, format=fmt, target_bytes=target)
    data, quality = encode_to_target(source, spec)
    assert target * (1 - TARGET_TOLERANCE) <= len(data) <= target, (len(data), quality)
    assert 1 <= quality <= 100
    src = tmp_path / "a.png"
    source.save(src)
    [_, file] = make_renditions(src, [spec], tmp_path / "out")
    assert target * (1 - TARGET_TOLERANCE) <= file.bytes <= target
    assert file.quality == pytest.approx(quality)


def test_target_size_with_provenance_counts_the_metadata(tmp_path: Path) -> None:
    provenance = Provenance(image_id="abc", prompt="a ceramic mug " * 20, seed=7)
    spec = RenditionConfig(name="sized", width=400, height=400, format="jpeg", target_bytes=25_000)
    data, _ = encode_to_target(photo("rocket").resize((400, 600)), spec, provenance=provenance)
    assert 25_000 * 0.95 <= len(data) <= 25_000 and b"trainedAlgorithmicMedia" in data


def test_target_below_the_lowest_quality_is_a_clear_error() -> None:
    spec = RenditionConfig(name="tiny", width=512, height=512, format="jpeg", target_bytes=1024)
    with pytest.raises(RenditionError, match="'tiny'.*target_bytes 1024"):
        encode_to_target(photo("astronaut"), spec)


def test_png_has_no_target_size() -> None:
    with pytest.raises(ValidationError, match="target_bytes needs a lossy format"):
        RenditionConfig(name="p", width=64, height=64, format="png", target_bytes=5000)


def test_enhancement_raises_contrast_and_sharpness() -> None:
    flat = Image.eval(photo("chelsea"), lambda v: 96 + v // 4)  # washed out: 96..159
    out = render(flat, RenditionConfig(name="e", scale=1.0, enhance=["autocontrast"]))
    std = lambda im: float(np.asarray(im.convert("L"), dtype=np.float32).std())  # noqa: E731
    assert std(out) > 2 * std(flat)

    def laplacian_var(im: Image.Image) -> float:
        return measure(im).metrics["raw_laplacian_var"]

    soft = photo("chelsea")
    sharpened = render(soft, RenditionConfig(name="s", scale=1.0, enhance=["sharpen"]))
    assert laplacian_var(sharpened) > 1.2 * laplacian_var(soft)
    plain = render(soft, RenditionConfig(name="s", scale=1.0))
    assert np.array_equal(np.asarray(plain), np.asarray(soft))


def test_postprocessing_configuration_errors_name_the_key(tmp_path: Path) -> None:
    import yaml

    from domain.errors import ConfigError
    from config.settings import load_settings

    path = tmp_path / "content-pipeline.yaml"
    path.write_text(yaml.safe_dump({"renditions": [{"name": "x4", "scale": 4, "upscaler": "model"}]}))
    with pytest.raises(ConfigError, match="'x4' uses upscaler 'model' but upscale.weights is not set"):
        load_settings(path)
    path.write_text(yaml.safe_dump({"renditions": [{"name": "w", "width": 64, "height": 64, "format": "gif"}]}))
    with pytest.raises(ConfigError, match="format"):
        load_settings(path)
    path.write_text(yaml.safe_dump({"decode": {"max_pixels": 200_000_000}}))
    with pytest.raises(ConfigError, match="max_pixels"):
        load_settings(path)
    path.write_text(
        yaml.safe_dump(
            {
                "upscale": {"weights": "models/x4.pth"},
                "dedup": {"scope": "all"},
                "renditions": [{"name": "big", "scale": 2, "upscaler": "model", "format": "avif", "target_bytes": 200000}],
            }
        )
    )
    settings = load_settings(path)
    assert settings.upscale.weights == (tmp_path / "models" / "x4.pth").resolve()
    assert settings.renditions[0].target_bytes == 200_000 and settings.dedup.scope == "all"
