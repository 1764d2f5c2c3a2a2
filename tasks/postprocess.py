"""Stage 4: post-process the spooled original into the configured renditions.

Each rendition (core.settings.RenditionConfig) is a resize (``contain``, ``cover``
with a centre crop, ``exact``) or a Lanczos upscale by ``scale``, encoded as JPEG,
WebP or PNG. Files land next to the original in the spool folder
(``<spool>/<image_id>/<name>.<ext>``). Resampling is always Lanczos
(``PIL.Image.Resampling.LANCZOS``), the filter MISSION.md names for upscaling.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

from core.errors import InvalidImageError
from core.settings import RenditionConfig

EXTENSIONS = {"jpeg": ".jpg", "webp": ".webp", "png": ".png"}
CONTENT_TYPES = {"jpeg": "image/jpeg", "webp": "image/webp", "png": "image/png"}


@dataclass(frozen=True)
class RenditionFile:
    """A rendition on disk: size in pixels and bytes, SHA-256."""

    name: str
    path: Path
    format: str
    width: int
    height: int
    bytes: int
    checksum: str

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


def render(image: Image.Image, spec: RenditionConfig) -> Image.Image:
    """``image`` resized per ``spec`` (Lanczos); the input is not modified."""
    lanczos = Image.Resampling.LANCZOS
    if spec.scale is not None:
        size = (max(1, round(image.width * spec.scale)), max(1, round(image.height * spec.scale)))
        return image.resize(size, lanczos)
    assert spec.width and spec.height
    box = (spec.width, spec.height)
    if spec.fit == "exact":
        return image.resize(box, lanczos)
    if spec.fit == "cover":
        return ImageOps.fit(image, box, method=lanczos, centering=(0.5, 0.5))
    return ImageOps.contain(image, box, method=lanczos)


def encode(image: Image.Image, spec: RenditionConfig) -> bytes:
    """``image`` encoded per ``spec`` (JPEG progressive + optimised; WebP method 4; PNG level 6)."""
    buffer = io.BytesIO()
    if spec.format == "jpeg":
        image.convert("RGB").save(buffer, "JPEG", quality=spec.quality, optimize=True, progressive=True)
    elif spec.format == "webp":
        image.save(buffer, "WEBP", quality=spec.quality, method=4)
    else:
        image.save(buffer, "PNG", compress_level=6)
    return buffer.getvalue()


def make_renditions(original: Path, specs: list[RenditionConfig], out_dir: Path) -> list[RenditionFile]:
    """Write every rendition of ``original`` into ``out_dir``; InvalidImageError if it does not decode."""
    try:
        with Image.open(original) as opened:
            opened.load()
            source = opened.convert("RGBA" if opened.mode in ("RGBA", "LA", "P") else "RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidImageError(f"{original}: cannot decode for post-processing: {exc}") from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for spec in specs:
        image = render(source, spec)
        data = encode(image, spec)
        path = out_dir / f"{spec.name}{EXTENSIONS[spec.format]}"
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        files.append(
            RenditionFile(spec.name, path, spec.format, image.width, image.height, len(data), hashlib.sha256(data).hexdigest())
        )
    return files
