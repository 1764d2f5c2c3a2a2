"""An invisible watermark on every published image, read back after the metadata is gone.

XMP and C2PA live in the file's metadata, which most platforms strip. This mark lives in
the pixels: ``invisible-watermark`` (https://github.com/ShieldMnt/invisible-watermark,
the library diffusers uses to mark SDXL outputs), method ``dwtDctSvd``: the first Haar
DWT level of the luma (Y) plane, cut into 4 x 4 blocks, each block's largest singular
value of its DCT quantised to carry one payload bit (quantisation step ``STRENGTH``), the
payload repeated over every block (16 times) and read back by majority. The library's
defaults mark the U (chroma) plane; measured here, chroma marks do not survive the 4:2:0
chroma subsampling and quantisation of a 320 px WebP thumbnail, while luma at this step
survives it at the same PSNR (about 42 dB on photos).

That method works on the pixel grid it was embedded at, so the mark is computed at a
canonical size: the image is resized to ``WORK_SIZE`` x ``WORK_SIZE`` pixels (aspect
not kept), the change the library's block coding makes to that copy's Y plane is taken
as a residual, resized back to the image's own size and added to R, G and B alike (a
change of Y only). Reading resizes the suspect image
to the same canonical size first, so a rendition, a half-size copy or a re-encoded copy
of a marked image reads the same payload (measured: benchmarks/watermark_robustness.py).

Payload (``PAYLOAD_BITS`` = 64 bits): a fixed 16-bit marker ``MARKER``, a 32-bit content
id (the first 4 bytes of SHA-256 of the image id, ``content_id``), and a CRC-16/CCITT
(``binascii.crc_hqx``) of those 6 bytes. An unmarked image reads random bits: it is
reported as marked only when both marker and CRC match (about 1 in 2^32).

Only the library's ``dwtDctSvd`` module is loaded (numpy, OpenCV, PyWavelets): the
package's ``__init__`` also imports its rivaGan module, which imports torch (seconds of
start-up and hundreds of MB in every worker and in ``verify``) for a method not used here.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from config.imaging import DecodeConfig, WatermarkConfig
from imaging.decode import decode_image

#: the canonical size (pixels, square) the mark is embedded and read at
WORK_SIZE = 256
#: quantisation step of the blocks' largest singular value (the library's ``scales``); higher
#: survives more and shows more (benchmarks/watermark_robustness.py)
STRENGTH = 40.0
#: the fixed first 16 bits of every payload
MARKER = 0xA1C0
PAYLOAD_BITS = 64


class WatermarkError(Exception):
    """The watermark library is missing or an image cannot be marked or read."""


@dataclass(frozen=True)
class WatermarkReading:
    """What ``read`` found: ``found`` when marker and CRC match; ``content_id`` the 32-bit
    content id (8 hex digits) it carries."""

    found: bool
    content_id: str | None = None

    def line(self) -> str:
        if not self.found:
            return "watermark:  none found (no content-pipeline invisible watermark in the pixels)"
        return f"watermark:  present: content-pipeline AI-generated image, content id {self.content_id} (SHA-256 of its image id, first 4 bytes)"


@functools.cache
def _embedder_class() -> Any:
    """``imwatermark.dwtDctSvd.EmbedDwtDctSvd``, loaded without the package's ``__init__`` (torch)."""
    spec = importlib.util.find_spec("imwatermark")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise WatermarkError("the invisible-watermark package is not installed (pip install invisible-watermark)")
    path = Path(next(iter(spec.submodule_search_locations))) / "dwtDctSvd.py"
    module_spec = importlib.util.spec_from_file_location("content_pipeline_imwatermark_dwtdctsvd", path)
    if module_spec is None or module_spec.loader is None:
        raise WatermarkError(f"invisible-watermark: {path.name} not found in {path.parent}")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.EmbedDwtDctSvd


def content_id(image_id: str) -> int:
    """The 32-bit content id of image ``image_id``: SHA-256 of its UTF-8 bytes, first 4 bytes."""
    return int.from_bytes(hashlib.sha256(image_id.encode("utf-8")).digest()[:4], "big")


def watermark_for(image_id: str, *, placeholder: bool, config: WatermarkConfig) -> int | None:
    """The content id to mark image ``image_id``'s published files with, or None: the
    watermark is off, or the image is a placeholder (our own rendering, not AI content)."""
    return content_id(image_id) if config.enabled and not placeholder else None


