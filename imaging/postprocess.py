"""Stage 4: post-process the spooled original into the configured renditions.

The original is decoded safely first (imaging.decode: byte and pixel caps, allowed
formats, EXIF orientation, sRGB). Each rendition (config.imaging.RenditionConfig) is
then

* a resize into a box (``contain``: inside the box, aspect kept; ``cover``: fills the
  box and crops, ``crop: centre`` or ``crop: attention``, the window with the most
  edges and saturation, after libvips' ``interesting=attention``; ``exact``:
  stretched), or an upscale by ``scale`` (``upscaler``: ``lanczos``, ``model`` = a
  spandrel-loaded learned upscaler, ``remote`` = the FLUX studio /upscale endpoint;
  imaging.upscale), always resampled with Lanczos
  (``PIL.Image.Resampling.LANCZOS``);
* optionally enhanced (``autocontrast``: 0.5 % cut-off each end of the histogram,
  tone preserved; ``sharpen``: a light unsharp mask, radius 1.2 px, 60 %, threshold 2);
* encoded as JPEG (progressive, optimised), WebP (method 4), AVIF (speed 8) or PNG
  (level 6) at ``quality``, or at the highest quality whose file is at most
  ``target_bytes`` bytes, found by bisection (``encode_to_target``: integer
  quality for JPEG, fractional for WebP);
* stamped with its provenance (imaging.provenance: XMP, PNG text chunks) and never
  any EXIF;
* watermarked when a content id is given (imaging.watermark), before C2PA signing, so
  every file and its signature carry the marked pixels: the mark is embedded once in the
  full-size decoded original, and a rendition that is a whole-frame Lanczos resize of it
  inherits it; a crop (``cover`` with another aspect), a learned or remote upscale or an
  enhancement would lose or shift it, so such a rendition is made from the unmarked
  original and marked itself (``inherits_mark``).

Files land in ``<spool>/<image_id>/<name>.<ext>``. ``make_renditions`` also writes
``original.png``: the decoded original, lossless, metadata-cleaned and stamped, which
generation.upload publishes instead of the raw provider bytes.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from PIL import Image, ImageFilter, ImageOps, PngImagePlugin

from domain.errors import RenditionError
from config.imaging import DecodeConfig, RenditionConfig
from imaging.decode import decode_image
from imaging.files import write_atomic
from imaging.provenance import PNG_XMP_KEY, Provenance
import numpy as np
from imaging.provenance import restamp_png
from imaging.quality import load_callable, measure, perceptual_hash
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from imaging.decode import decode_loaded
from imaging.tagging import safety_verdict
from imaging.upscale import get_upscalers
from imaging.safety import blocking, detect
from config.settings import get_secrets
from imaging.credentials import sign_files
from imaging.watermark import embed as embed_watermark
from imaging.watermark import watermark_for
import uuid
from domain.model import FailureKind
from domain.errors import InvalidImageError
from storage.ledger import ClaimState, ImageLedger, ProcessedImage

if TYPE_CHECKING:
    from config.settings import Settings
    from storage.db import Database

EXTENSIONS = {"jpeg": ".jpg", "webp": ".webp", "png": ".png", "avif": ".avif"}
CONTENT_TYPES = {"jpeg": "image/jpeg", "webp": "image/webp", "png": "image/png", "avif": "image/avif"}
#: how far below ``target_bytes`` a searched rendition may land (fraction of the target)
TARGET_TOLERANCE = 0.05

#: Pillow first reduces by an integer factor (box filter) while the remaining Lanczos step
#: still shrinks by at least this factor (Pillow docs, ``Image.resize(reducing_gap=)``),
#: as libvips' ``thumbnail`` shrinks by an integer factor before its Lanczos step. At
#: 1.5 a 1024 px original becomes a 320 px thumbnail through 512 px: 65 instead of 74 ms
#: of CPU per image for the default renditions (benchmarks/postprocess_throughput.py).
REDUCING_GAP = 1.5

#: an upscaler: (RGB image, scale factor) -> upscaled image of round(w * scale) x round(h * scale)
Upscaler = Callable[[Image.Image, float], Image.Image]


@dataclass(frozen=True)
class RenditionFile:
    """A rendition on disk: size in pixels and bytes, SHA-256, and the quality it was encoded at."""

    name: str
    path: Path
    format: str
    width: int
    height: int
    bytes: int
    checksum: str
    quality: float | None = None

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


def energy_map(image: Image.Image) -> tuple[np.ndarray, float]:
    """The edge + saturation energy of ``image`` on a copy at most 256 px on its longer side
    (what ``attention_box`` and the channel presets' subject box measure) and the factor from
    ``image`` to that copy."""
    width, height = image.size
    factor = min(1.0, 256 / max(width, height))
    small = image.convert("RGB").resize((max(1, round(width * factor)), max(1, round(height * factor))), Image.Resampling.BILINEAR)
    grey = np.asarray(small.convert("L"), dtype=np.float32)
    edges = np.zeros_like(grey)
    edges[1:-1, 1:-1] = np.abs(grey[2:, 1:-1] - grey[:-2, 1:-1]) + np.abs(grey[1:-1, 2:] - grey[1:-1, :-2])
    saturation = np.asarray(small.convert("HSV"), dtype=np.float32)[..., 1]
    return edges + 0.5 * saturation, factor


def attention_box(image: Image.Image, box: tuple[int, int]) -> tuple[int, int, int, int]:
    """The crop window (left, top, right, bottom) in ``image`` of the aspect ratio of
    ``box`` that holds the most "interest": Sobel-like edge energy plus saturation,
    measured on a copy at most 256 px wide. Mirrors libvips' ``interesting=attention``
    (https://www.libvips.org/API/current/libvips-conversion.html#VipsInteresting)."""

    width, height = image.size
    target = box[0] / box[1]
    if width / height > target:
        crop_w, crop_h = max(1, round(height * target)), height
    else:
        crop_w, crop_h = width, max(1, round(width / target))
    if (crop_w, crop_h) == (width, height):
        return (0, 0, width, height)
    energy, factor = energy_map(image)
    sh, sw = energy.shape
    if crop_w < width:  # slide horizontally
        window = max(1, round(crop_w * factor))
        columns = np.concatenate([[0.0], np.cumsum(energy.sum(axis=0))])
        sums = columns[window:] - columns[:-window] if window < sw else np.array([columns[-1]])
        left = round(int(np.argmax(sums)) / factor)
        left = min(max(0, left), width - crop_w)
        return (left, 0, left + crop_w, height)
    window = max(1, round(crop_h * factor))
    rows = np.concatenate([[0.0], np.cumsum(energy.sum(axis=1))])
    sums = rows[window:] - rows[:-window] if window < sh else np.array([rows[-1]])
    top = round(int(np.argmax(sums)) / factor)
    top = min(max(0, top), height - crop_h)
    return (0, top, width, top + crop_h)


def centre_box(image: Image.Image, box: tuple[int, int]) -> tuple[int, int, int, int]:
    """The largest centred window of ``image`` with the aspect ratio of ``box``."""
    width, height = image.size
    target = box[0] / box[1]
    if width / height > target:
        crop_w = max(1, round(height * target))
        left = (width - crop_w) // 2
        return (left, 0, left + crop_w, height)
    crop_h = max(1, round(width / target))
    top = (height - crop_h) // 2
    return (0, top, width, top + crop_h)


def render(image: Image.Image, spec: RenditionConfig, *, upscaler: Upscaler | None = None) -> Image.Image:
    """``image`` resized per ``spec`` (Lanczos) and enhanced; the input is not modified.

    ``upscaler`` replaces Lanczos for ``scale`` > 1 (imaging.upscale).
    """
    lanczos = Image.Resampling.LANCZOS
    if spec.scale is not None:
        size = (max(1, round(image.width * spec.scale)), max(1, round(image.height * spec.scale)))
        if spec.scale > 1 and upscaler is not None:
            result = upscaler(image, spec.scale)
            if result.size != size:
                result = result.resize(size, lanczos)
        else:
            result = image.resize(size, lanczos)
    else:
        assert spec.width and spec.height
        box = (spec.width, spec.height)
        if spec.fit == "exact":
            result = image.resize(box, lanczos, reducing_gap=REDUCING_GAP)
        elif spec.fit == "cover":
            crop = attention_box(image, box) if spec.crop == "attention" else centre_box(image, box)
            result = image.resize(box, lanczos, box=crop, reducing_gap=REDUCING_GAP)
        else:
            ratio = min(box[0] / image.width, box[1] / image.height)
            size = (max(1, round(image.width * ratio)), max(1, round(image.height * ratio)))
            result = image if size == image.size else image.resize(size, lanczos, reducing_gap=REDUCING_GAP)
    return enhance(result, spec.enhance)


def enhance(image: Image.Image, steps: Sequence[str]) -> Image.Image:
    """Apply ``steps`` in order: ``autocontrast`` (0.5 % cut-off, tone preserved) and
    ``sharpen`` (unsharp mask radius 1.2 px, 60 %, threshold 2 levels)."""
    for step in steps:
        alpha = image.getchannel("A") if image.mode == "RGBA" else None
        rgb = image.convert("RGB") if alpha is not None else image
        if step == "autocontrast":
            rgb = ImageOps.autocontrast(rgb, cutoff=0.5, preserve_tone=True)
        elif step == "sharpen":
            rgb = rgb.filter(ImageFilter.UnsharpMask(radius=1.2, percent=60, threshold=2))
        if alpha is not None:
            rgb = rgb.convert("RGBA")
            rgb.putalpha(alpha)
        image = rgb
    return image


def encode(image: Image.Image, spec: RenditionConfig, *, quality: float | None = None, provenance: Provenance | None = None) -> bytes:
    """``image`` encoded per ``spec`` at ``quality`` (default ``spec.quality``), with
    ``provenance`` as XMP (and PNG text chunks). Never writes EXIF."""
    buffer = io.BytesIO()
    save_encoded(image, spec, buffer, quality=quality, provenance=provenance)
    return buffer.getvalue()


def save_encoded(image: Image.Image, spec: RenditionConfig, buffer: BinaryIO, *, quality: float | None = None, provenance: Provenance | None = None) -> None:
    """``encode`` into ``buffer``. Into a real file, Pillow encodes JPEG and PNG with the GIL
    released (``encode_to_file``); into memory it keeps the GIL for the whole encoding."""
    q = spec.quality if quality is None else quality
    xmp = provenance.xmp() if provenance else None
    if spec.format == "jpeg":
        extra: dict[str, object] = {"xmp": xmp} if xmp else {}
        if float(q).is_integer():
            extra["quality"] = int(q)
        else:  # between two integer qualities: the tables libjpeg would scale for a fractional quality
            extra["qtables"] = jpeg_qtables(float(q))
            extra["subsampling"] = "4:2:0"
        image.convert("RGB").save(buffer, "JPEG", optimize=True, progressive=True, **extra)
    elif spec.format == "webp":
        extra = {"xmp": xmp} if xmp else {}
        image.save(buffer, "WEBP", quality=float(q), method=4, **extra)
    elif spec.format == "avif":
        extra = {"xmp": xmp} if xmp else {}
        image.save(buffer, "AVIF", quality=int(round(q)), speed=8, **extra)
    else:
        image.save(buffer, "PNG", compress_level=6, pnginfo=png_info(provenance) if provenance else None)


#: ITU-T T.81 Annex K tables K.1 (luminance) and K.2 (chrominance), natural order
_JPEG_LUMA = [
    16,
    11,
    10,
    16,
    24,
    40,
    51,
    61,
    12,
    12,
    14,
    19,
    26,
    58,
    60,
    55,
    14,
    13,
    16,
    24,
    40,
    57,
    69,
    56,
    14,
    17,
    22,
    29,
    51,
    87,
    80,
    62,
    18,
    22,
    37,
    56,
    68,
    109,
    103,
    77,
    24,
    35,
    55,
    64,
    81,
    104,
    113,
    92,
    49,
    64,
    78,
    87,
    103,
    121,
    120,
    101,
    72,
    92,
    95,
    98,
    112,
    100,
    103,
    99,
]
_JPEG_CHROMA = [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32


def jpeg_qtables(quality: float) -> list[list[int]]:
    """Quantisation tables for a fractional JPEG ``quality`` (1..100), scaled from the
    Annex K tables as libjpeg's ``jpeg_quality_scaling`` does (5000 / q below 50,
    200 - 2 q above), without rounding q: integer qualities give libjpeg's own tables."""
    q = min(100.0, max(1.0, quality))
    scale = 5000.0 / q if q < 50 else 200.0 - 2.0 * q
    return [[min(255, max(1, int((base * scale + 50) // 100))) for base in table] for table in (_JPEG_LUMA, _JPEG_CHROMA)]


def png_info(provenance: Provenance) -> PngImagePlugin.PngInfo:
    """PNG chunks: ``iTXt`` ``XML:com.adobe.xmp`` with the XMP packet, and one text chunk per field."""
    info = PngImagePlugin.PngInfo()
    info.add_itxt(PNG_XMP_KEY, provenance.xmp().decode("utf-8"))
    for key, value in provenance.text_fields().items():
        if value.isascii():
            info.add_text(key, value)
        else:
            info.add_itxt(key, value)
    return info


def encode_to_target(image: Image.Image, spec: RenditionConfig, *, provenance: Provenance | None = None) -> tuple[bytes, float]:
    """The largest encoding of ``image`` whose size is at most ``spec.target_bytes``, and
    its quality.

    Bisection on quality: integers 1..100 first, then, for WebP (fractional quality)
    and JPEG (tables scaled for a fractional quality, ``jpeg_qtables``), further
    halvings between the two integers until the file lands within
    ``TARGET_TOLERANCE`` (5 %) below the target. AVIF takes integer qualities only. Raises RenditionError when even
    the lowest quality is over the target (the box is too large for that many bytes).
    """
    assert spec.target_bytes is not None
    target = spec.target_bytes
    low_q = 1.0
    best = encode(image, spec, quality=low_q, provenance=provenance)
    if len(best) > target:
        raise RenditionError(f"rendition {spec.name!r}: {len(best)} bytes at quality 1 is over target_bytes {target}; use a smaller box or a larger target")
    best_q = low_q
    top = encode(image, spec, quality=100, provenance=provenance)
    if len(top) <= target:
        return top, 100.0
    lo, hi = 1, 100  # size(lo) <= target < size(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        data = encode(image, spec, quality=mid, provenance=provenance)
        if len(data) <= target:
            lo, best, best_q = mid, data, float(mid)
        else:
            hi = mid
    if spec.format in ("webp", "jpeg"):  # fractional quality between the two integers
        flo, fhi = float(lo), float(hi)
        for _ in range(10):
            if len(best) >= target * (1 - TARGET_TOLERANCE):
                break
            mid_q = (flo + fhi) / 2
            data = encode(image, spec, quality=mid_q, provenance=provenance)
            if len(data) <= target:
                flo, best, best_q = mid_q, data, mid_q
            else:
                fhi = mid_q
    return best, best_q


def inherits_mark(spec: RenditionConfig, size: tuple[int, int]) -> bool:
    """Whether rendition ``spec`` of a watermarked original of ``size`` (pixels) keeps the
    mark: a whole-frame Lanczos resize with no enhancement does (imaging.watermark reads at
    a canonical size); a crop, a learned or remote upscale or a tone change needs its own."""
    if spec.enhance:
        return False
    if spec.scale is not None:
        return spec.scale <= 1 or spec.upscaler == "lanczos"
    if spec.fit != "cover":
        return True
    assert spec.width and spec.height
    return centre_box(Image.new("1", size), (spec.width, spec.height)) == (0, 0, *size)


def render_one(
    source: Image.Image,
    spec: RenditionConfig,
    out_dir: Path,
    *,
    provenance: Provenance | None = None,
    upscaler: Upscaler | None = None,
    watermark: int | None = None,
) -> RenditionFile:
    """Render, encode and write one rendition of the decoded ``source`` into ``out_dir``,
    watermarked with content id ``watermark`` after rendering unless None."""
    image = render(source, spec, upscaler=upscaler)
    if watermark is not None:
        image = embed_watermark(image, watermark)
    if spec.format == "jpeg" and image.mode == "RGBA":
        image = _flatten(image)
    quality: float | None
    path = out_dir / f"{spec.name}{EXTENSIONS[spec.format]}"

    def refused(exc: Exception) -> RenditionError:  # Pillow refusing the metadata or the encoding: this image only
        return RenditionError(f"rendition {spec.name!r}: cannot encode {spec.format}: {str(exc)[:200]}")

    if spec.target_bytes is not None:
        try:
            data, quality = encode_to_target(image, spec, provenance=provenance)
        except (ValueError, OSError) as exc:
            raise refused(exc) from exc
        write_atomic(path, data)
    else:  # encoded straight into its file: the GIL stays free for the run's other images
        quality = None if spec.format == "png" else float(spec.quality)
        tmp = path.with_name(path.name + ".part")
        try:
            with open(tmp, "wb") as handle:
                try:
                    save_encoded(image, spec, handle, provenance=provenance)
                except (ValueError, OSError) as exc:
                    raise refused(exc) from exc
            data = tmp.read_bytes()
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return RenditionFile(spec.name, path, spec.format, image.width, image.height, len(data), hashlib.sha256(data).hexdigest(), quality)


def _flatten(image: Image.Image) -> Image.Image:
    """RGBA on white (JPEG has no alpha)."""
    background = Image.new("RGB", image.size, (255, 255, 255))
    background.paste(image, mask=image.getchannel("A"))
    return background


def _master_png(original: Path | None, source: Image.Image, provenance: Provenance | None) -> bytes:
    """The published original: the provider's PNG with its metadata chunks replaced by the
    provenance (pixels untouched, no re-encoding) when its pixels needed no change, else
    (or without ``original``: watermarked pixels) ``source`` re-encoded as PNG (zlib level
    1: lossless, ~6x faster than level 6)."""

    try:
        data = original.read_bytes() if original is not None else b""
    except OSError:
        data = b""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        restamped = restamp_png(data, provenance, expected_size=source.size)
        if restamped is not None:
            return restamped
    buffer = io.BytesIO()
    source.save(buffer, "PNG", compress_level=1, pnginfo=png_info(provenance) if provenance else None)
    return buffer.getvalue()


def make_renditions(
    original: Path,
    specs: list[RenditionConfig],
    out_dir: Path,
    *,
    decode: DecodeConfig | None = None,
    provenance: Provenance | None = None,
    upscalers: dict[str, Upscaler] | None = None,
    source: Image.Image | None = None,
    write_original: bool = True,
    watermark: int | None = None,
) -> list[RenditionFile]:
    """Write every rendition of ``original`` into ``out_dir`` (plus ``original.png``, the
    cleaned, stamped original, listed first, when ``write_original``).

    ``source``: the already decoded image (skips decoding). ``upscalers`` by
    ``RenditionConfig.upscaler`` name. ``watermark``: a 32-bit content id
    (imaging.watermark.watermark_for) embedded once in the full-size pixels, which every
    file is then made from. Raises InvalidImageError (a subclass) when the original does
    not decode safely, RenditionError / UpscaleError for a rendition.
    """
    if source is None:
        source = decode_image(original, config=decode).image
    marked = embed_watermark(source, watermark) if watermark is not None else source
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    if write_original:
        data = _master_png(original if watermark is None else None, marked, provenance)
        path = out_dir / "original.png"
        write_atomic(path, data)
        files.append(RenditionFile("original", path, "png", source.width, source.height, len(data), hashlib.sha256(data).hexdigest()))
    for spec in specs:
        upscaler = (upscalers or {}).get(spec.upscaler) if spec.upscaler != "lanczos" else None
        if spec.upscaler != "lanczos" and spec.scale and spec.scale > 1 and upscaler is None:
            raise RenditionError(f"rendition {spec.name!r}: upscaler {spec.upscaler!r} is not configured (see upscale.*)")
        if watermark is None or inherits_mark(spec, source.size):
            files.append(render_one(marked, spec, out_dir, provenance=provenance, upscaler=upscaler))
        else:  # marked after rendering, from the unmarked original: never two marks on top of each other
            files.append(render_one(source, spec, out_dir, provenance=provenance, upscaler=upscaler, watermark=watermark))
    return files


def process_file(
    spool: str,
    specs: list[RenditionConfig],
    out_dir: str,
    *,
    decode: DecodeConfig,
    provenance: Provenance | None,
    aesthetic_scorer: str | None = None,
    upscalers: dict[str, Upscaler] | None = None,
    source: Image.Image | None = None,
    watermark: int | None = None,
) -> tuple[list[RenditionFile], float, dict[str, float], str]:
    """Decode ``spool`` (unless ``source``, its already safely decoded image, is given),
    write its renditions into ``out_dir`` (watermarked with content id ``watermark``
    unless None), and measure it (unmarked): returns (files, quality score, quality
    measures, pHash). Plain picklable arguments, so it runs in a worker process too
    (``processing.executor: processes``).
    Raises InvalidImageError, RenditionError, UpscaleError, ConfigError."""

    image = source if source is not None else decode_image(Path(spool), config=decode).image
    files = make_renditions(Path(spool), specs, Path(out_dir), provenance=provenance, upscalers=upscalers, source=image, watermark=watermark)
    aesthetic = load_callable(aesthetic_scorer, field="tagging.aesthetic_scorer") if aesthetic_scorer else None
    report = measure(image, aesthetic=aesthetic)  # type: ignore[arg-type]  # its 0..1 range is checked
    return files, report.score, report.metrics, perceptual_hash(image)


_pools: dict[int, Any] = {}
_pools_lock = threading.Lock()
_slots: dict[int, threading.BoundedSemaphore] = {}


def cpu_slots(workers: int) -> threading.BoundedSemaphore:
    """The semaphore that lets at most ``workers`` images of this process run their CPU
    work (the image safety check, post-processing in threads) at once: the run's other
    images wait for a slot rather than share the cores ``concurrency`` ways (more
    threads than cores only add switches and cache misses)."""
    with _pools_lock:
        if workers not in _slots:
            _slots[workers] = threading.BoundedSemaphore(workers)
        return _slots[workers]


def process_pool(workers: int) -> Any:
    """The process pool of this process (``workers`` processes, spawned: forking a
    process whose Prefect / Pillow threads run can deadlock), created on first use."""

    with _pools_lock:
        if workers not in _pools:
            _pools[workers] = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        return _pools[workers]


@dataclass(frozen=True)
class PostProcessed:
    """What post-processing made of a spooled original: the files (``original`` first),
    the quality score 0..1 and its measures, the 64-bit pHash (16 hex), the image safety
    detections (when image safety is on); or, when the image safety check refused the
    image, ``blocked`` (the reason) and no files."""

    files: list[RenditionFile]
    quality_score: float | None = None
    quality_metrics: dict[str, float] | None = None
    phash: str | None = None
    blocked: str | None = None
    safety: list[dict[str, Any]] | None = None


def postprocess_row(row: Any, settings: Settings, decoded: Image.Image | None = None) -> PostProcessed:
    """Post-process the spooled original of image ``row`` (pure: no database write).

    Decodes it safely, once: ``decoded`` is the image the provider's output check already
    decoded (providers.base.decode_output), then only normalised (imaging.decode.decode_loaded);
    without it the spooled file is decoded. Image safety (NudeNet detections, imaging.safety)
    and the optional classifier may block it (nothing is written). Otherwise writes the
    renditions with provenance (what published files may carry: no prompt when private)
    and, for a real image, the invisible watermark (``watermark.enabled``, imaging.watermark)
    into ``<spool>/<image_id>/``, signs them with C2PA Content Credentials when enabled
    (imaging.credentials), and measures quality and pHash. The CPU work runs in a
    process pool (the default ``processing.executor: processes``) unless the image is a
    placeholder or a learned or remote upscaler is needed (models stay loaded once, in
    this process), else in the calling thread, at most ``processing.workers`` images at
    once (``cpu_slots``). The image safety check takes a CPU slot too.
    Raises InvalidImageError, RenditionError, UpscaleError, ConfigError.
    """

    assert row.spool_path, f"image {row.idempotency_key} has no spooled original"
    spool = Path(row.spool_path)
    source = None
    if decoded is not None:
        source = decode_loaded(decoded, source_bytes=spool.stat().st_size, config=settings.decode, name=str(spool)).image
    safety = settings.policy.image_safety
    workers = settings.processing.workers or os.cpu_count() or 1
    detections: list[dict[str, Any]] | None = None
    if safety.enabled or settings.policy.image_classifier:
        if source is None:
            source = decode_image(spool, config=settings.decode).image
        verdict = None
        # NudeNet on every image a provider made: detections recorded on the row (imaging.safety).
        # A placeholder is our own rendering of the prompt's text (providers/placeholder.py),
        # never published as content: not checked (and an offline run never loads the detector)
        if safety.enabled and not row.is_placeholder:
            with cpu_slots(workers):
                detections = detect(source, safety)
            verdict = blocking(detections, safety)
        if verdict is None and settings.policy.image_classifier:
            verdict = safety_verdict(source, settings.policy)
        if verdict:
            return PostProcessed([], blocked=f"content policy: {verdict}", safety=detections)
    needs = {spec.upscaler for spec in settings.renditions if spec.scale and spec.scale > 1} - {"lanczos"}
    args = (str(spool), list(settings.renditions), str(spool.with_suffix("")))
    # what published files may carry: no prompt when private, long fields cut (imaging.provenance)
    kwargs: dict[str, Any] = {
        "decode": settings.decode,
        "provenance": Provenance.of(row).published(),
        "aesthetic_scorer": settings.tagging.aesthetic_scorer,
        "source": source,
        # the invisible watermark of a real image, embedded before C2PA signs the files below
        "watermark": watermark_for(row.image_id, placeholder=bool(row.is_placeholder), config=settings.watermark),
    }
    if needs or settings.processing.executor == "threads" or row.is_placeholder:
        kwargs["upscalers"] = get_upscalers(settings.upscale, settings.decode) if needs else None
        with cpu_slots(workers):
            files, score, metrics, phash = process_file(*args, **kwargs)
    else:
        try:
            files, score, metrics, phash = process_pool(workers).submit(process_file, *args, **kwargs).result()
        except BrokenProcessPool:  # a worker died (killed, out of memory): a new pool next time, this one here
            with _pools_lock:
                _pools.pop(workers, None)
            files, score, metrics, phash = process_file(*args, **kwargs)
    return PostProcessed(sign_published(files, row, settings), score, metrics, phash, safety=detections)


def sign_published(files: list[RenditionFile], row: Any, settings: Settings) -> list[RenditionFile]:
    """``files`` of image ``row`` signed with C2PA Content Credentials when ``c2pa.enabled``
    (imaging.credentials: the published provenance, never a private prompt); unchanged
    otherwise. Every path that makes files to publish (post-processing, a pending upload's
    renditions made again) ends here. Raises ConfigError on an unusable signer."""
    if not settings.c2pa.enabled:
        return files
    key = get_secrets().c2pa_private_key
    return sign_files(files, Provenance.of(row).published(), settings.c2pa, key.get_secret_value() if key is not None else None, settings.credentials_dir)


def postprocess_image(db: Database, pk: int, settings: Settings) -> list[RenditionFile]:
    """Post-process image row ``pk`` outside a flow (tools, tests) and record it.

    ``postprocess_row``, then: blocked -> row ``blocked`` (returns []); a file that does
    not decode -> row ``failed`` (rejected) and the InvalidImageError re-raised; else row
    ``processed`` with its quality score, measures, pHash and safety detections. Claims
    the slot for the step and releases it.
    """

    ledger = ImageLedger(db)
    run_key = f"local-{uuid.uuid4().hex[:12]}"
    claim = ledger.claim(pk, run_key)
    if claim.state is not ClaimState.claimed:
        raise RuntimeError(f"image {claim.row.idempotency_key} is {claim.state.value}")
    row = claim.row
    try:
        outcome = postprocess_row(row, settings)
    except InvalidImageError as exc:
        ledger.mark_failed(pk, run_key, FailureKind.rejected, str(exc))
        raise
    if outcome.blocked:
        ledger.mark_blocked(pk, run_key, outcome.blocked, safety=outcome.safety)
        return []
    ledger.mark_processed(pk, run_key, ProcessedImage(outcome.quality_score, outcome.quality_metrics, outcome.phash, tuple(row.tags), safety=outcome.safety))
    ledger.release(pk, run_key)
    return outcome.files
