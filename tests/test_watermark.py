"""The invisible watermark (imaging.watermark, invisible-watermark's dwtDctSvd at a canonical
size): real photos read back after the metadata is stripped, a JPEG re-encode at quality 75
and a half-size resize; unmarked photos read as no watermark; the visual change stays small
(PSNR); every published file of ``make_renditions`` carries it, crops included; and
``content-pipeline verify`` reads it from a file with no metadata left."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image
from typer.testing import CliRunner

from cli.main import app
from config.imaging import RenditionConfig, WatermarkConfig
from imaging.postprocess import inherits_mark, make_renditions
from imaging.provenance import Provenance
from imaging.watermark import MARKER, content_id, embed, parse_bits, payload_bits, read, watermark_for

PHOTOS = ["astronaut", "coffee", "chelsea", "rocket"]


def _photo(name: str, long: int = 1024) -> Image.Image:
    image = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
    scale = long / max(image.size)
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)


def _laundered(image: Image.Image) -> Image.Image:
    """What a platform does: metadata stripped (a bare re-save), JPEG quality 75, half size."""
    bare = io.BytesIO()
    image.convert("RGB").save(bare, "PNG")
    jpeg = io.BytesIO()
    Image.open(io.BytesIO(bare.getvalue())).save(jpeg, "JPEG", quality=75)
    small = Image.open(io.BytesIO(jpeg.getvalue())).convert("RGB")
    return small.resize((small.width // 2, small.height // 2), Image.Resampling.LANCZOS)


def _psnr(a: Image.Image, b: Image.Image) -> float:
    mse = float(np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2))
    return float(10 * np.log10(255**2 / mse))


def test_payload_has_a_marker_and_a_check() -> None:
    bits = payload_bits(0xDEADBEEF)
    assert len(bits) == 64 and int("".join(map(str, bits[:16])), 2) == MARKER
    assert parse_bits(bits).found and parse_bits(bits).content_id == "deadbeef"
    for flipped in (3, 20, 60):  # one wrong bit in the marker, the id or the CRC: no watermark
        damaged = list(bits)
        damaged[flipped] ^= 1
        assert not parse_bits(damaged).found
    assert not parse_bits([0] * 64).found and not parse_bits([1] * 64).found
    assert content_id("abc123") == content_id("abc123") != content_id("abc124")


@pytest.mark.parametrize("name", PHOTOS)
def test_real_photo_reads_back_after_strip_jpeg75_and_half_size(name: str) -> None:
    image = _photo(name)
    cid = content_id(f"img-{name}")
    marked = embed(image, cid)
    assert marked.size == image.size and marked.mode == "RGB"
    assert _psnr(image, marked) >= 38.0, name
    for suspect in (marked, _laundered(marked)):
        reading = read(suspect)
        assert reading.found and reading.content_id == f"{cid:08x}", name
    # the unmarked photo, as it is and laundered the same way: no watermark
    assert not read(image).found and not read(_laundered(image)).found


def test_unmarked_photos_read_as_no_watermark() -> None:
    names = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "colorwheel", "logo"]
    for name in names:
        image = Image.fromarray(getattr(skimage.data, name)())
        assert not read(image).found, name
    flat = Image.new("RGB", (800, 600), (240, 240, 235))  # a flat studio backdrop reads as all-equal bits
    assert not read(flat).found


def test_alpha_is_kept_and_small_images_are_marked() -> None:
    rgba = _photo("astronaut", 600).convert("RGBA")
    rgba.putalpha(Image.new("L", rgba.size, 200))
    marked = embed(rgba, 7)
    assert marked.mode == "RGBA" and marked.getchannel("A").getextrema() == (200, 200)
    assert read(marked).content_id == "00000007"
    small = embed(_photo("coffee", 200), 9)  # under the 256 px canonical size
    assert small.size == (200, 133) and read(small).found


def test_watermark_for_respects_config_and_placeholders() -> None:
    assert watermark_for("a1", placeholder=False, config=WatermarkConfig()) == content_id("a1")
    assert watermark_for("a1", placeholder=True, config=WatermarkConfig()) is None
    assert watermark_for("a1", placeholder=False, config=WatermarkConfig(enabled=False)) is None


def test_every_rendition_carries_the_mark(tmp_path: Path) -> None:
    original = tmp_path / "spool.png"
    _photo("rocket", 1216).save(original)  # 1216 x 811: not square, so the cover crop shifts the frame
    specs = [
        RenditionConfig(name="web", width=1024, height=1024, fit="contain", format="jpeg", quality=85),
        RenditionConfig(name="square", width=640, height=640, fit="cover", format="webp", quality=80),
        RenditionConfig(name="wide", width=900, height=300, fit="cover", crop="attention", format="avif", quality=70),
        RenditionConfig(name="bright", width=800, height=800, format="png", enhance=["autocontrast"]),
    ]
    assert inherits_mark(specs[0], (1216, 811)) and not inherits_mark(specs[1], (1216, 811)) and not inherits_mark(specs[3], (1216, 811))
    assert inherits_mark(specs[1], (800, 800))
    cid = content_id("rocket-1")
    files = make_renditions(original, specs, tmp_path / "out", provenance=Provenance(image_id="rocket-1", prompt="a rocket"), watermark=cid)
    assert [f.name for f in files] == ["original", "web", "square", "wide", "bright"]
    for item in files:
        with Image.open(item.path) as published:
            published.load()
            assert read(published).content_id == f"{cid:08x}", item.name
            if item.name != "wide":  # 450 x 150 after halving: below what the mark survives (README)
                assert read(_laundered(published)).content_id == f"{cid:08x}", item.name
    # without a content id the pixels are the provider's: the PNG master is the original re-stamped
    plain = make_renditions(original, specs[:1], tmp_path / "plain", provenance=Provenance(image_id="rocket-1", prompt="a rocket"))
    with Image.open(plain[0].path) as master:
        assert not read(master).found


def test_verify_reads_the_watermark_without_metadata(tmp_path: Path, make_config) -> None:  # type: ignore[no-untyped-def]
    make_config()
    cid = content_id("verify-me")
    stripped = tmp_path / "shared.jpg"
    _laundered(embed(_photo("chelsea"), cid)).save(stripped, "JPEG", quality=75)
    runner = CliRunner()
    result = runner.invoke(app, ["verify", str(stripped)])
    assert result.exit_code == 0, result.output
    assert "no C2PA Content Credentials" in result.output
    assert f"watermark:  present: content-pipeline AI-generated image, content id {cid:08x}" in result.output
    unmarked = tmp_path / "unmarked.jpg"
    _photo("chelsea").save(unmarked, "JPEG", quality=75)
    result = runner.invoke(app, ["verify", str(unmarked)])
    assert result.exit_code == 1 and "watermark:  none found" in result.output
    result = runner.invoke(app, ["verify", "--json", str(stripped)])
    assert result.exit_code == 0 and f'"content_id": "{cid:08x}"' in result.output
