"""Safe decoding of image bytes: caps, allowed formats, EXIF orientation, sRGB.

Every image the pipeline opens (a provider's output in the spool, a remote
upscaler's answer) goes through ``decode_image``:

1. a byte cap (``DecodeConfig.max_bytes``) before anything is parsed; 0 bytes is an
   ``EmptyImageError``;
2. only the allowed Pillow formats are tried (``Image.open(..., formats=...)``), so
   HTML, SVG, TIFF or PSD never reach a decoder (``UnsupportedImageError``);
3. a pixel cap (``max_pixels``, below Pillow's ``MAX_IMAGE_PIXELS`` of 89,478,485)
   checked on the header, before the pixels are decompressed: a decompression bomb
   raises ``ImageTooLargeError``, and Pillow's own ``DecompressionBombWarning`` is
   turned into the same error, never a warning;
4. truncated or damaged data (``LOAD_TRUNCATED_IMAGES`` stays off) raises
   ``CorruptImageError``;
5. EXIF orientation is applied (``ImageOps.exif_transpose``) and the colours are
   converted to sRGB through the embedded ICC profile with LittleCMS
   (``PIL.ImageCms``); images without a profile are taken as sRGB.

The result is a fresh RGB or RGBA image with no EXIF, GPS, XMP or ICC data attached:
camera metadata and location are never carried into renditions.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from domain.errors import CorruptImageError, EmptyImageError, ImageTooLargeError, UnsupportedImageError
from config.imaging import DecodeConfig

_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@dataclass(frozen=True)
class DecodedImage:
    """A safely decoded image: ``image`` is RGB or RGBA in sRGB, upright, metadata-free.

    ``format`` is the source's Pillow format name, ``source_bytes`` its size in bytes,
    ``converted_from`` the ICC profile description converted from (None: taken as sRGB).
    """

    image: Image.Image
    format: str
    source_bytes: int
    converted_from: str | None = None


def _describe(data: bytes) -> str:
    head = data[:40].decode("latin-1").replace("\n", " ").replace("\r", " ")
    return repr(head)


def _read_capped(source: bytes | Path, config: DecodeConfig, label: str) -> bytes:
    """The bytes of ``source``: a file over ``config.max_bytes`` is refused before it is read."""
    if isinstance(source, Path):
        try:
            size = source.stat().st_size
        except OSError as exc:
            raise CorruptImageError(f"{label}: cannot read: {exc}") from exc
        if size > config.max_bytes:
            raise ImageTooLargeError(f"{label}: {size} bytes is over the cap of {config.max_bytes} bytes (decode.max_bytes)")
        data = source.read_bytes()
    else:
        data = bytes(source)
    if not data:
        raise EmptyImageError(f"{label}: 0 bytes, not an image")
    if len(data) > config.max_bytes:
        raise ImageTooLargeError(f"{label}: {len(data)} bytes is over the cap of {config.max_bytes} bytes (decode.max_bytes)")
    return data


def decode_image(source: bytes | Path, *, config: DecodeConfig | None = None, name: str | None = None) -> DecodedImage:
    """Decode ``source`` (bytes or a file path) under the caps of ``config``.

    ``name`` labels the input in error messages (defaults to the path or ``<bytes>``).
    Raises EmptyImageError, ImageTooLargeError, UnsupportedImageError or
    CorruptImageError (all InvalidImageError), naming the input and the offending value.
    """
    config = config or DecodeConfig()
    label = name or (str(source) if isinstance(source, Path) else "<bytes>")
    data = _read_capped(source, config, label)
    formats = list(config.formats)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data), formats=tuple(formats))
    except UnidentifiedImageError as exc:
        raise UnsupportedImageError(f"{label}: not an image in an allowed format ({', '.join(formats)}); it starts with {_describe(data)}") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"{label}: decompression bomb refused: {exc}") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise CorruptImageError(f"{label}: damaged {formats} header: {exc}") from exc
    # not closed: ``image`` may be ``opened`` itself (an in-memory buffer, nothing to release)
    fmt = opened.format or "?"
    width, height = opened.size
    if width < 1 or height < 1:
        raise CorruptImageError(f"{label}: {fmt} with an empty size {width}x{height}")
    if width * height > config.max_pixels:
        raise ImageTooLargeError(
            f"{label}: {fmt} of {width}x{height} = {width * height} pixels is over the cap of "
            f"{config.max_pixels} pixels (decode.max_pixels): decompression bomb refused"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened.load()
            # upright: a transposed copy only when the EXIF orientation asks for one
            rotated = opened.getexif().get(0x0112, 1) not in (None, 1)
            image = ImageOps.exif_transpose(opened) if rotated else opened
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"{label}: decompression bomb refused: {exc}") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise CorruptImageError(f"{label}: truncated or damaged {fmt} data: {exc}") from exc
    icc = opened.info.get("icc_profile")
    image, converted_from = _to_srgb(image, icc, label)
    # nothing of the source travels on: drop EXIF (camera, GPS), XMP, ICC, text
    image.info = {}
    image.getexif().clear()
    return DecodedImage(image=image, format=fmt, source_bytes=len(data), converted_from=converted_from)


def decode_loaded(opened: Image.Image, *, source_bytes: int, config: DecodeConfig | None = None, name: str = "<image>") -> DecodedImage:
    """``decode_image`` for an image already decoded (pixels loaded) by the provider's output
    check (providers.base.decode_output): the same format, byte and pixel caps, EXIF
    orientation, sRGB conversion and metadata stripping, without decoding the bytes again.
    ``source_bytes``: the encoded size. Raises the same InvalidImageError subclasses."""
    config = config or DecodeConfig()
    fmt = opened.format or "?"
    if fmt not in config.formats:
        raise UnsupportedImageError(f"{name}: {fmt} is not an allowed format ({', '.join(config.formats)})")
    if source_bytes > config.max_bytes:
        raise ImageTooLargeError(f"{name}: {source_bytes} bytes is over the cap of {config.max_bytes} bytes (decode.max_bytes)")
    width, height = opened.size
    if width < 1 or height < 1:
        raise CorruptImageError(f"{name}: {fmt} with an empty size {width}x{height}")
    if width * height > config.max_pixels:
        raise ImageTooLargeError(
            f"{name}: {fmt} of {width}x{height} = {width * height} pixels is over the cap of "
            f"{config.max_pixels} pixels (decode.max_pixels): decompression bomb refused"
        )
    rotated = opened.getexif().get(0x0112, 1) not in (None, 1)
    image = ImageOps.exif_transpose(opened) if rotated else opened
    image, converted_from = _to_srgb(image, opened.info.get("icc_profile"), name)
    image.info = {}
    image.getexif().clear()
    return DecodedImage(image=image, format=fmt, source_bytes=source_bytes, converted_from=converted_from)


def _to_srgb(image: Image.Image, icc: bytes | None, label: str) -> tuple[Image.Image, str | None]:
    """``image`` as RGB or RGBA in sRGB; the ICC profile's description when converted."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    alpha = image.convert("RGBA").getchannel("A") if has_alpha else None
    description: str | None = None
    if icc:
        try:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            description = (ImageCms.getProfileDescription(profile) or "").strip() or "embedded profile"
        except (OSError, ImageCms.PyCMSError):
            profile = None  # an unreadable profile: keep the pixels as they are, taken as sRGB
        if profile is not None and "srgb" not in (description or "").lower():
            base = image.convert("CMYK" if image.mode == "CMYK" else ("L" if image.mode in ("L", "LA") else "RGB"))
            try:
                rgb = ImageCms.profileToProfile(base, profile, _SRGB, outputMode="RGB", renderingIntent=ImageCms.Intent.PERCEPTUAL)
            except ImageCms.PyCMSError:
                rgb = base.convert("RGB")  # a profile that does not match the pixel data
                description = None
            assert rgb is not None
        else:
            rgb = image.convert("RGB")
            description = None
    else:
        rgb = image if image.mode == "RGB" and alpha is None else image.convert("RGB")
    if alpha is not None:
        rgb = rgb.convert("RGBA")
        rgb.putalpha(alpha)
    return rgb, description


def allowed_formats(config: DecodeConfig | None = None) -> Sequence[str]:
    """The Pillow format names ``decode_image`` accepts."""
    return list((config or DecodeConfig()).formats)