def payload_bits(cid: int) -> list[int]:
    """The 64 payload bits for content id ``cid`` (0 <= cid < 2^32): marker, id, CRC-16."""
    body = MARKER.to_bytes(2, "big") + (cid & 0xFFFFFFFF).to_bytes(4, "big")
    data = body + binascii.crc_hqx(body, 0xFFFF).to_bytes(2, "big")
    return [int(b) for b in np.unpackbits(np.frombuffer(data, dtype=np.uint8))]


def parse_bits(bits: Any) -> WatermarkReading:
    """The reading of 64 decoded bits: found only when the marker and the CRC match."""
    data = np.packbits(np.asarray(bits, dtype=np.uint8)[:PAYLOAD_BITS]).tobytes()
    if len(data) != PAYLOAD_BITS // 8 or int.from_bytes(data[:2], "big") != MARKER:
        return WatermarkReading(False)
    if binascii.crc_hqx(data[:6], 0xFFFF) != int.from_bytes(data[6:8], "big"):
        return WatermarkReading(False)
    return WatermarkReading(True, data[2:6].hex())


def _bgr_work(rgb: np.ndarray) -> np.ndarray:
    import cv2  # noqa: PLC0415 - OpenCV loads only where an image is marked or read

    return cv2.resize(np.ascontiguousarray(rgb[..., ::-1]), (WORK_SIZE, WORK_SIZE), interpolation=cv2.INTER_AREA)


def embed(image: Image.Image, cid: int) -> Image.Image:
    """``image`` (RGB or RGBA; alpha kept) with content id ``cid`` marked in its pixels.

    Cost: one 256 x 256 embedding plus a resize and an add at the image's size: about
    150 ms of CPU for 1024 x 1024 and 310 ms for 2048 x 2048 on the shared 2-core dev
    machine (benchmarks/RESULTS-watermark.md)."""
    import cv2  # noqa: PLC0415 - OpenCV loads only where an image is marked or read
    import pywt  # noqa: PLC0415 - loaded with OpenCV, where an image is marked

    alpha = image.getchannel("A") if image.mode == "RGBA" else None
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    # OpenCV's Y = 0.299 R + 0.587 G + 0.114 B: adding d to R, G and B adds d to Y, U and V unchanged
    # (https://docs.opencv.org/4.x/de/d25/imgproc_color_conversions.html, RGB <-> YUV)
    luma = cv2.cvtColor(_bgr_work(rgb), cv2.COLOR_BGR2YUV)[..., 0].astype(np.float64)
    approx, details = pywt.dwt2(luma, "haar")
    _embedder_class()(payload_bits(cid), wmLen=PAYLOAD_BITS, block=4).encode_frame(approx, STRENGTH)  # in place
    residual = (pywt.idwt2((approx, details), "haar") - luma).astype(np.float32)
    height, width = rgb.shape[:2]
    marked = rgb.astype(np.float32) + cv2.resize(residual, (width, height), interpolation=cv2.INTER_LINEAR)[..., None]
    out = Image.fromarray(np.clip(np.rint(marked), 0, 255).astype(np.uint8), "RGB")
    if alpha is not None:
        out.putalpha(alpha)
    return out


def decode_bits(image: Image.Image) -> np.ndarray:
    """The 64 payload bits (0 / 1, by majority over the blocks) read from ``image`` at the canonical size."""
    import cv2  # noqa: PLC0415 - OpenCV loads only where an image is marked or read
    import pywt  # noqa: PLC0415 - loaded with OpenCV, where an image is read

    luma = cv2.cvtColor(_bgr_work(np.asarray(image.convert("RGB"), dtype=np.uint8)), cv2.COLOR_BGR2YUV)[..., 0]
    approx, _details = pywt.dwt2(luma, "haar")
    votes: list[list[int]] = [[] for _ in range(PAYLOAD_BITS)]
    votes = _embedder_class()([], wmLen=PAYLOAD_BITS, block=4).decode_frame(approx, STRENGTH, votes)  # a 0 / 1 vote per block
    return np.array([np.mean(v) > 0.5 for v in votes], dtype=np.uint8)


def read(image: Image.Image) -> WatermarkReading:
    """The watermark in ``image`` (any size and mode), or ``found=False``."""
    return parse_bits(decode_bits(image))


def read_file(path: Path, *, config: DecodeConfig | None = None) -> WatermarkReading:
    """The watermark of the image file ``path`` (decoded safely: imaging.decode).
    Raises InvalidImageError (a subclass) when it does not decode."""
    return read(decode_image(path, config=config).image)
