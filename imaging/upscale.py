"""Upscalers: Lanczos, learned models loaded by spandrel, and the FLUX studio /upscale endpoint.

An upscaler is a callable ``(image, scale) -> image`` (imaging.postprocess.Upscaler);
the result is resized with Lanczos to exactly ``round(w * scale) x round(h * scale)``
when the model's own factor differs.

* ``lanczos_upscale``: Pillow's Lanczos (``Image.Resampling.LANCZOS``).
* ``ModelUpscaler``: any single-image super-resolution architecture spandrel
  recognises from a weights file's state dict (ESRGAN / Real-ESRGAN RRDBNet,
  Real-ESRGAN compact, SwinIR, HAT, DAT, ...: https://github.com/chaiNNer-org/spandrel).
  The image is processed in tiles of ``tile`` x ``tile`` input pixels with
  ``tile_overlap`` pixels of context on each side, so memory stays bounded by the tile
  (plus the uint8 output) whatever the image size; on CUDA when present
  (``device: auto``), else CPU. torch and spandrel are imported only here, lazily.
* ``RemoteUpscaler``: the self-hosted FLUX studio API (its protocol is documented in
  providers/flux_studio.py): ``POST {base}/upscale {"image": "data:image/png;base64,..."}`` ->
  ``{"url": "/outputs/upscale_<id>.png"}`` (Real-ESRGAN x4), then ``GET {base}{url}``;
  the answer is decoded safely (imaging.decode).
"""

from __future__ import annotations

import base64
import io
import threading
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from domain.errors import InvalidImageError, UpscaleError
from config.imaging import DecodeConfig, UpscaleConfig
from imaging.decode import decode_image
import sys
import types
import enum
import math
import numpy as np

_LANCZOS = Image.Resampling.LANCZOS


def target_size(image: Image.Image, scale: float) -> tuple[int, int]:
    """``(round(w * scale), round(h * scale))``, at least 1 x 1 pixels."""
    return max(1, round(image.width * scale)), max(1, round(image.height * scale))


def lanczos_upscale(image: Image.Image, scale: float) -> Image.Image:
    """``image`` resized by ``scale`` with Lanczos."""
    return image.resize(target_size(image, scale), _LANCZOS)


def _fit(result: Image.Image, image: Image.Image, scale: float) -> Image.Image:
    size = target_size(image, scale)
    return result if result.size == size else result.resize(size, _LANCZOS)


def _torchvision_fallback() -> bool:
    """Make ``import spandrel`` work where torchvision cannot load; True when the stand-in
    below was registered (``import_spandrel`` removes it again once spandrel is imported).

    spandrel imports torchvision for two helpers of two non-upscaling architectures
    (``normalize`` in RestoreFormer, ``rotate`` in LaMa). The only torchvision wheel
    matching torch 2.13.0 on the registry here is a CUDA build, whose import fails
    beside the CPU torch ("operator torchvision::nms does not exist"). When that
    happens, this registers a ``torchvision.transforms.functional`` with those two
    functions written in plain torch (the same math as torchvision's tensor paths:
    per-channel ``(x - mean) / std``, and rotation about the centre by affine grid
    sampling with zero fill), so every spandrel architecture still loads.
    """

    try:
        import torchvision.transforms.functional  # noqa: F401, PLC0415

        return False
    except (ImportError, OSError, RuntimeError):
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]

    import torch  # noqa: PLC0415 - torch: optional, heavy (the local GPU extra)
    import torch.nn.functional as F  # noqa: PLC0415 - torch: optional, heavy (the local GPU extra)

    class InterpolationMode(enum.Enum):
        NEAREST = "nearest"
        BILINEAR = "bilinear"

    def normalize(tensor: Any, mean: list[float], std: list[float], inplace: bool = False) -> Any:
        m = torch.as_tensor(mean, dtype=tensor.dtype, device=tensor.device).view(-1, 1, 1)
        sd = torch.as_tensor(std, dtype=tensor.dtype, device=tensor.device).view(-1, 1, 1)
        return tensor.sub_(m).div_(sd) if inplace else (tensor - m) / sd

    def rotate(img: Any, angle: Any, interpolation: Any = InterpolationMode.NEAREST, expand: bool = False, center: Any = None, fill: Any = None) -> Any:
        theta = torch.as_tensor(angle, dtype=torch.float32).reshape(-1)[0].item() * math.pi / 180.0
        cos, sin = math.cos(theta), math.sin(theta)
        batch = img if img.dim() == 4 else img.unsqueeze(0)
        height, width = batch.shape[-2:]
        matrix = (
            torch.tensor([[cos, -sin * height / width, 0.0], [sin * width / height, cos, 0.0]], dtype=batch.dtype, device=batch.device)
            .unsqueeze(0)
            .expand(batch.shape[0], 2, 3)
        )
        grid = F.affine_grid(matrix, list(batch.shape), align_corners=False)
        mode = interpolation.value if isinstance(interpolation, InterpolationMode) else str(interpolation)
        out = F.grid_sample(batch, grid, mode=mode, padding_mode="zeros", align_corners=False)
        return out if img.dim() == 4 else out[0]

    package = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    functional.InterpolationMode = InterpolationMode  # type: ignore[attr-defined]
    functional.normalize = normalize  # type: ignore[attr-defined]
    functional.rotate = rotate  # type: ignore[attr-defined]
    package.transforms = transforms  # type: ignore[attr-defined]
    transforms.functional = functional  # type: ignore[attr-defined]
    package.__path__ = []  # a package, so submodule imports resolve through sys.modules
    transforms.__path__ = []
    sys.modules.update({"torchvision": package, "torchvision.transforms": transforms, "torchvision.transforms.functional": functional})
    return True


