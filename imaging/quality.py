"""Quality score from measurable properties, perceptual hash and near-duplicate check.

Measures, on a copy at most 512 px on its longer side (so the score does not depend
on the resolution), each mapped to 0..1:

* ``sharpness``: variance of the Laplacian of the grey image (Pech-Pacheco et al.,
  "Diatom autofocusing in brightfield microscopy", ICPR 2000), as
  ``min(1, log10(1 + var) / 3)``: a variance of 1000 (crisp) or more scores 1;
* ``exposure``: ``1 - 2 |mean luminance - 0.5|`` less the fraction of clipped pixels
  (luminance <= 2 or >= 253 of 255);
* ``contrast``: RMS contrast (standard deviation of luminance in 0..1) / 0.25, at most 1;
* ``colourfulness``: Hasler & Süsstrunk, "Measuring colourfulness in natural
  images", SPIE 5007 (2003), ``M = sigma_rgyb + 0.3 mu_rgyb``, as ``min(1, M / 100)``
  (their scale: 59 "highly", 82 "extremely" colourful).

The score is the weighted mean 0.35 sharpness + 0.25 exposure + 0.2 contrast + 0.2
colourfulness; an aesthetic scorer, when configured, is averaged in with equal
weight. The perceptual hash is imagehash's 64-bit DCT pHash (16 hex digits); two
images are near-duplicates when the Hamming distance of their hashes is at most
``DedupConfig.max_distance`` bits.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from PIL import Image

from domain.errors import ConfigError
import numpy as np

WEIGHTS = {"sharpness": 0.35, "exposure": 0.25, "contrast": 0.2, "colourfulness": 0.2}


@dataclass(frozen=True)
class QualityReport:
    """``score`` in 0..1 and each measure in 0..1 (``raw_*``: the unmapped figures)."""

    score: float
    metrics: dict[str, float]


def measure(image: Image.Image, *, aesthetic: Callable[[Image.Image], float] | None = None) -> QualityReport:
    """The quality report of ``image`` (any mode; alpha ignored)."""

    rgb = image.convert("RGB")
    factor = min(1.0, 512 / max(rgb.size))
    if factor < 1.0:
        rgb = rgb.resize((max(1, round(rgb.width * factor)), max(1, round(rgb.height * factor))), Image.Resampling.BILINEAR)
    pixels = np.asarray(rgb, dtype=np.float64)
    grey = np.asarray(rgb.convert("L"), dtype=np.float64)
    laplacian = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4 * grey[1:-1, 1:-1]
    lap_var = float(laplacian.var()) if laplacian.size else 0.0
    sharpness = min(1.0, float(np.log10(1 + lap_var)) / 3)
    lum = grey / 255.0
    mean = float(lum.mean())
    clipped = float(((grey <= 2) | (grey >= 253)).mean())
    exposure = max(0.0, 1 - 2 * abs(mean - 0.5) - clipped)
    rms = float(lum.std())
    contrast = min(1.0, rms / 0.25)
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    colourful_m = float(np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2))
    colourfulness = min(1.0, colourful_m / 100)
    metrics = {"sharpness": sharpness, "exposure": exposure, "contrast": contrast, "colourfulness": colourfulness}
    score = sum(WEIGHTS[k] * v for k, v in metrics.items())
    if aesthetic is not None:
        value = float(aesthetic(image))
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"the aesthetic scorer returned {value}, outside 0..1")
        metrics["aesthetic"] = value
        score = (score + value) / 2
    metrics.update({"raw_laplacian_var": lap_var, "raw_mean_luminance": mean, "raw_rms_contrast": rms, "raw_colourfulness": colourful_m})
    return QualityReport(score=round(score, 4), metrics={k: round(v, 4) for k, v in metrics.items()})


def load_callable(spec: str, *, field: str) -> Callable[..., object]:
    """The function named by ``"package.module:function"``; ConfigError naming ``field`` otherwise."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"{field} = {spec!r}: expected 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{field} = {spec!r}: cannot import {module_name!r}: {exc}") from exc
    func = getattr(module, attr, None)
    if not callable(func):
        raise ConfigError(f"{field} = {spec!r}: {module_name!r} has no callable {attr!r}")
    return func


def perceptual_hash(image: Image.Image) -> str:
    """imagehash's 64-bit pHash of ``image`` as 16 hex digits."""
    import imagehash  # noqa: PLC0415 - imagehash loads scipy: only when hashing

    return str(imagehash.phash(image.convert("RGB")))


def hamming(a: str, b: str) -> int:
    """Bits that differ between two hex hashes of the same length."""
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def nearest_duplicate(phash: str, published: Iterable[tuple[str, str]], max_distance: int) -> tuple[str, int] | None:
    """The closest ``(image_id, phash)`` of ``published`` within ``max_distance`` bits, as
    ``(image_id, distance)``, or None."""
    best: tuple[str, int] | None = None
    for image_id, other in published:
        distance = hamming(phash, other)
        if distance <= max_distance and (best is None or distance < best[1]):
            best = (image_id, distance)
    return best
