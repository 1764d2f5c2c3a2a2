"""Provenance read back with Pillow from every rendition format; camera EXIF never kept."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import skimage.data
from PIL import Image

from config.imaging import RenditionConfig
from imaging.postprocess import make_renditions
from imaging.provenance import DIGITAL_SOURCE_TYPE, NS, PNG_XMP_KEY, Provenance, parse_xmp, read_provenance

PROVENANCE = Provenance(
    image_id="3f2a9c1b7d10",
    prompt="a handmade ceramic mug on a linen cloth, café <morning> & steam",
    negative_prompt="blurry, watermark",
    seed=1234567890,
    provider="automatic1111",
    model="sdxl-base-1.0",
    template="ceramic-mug",
    template_version=3,
    variant="b",
    category="products",
)


@pytest.fixture(scope="module")
def camera_jpeg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real photo as a camera JPEG: Make, Model, GPS location, orientation."""
    exif = Image.Exif()
    exif[0x010F] = "ACME"
    exif[0x0110] = "Shooter 9000"
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}
    path = tmp_path_factory.mktemp("camera") / "camera.jpg"
    Image.fromarray(skimage.data.coffee()).save(path, "JPEG", quality=92, exif=exif)
    return path


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "avif", "png"])
def test_every_format_carries_the_provenance(fmt: str, camera_jpeg: Path, tmp_path: Path) -> None:
    spec = RenditionConfig(name="web", width=320, height=320, format=fmt)
    files = make_renditions(camera_jpeg, [spec], tmp_path, provenance=PROVENANCE)
    assert [f.name for f in files] == ["original", "web"]
    for file in files:
        found = read_provenance(file.path)
        assert found["prompt"] == PROVENANCE.prompt
        assert found["seed"] == "1234567890"
        assert found["digital_source_type"] == DIGITAL_SOURCE_TYPE
        assert found["negative_prompt"] == "blurry, watermark"
        assert (found["provider"], found["model"]) == ("automatic1111", "sdxl-base-1.0")
        assert (found["template"], found["template_version"]) == ("ceramic-mug", "3")
        with Image.open(file.path) as image:
            exif = image.getexif()
            assert not exif, dict(exif)  # no Make, Model, GPS: nothing from the camera
            assert not exif.get_ifd(0x8825)
            raw = file.path.read_bytes()
            assert b"ACME" not in raw and b"Shooter 9000" not in raw
            packet = image.info.get("xmp") or image.info.get(PNG_XMP_KEY)
            assert packet, f"{fmt}: no XMP packet"
            if fmt == "png" or file.name == "original":
                # PNG: iTXt XML:com.adobe.xmp plus one text chunk per field
                assert image.text["prompt"] == PROVENANCE.prompt
                assert image.text["digital_source_type"] == DIGITAL_SOURCE_TYPE
                assert image.text["seed"] == "1234567890"


def test_xmp_is_well_formed_iptc() -> None:
    packet = PROVENANCE.xmp().decode()
    assert packet.startswith("<?xpacket begin=")
    root = ET.fromstring(packet[packet.index("<x:xmpmeta") : packet.rindex("</x:xmpmeta>") + len("</x:xmpmeta>")])
    [desc] = list(root.iter(f"{{{NS['rdf']}}}Description"))
    assert desc.attrib[f"{{{NS['Iptc4xmpExt']}}}DigitalSourceType"] == DIGITAL_SOURCE_TYPE
    assert desc.find(f"{{{NS['dc']}}}description/{{{NS['rdf']}}}Alt/{{{NS['rdf']}}}li").text == PROVENANCE.prompt
    parsed = parse_xmp(packet)
    assert parsed["description"] == PROVENANCE.prompt and parsed["variant"] == "b"
    assert "automatic1111/sdxl-base-1.0" in parsed["creator_tool"]
    with pytest.raises(ValueError):
        parse_xmp("<x:xmpmeta><broken</x:xmpmeta>")


def test_pillow_reads_the_jpeg_xmp_with_getxmp(tmp_path: Path) -> None:
    pytest.importorskip("defusedxml")
    [_, web] = make_renditions(_png(tmp_path), [RenditionConfig(name="w", width=64, height=64)], tmp_path / "o", provenance=PROVENANCE)
    with Image.open(web.path) as image:
        xmp = image.getxmp()
    text = str(xmp)
    assert DIGITAL_SOURCE_TYPE in text and "1234567890" in text


def _png(tmp_path: Path) -> Path:
    path = tmp_path / "src.png"
    buffer = io.BytesIO()
    Image.fromarray(skimage.data.chelsea()).save(buffer, "PNG")
    path.write_bytes(buffer.getvalue())
    return path


def test_png_master_is_restamped_without_touching_the_pixels(tmp_path: Path) -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "shot on ACME Shooter 9000 at 48.85N 2.29E")
    info.add_text("parameters", "old prompt, Steps: 20")
    source = tmp_path / "provider.png"
    Image.fromarray(skimage.data.coffee()).save(source, "PNG", pnginfo=info, compress_level=9)
    [master] = make_renditions(source, [], tmp_path / "out", provenance=PROVENANCE)
    raw = master.path.read_bytes()
    assert b"ACME" not in raw and b"old prompt" not in raw
    idat = lambda data: data[data.index(b"IDAT") - 4 : data.index(b"IEND")]  # noqa: E731
    assert idat(raw) == idat(source.read_bytes())  # pixel data copied, not re-encoded
    found = read_provenance(master.path)
    assert found["prompt"] == PROVENANCE.prompt and found["digital_source_type"] == DIGITAL_SOURCE_TYPE
    with Image.open(master.path) as a, Image.open(source) as b:
        assert a.tobytes() == b.tobytes()


def test_png_with_exif_orientation_is_re_encoded_upright(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "ACME"
    source = tmp_path / "rotated.png"
    Image.fromarray(skimage.data.chelsea()).save(source, "PNG", exif=exif)
    [master] = make_renditions(source, [], tmp_path / "out", provenance=PROVENANCE)
    with Image.open(master.path) as image:
        assert image.size == (300, 451) and not image.getexif()
    assert b"ACME" not in master.path.read_bytes()
    assert read_provenance(master.path)["seed"] == "1234567890"