def import_spandrel() -> Any:
    """``spandrel``, imported lazily (see ``_torchvision_fallback``); UpscaleError with an
    install hint when torch or spandrel is missing."""
    try:
        import torch  # noqa: F401, PLC0415
    except ImportError as exc:
        raise UpscaleError(f"learned upscalers need torch: pip install torch==2.13.0 spandrel ({exc})") from exc
    stand_in = _torchvision_fallback()
    try:
        import spandrel  # noqa: PLC0415 - spandrel: optional, loads torch
    except ImportError as exc:
        raise UpscaleError(f"learned upscalers need spandrel: pip install spandrel ({exc})") from exc
    finally:
        if stand_in:
            # spandrel's modules hold the two functions now; left in sys.modules, the stand-in
            # (no __spec__, no transforms) breaks diffusers' and transformers' torchvision checks
            # (importlib.util.find_spec raises "torchvision.__spec__ is None") later in the process
            for name in ("torchvision.transforms.functional", "torchvision.transforms", "torchvision"):
                sys.modules.pop(name, None)
    return spandrel


class ModelUpscaler:
    """A learned upscaler from a spandrel-loadable weights file, run in tiles.

    ``tile``/``overlap`` in input pixels; ``device`` ``auto`` | ``cpu`` | ``cuda``.
    Raises UpscaleError when the file is missing, spandrel does not recognise it, or
    it is not a single-image model.
    """

    def __init__(self, weights: Path, *, tile: int = 256, overlap: int = 16, device: str = "auto") -> None:
        spandrel = import_spandrel()
        import torch  # noqa: PLC0415 - torch: optional, heavy (the local GPU extra)

        ImageModelDescriptor, ModelLoader = spandrel.ImageModelDescriptor, spandrel.ModelLoader
        if not Path(weights).is_file():
            raise UpscaleError(f"upscale.weights = {str(weights)!r}: no such file")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.torch = torch
        self.device = torch.device(device)
        try:
            descriptor = ModelLoader(device=self.device).load_from_file(str(weights))
        except Exception as exc:  # spandrel raises plain exceptions for unknown or damaged files
            raise UpscaleError(f"upscale.weights = {str(weights)!r}: spandrel cannot load it: {exc}") from exc
        if not isinstance(descriptor, ImageModelDescriptor):
            raise UpscaleError(f"upscale.weights = {str(weights)!r}: {type(descriptor).__name__} is not a single-image model")
        self.model = descriptor.eval()
        self.scale = int(descriptor.scale)
        self.architecture = descriptor.architecture.name
        self.tile = tile
        self.overlap = overlap
        self._lock = threading.Lock()  # one image at a time per model: bounded memory

    def upscale_native(self, image: Image.Image) -> Image.Image:
        """``image`` (RGB) upscaled by the model's own factor, tile by tile."""

        torch = self.torch
        rgb = np.asarray(image.convert("RGB"))
        height, width = rgb.shape[:2]
        s = self.scale
        out = np.empty((height * s, width * s, 3), dtype=np.uint8)
        step = self.tile
        with self._lock, torch.inference_mode():
            for top in range(0, height, step):
                for left in range(0, width, step):
                    bottom, right = min(top + step, height), min(left + step, width)
                    # input window with context on each side
                    t0, l0 = max(0, top - self.overlap), max(0, left - self.overlap)
                    b0, r0 = min(height, bottom + self.overlap), min(width, right + self.overlap)
                    window = rgb[t0:b0, l0:r0]
                    tensor = torch.from_numpy(np.array(window)).to(self.device)  # a writable copy of the tile
                    tensor = tensor.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
                    result = self.model(tensor).clamp_(0, 1).mul_(255.0).round_().byte()
                    result = result[0].permute(1, 2, 0).cpu().numpy()
                    # keep only the part of the output that belongs to this tile
                    y, x = (top - t0) * s, (left - l0) * s
                    out[top * s : bottom * s, left * s : right * s] = result[y : y + (bottom - top) * s, x : x + (right - left) * s]
        return Image.fromarray(out, "RGB")

    def __call__(self, image: Image.Image, scale: float) -> Image.Image:
        alpha = image.getchannel("A") if image.mode == "RGBA" else None
        result = self.upscale_native(image)
        if alpha is not None:
            result = result.convert("RGBA")
            result.putalpha(alpha.resize(result.size, _LANCZOS))
        return _fit(result, image, scale)


