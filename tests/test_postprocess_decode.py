"""Safe decoding: caps below Pillow's, allowed formats, typed errors, EXIF orientation, sRGB."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageCms

from domain.errors import (
    CorruptImageError,
    EmptyImageError,
    ImageTooLargeError,
    InvalidImageError,
    UnsupportedImageError,
)
from config.imaging import DecodeConfig
from imaging.decode import decode_image

HTML = b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>\n"


def photo(name: str = "coffee") -> Image.Image:
    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")


def encoded(image: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(width: int = 10_000, height: int = 10_000) -> bytes:
    """A valid greyscale PNG of ``width`` x ``height`` zero pixels: ~100 KB that inflate
    to width * height bytes (100 MB by default)."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    parts = [compressor.compress(row) for _ in range(height)]
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")


def bad_inputs() -> dict[str, tuple[bytes, type[InvalidImageError]]]:
    full = encoded(photo())
    return {
        "bomb": (png_bomb(), ImageTooLargeError),
        "truncated": (full[: len(full) // 2], CorruptImageError),
        "empty": (b"", EmptyImageError),
        "html": (HTML, UnsupportedImageError),
    }


@pytest.mark.parametrize("case", ["bomb", "truncated", "empty", "html"])
def test_bad_images_raise_typed_errors(case: str, tmp_path: Path) -> None:
    data, error = bad_inputs()[case]
    path = tmp_path / f"{case}.png"
    path.write_bytes(data)
    with pytest.raises(error) as info:
        decode_image(path)
    assert str(path) in str(info.value)  # the message names the file


def test_bomb_is_small_on_disk_and_refused_before_inflating() -> None:
    data = png_bomb()
    assert len(data) < 200_000
    with pytest.raises(ImageTooLargeError, match=r"decompression bomb refused") as info:
        decode_image(data)
    assert "100000000 pixels" in str(info.value)  # Pillow's own check, raised as our error, never a warning


def test_pixel_cap_is_below_pillows_default() -> None:
    # 7000 x 7000 = 49 Mpx: Pillow opens it without a warning (its limit is 89.5 Mpx), we refuse it
    data = png_bomb(7000, 7000)
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (7000, 7000)
    assert 7000 * 7000 < Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageTooLargeError):
        decode_image(data)
    assert decode_image(data, config=DecodeConfig(max_pixels=50_000_000)).image.size == (7000, 7000)


def test_byte_cap_and_format_allow_list() -> None:
    data = encoded(photo())
    with pytest.raises(ImageTooLargeError, match="decode.max_bytes"):
        decode_image(data, config=DecodeConfig(max_bytes=4096))
    tiff = encoded(photo(), "TIFF")
    with pytest.raises(UnsupportedImageError, match="allowed format"):
        decode_image(tiff)
    with pytest.raises(UnsupportedImageError):
        decode_image(encoded(photo(), "JPEG"), config=DecodeConfig(formats=["PNG"]))


def test_exif_orientation_applied_and_camera_metadata_dropped() -> None:
    image = photo("chelsea")  # 451 x 300
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    exif[0x010F] = "ACME Camera Co"  # Make
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}  # GPS IFD
    data = encoded(image, "JPEG", exif=exif, quality=95)
    with Image.open(io.BytesIO(data)) as raw:
        assert raw.getexif()[0x010F] == "ACME Camera Co"
    decoded = decode_image(data)
    assert decoded.format == "JPEG"
    assert decoded.image.size == (300, 451)  # upright
    assert not decoded.image.getexif() and "exif" not in decoded.image.info
    # the top-left of the upright image is the bottom-left of the stored one
    upright = np.asarray(decoded.image, dtype=np.int16)
    expected = np.asarray(image.transpose(Image.Transpose.ROTATE_270), dtype=np.int16)
    assert np.abs(upright - expected).mean() < 4


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def rgb_profile(
    red: tuple[float, float, float], green: tuple[float, float, float], blue: tuple[float, float, float], gamma: float = 2.2, description: str = "Swapped RGB"
) -> bytes:
    """A minimal ICC v2 matrix/TRC display profile (ICC.1:2001-04 §6)."""

    def xyz(v: tuple[float, float, float]) -> bytes:
        return b"XYZ " + b"\0" * 4 + b"".join(_s15(c) for c in v)

    text = description.encode() + b"\0"
    desc = b"desc" + b"\0" * 4 + struct.pack(">I", len(text)) + text + b"\0" * 8 + b"\0\0\0" + b"\0" * 67
    curve = b"curv" + b"\0" * 4 + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"
    tags = [
        (b"desc", desc),
        (b"wtpt", xyz((0.9642, 1.0, 0.8249))),
        (b"rXYZ", xyz(red)),
        (b"gXYZ", xyz(green)),
        (b"bXYZ", xyz(blue)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        data += b"\0" * (-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + b"\0" * 4
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + b"\0" * 12
        + b"acsp"
        + b"\0" * 24
        + b"\0" * 4
        + _s15(0.9642)
        + _s15(1.0)
        + _s15(0.8249)
    )
    header += b"\0" * (128 - len(header))
    return header + struct.pack(">I", len(tags)) + table + body


def test_colour_converted_to_srgb_through_the_icc_profile() -> None:
    # a profile whose red and blue primaries are swapped: its "red" pixel is blue in sRGB
    srgb_red, srgb_green, srgb_blue = (0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141)
    profile = rgb_profile(srgb_blue, srgb_green, srgb_red)
    assert ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(profile))).strip() == "Swapped RGB"
    image = Image.new("RGB", (64, 64), (220, 40, 30))
    decoded = decode_image(encoded(image, "PNG", icc_profile=profile))
    r, g, b = decoded.image.getpixel((10, 10))
    assert b > 180 and r < 80, (r, g, b)
    assert decoded.converted_from == "Swapped RGB"
    assert "icc_profile" not in decoded.image.info
    # an sRGB-tagged image is left as it is
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    same = decode_image(encoded(image, "PNG", icc_profile=srgb))
    assert same.image.getpixel((10, 10)) == (220, 40, 30) and same.converted_from is None


def test_alpha_kept_and_palette_converted() -> None:
    rgba = photo("astronaut").convert("RGBA")
    rgba.putalpha(128)
    assert decode_image(encoded(rgba)).image.mode == "RGBA"
    assert decode_image(encoded(photo().convert("P"))).image.mode == "RGB"
    assert decode_image(encoded(photo(), "WEBP")).format == "WEBP"
    assert decode_image(encoded(photo(), "AVIF")).format == "AVIF"