class RemoteUpscaler:
    """The FLUX studio API's ``POST /upscale`` (Real-ESRGAN x4) through httpx.

    ``base_url`` like ``http://studio:8000``; ``timeout_s`` seconds per request.
    Raises UpscaleError on a transport error, an HTTP error status, an answer without
    ``url``, or an answer image that does not decode.
    """

    scale = 4

    def __init__(self, base_url: str, *, timeout_s: float = 120.0, decode: DecodeConfig | None = None, client: httpx.Client | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.decode = decode
        self.client = client or httpx.Client(timeout=timeout_s)

    def upscale_native(self, image: Image.Image) -> Image.Image:
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        data_url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
        url = f"{self.base_url}/upscale"
        try:
            response = self.client.post(url, json={"image": data_url})
            response.raise_for_status()
            answer: Any = response.json()
            path = answer.get("url") if isinstance(answer, dict) else None
            if not isinstance(path, str) or not path:
                raise UpscaleError(f"POST {url}: answer has no 'url': {str(answer)[:200]!r}")
            image_url = path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"
            fetched = self.client.get(image_url)
            fetched.raise_for_status()
        except httpx.HTTPStatusError as exc:
            raise UpscaleError(f"{exc.request.method} {exc.request.url}: HTTP {exc.response.status_code}: {exc.response.text[:200]!r}") from exc
        except httpx.HTTPError as exc:
            raise UpscaleError(f"POST {url}: {type(exc).__name__}: {exc}") from exc
        except ValueError as exc:
            raise UpscaleError(f"POST {url}: the answer is not JSON: {exc}") from exc
        try:
            return decode_image(fetched.content, config=self.decode, name=image_url).image
        except InvalidImageError as exc:
            raise UpscaleError(f"GET {image_url}: {exc}") from exc

    def __call__(self, image: Image.Image, scale: float) -> Image.Image:
        return _fit(self.upscale_native(image), image, scale)

    def close(self) -> None:
        self.client.close()


_model_cache: dict[tuple[str, int, int, str], ModelUpscaler] = {}
_model_lock = threading.Lock()


def build_upscalers(config: UpscaleConfig, decode: DecodeConfig | None = None) -> dict[str, Any]:
    """The upscalers a rendition may name: ``lanczos`` always, ``model`` when
    ``config.weights`` is set (loaded once per process), ``remote`` when
    ``config.remote_url`` is set."""
    upscalers: dict[str, Any] = {"lanczos": lanczos_upscale}
    if config.weights is not None:
        key = (str(config.weights), config.tile, config.tile_overlap, config.device)
        with _model_lock:
            if key not in _model_cache:
                _model_cache[key] = ModelUpscaler(config.weights, tile=config.tile, overlap=config.tile_overlap, device=config.device)
            upscalers["model"] = _model_cache[key]
    if config.remote_url:
        upscalers["remote"] = RemoteUpscaler(config.remote_url, timeout_s=config.timeout_s, decode=decode)
    return upscalers


_built: dict[str, dict[str, Any]] = {}


def get_upscalers(config: UpscaleConfig, decode: DecodeConfig | None = None) -> dict[str, Any]:
    """``build_upscalers`` once per configuration per process (models and HTTP clients are reused)."""
    key = config.model_dump_json() + (decode.model_dump_json() if decode else "")
    with _model_lock:
        cached = _built.get(key)
    if cached is None:
        cached = build_upscalers(config, decode)
        with _model_lock:
            cached = _built.setdefault(key, cached)
    return cached
