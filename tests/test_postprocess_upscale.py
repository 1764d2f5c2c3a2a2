"""Upscalers: a tiny random-weight RRDBNet through spandrel (tiled, x4), Lanczos, and the
FLUX studio /upscale endpoint on a loopback server. Nothing is downloaded."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skimage.data
from PIL import Image

from domain.errors import UpscaleError
from config.imaging import RenditionConfig, UpscaleConfig
from imaging.postprocess import make_renditions
from imaging.upscale import ModelUpscaler, RemoteUpscaler, build_upscalers, import_spandrel, lanczos_upscale

torch = pytest.importorskip("torch")


def photo(name: str = "chelsea") -> Image.Image:
    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")


@pytest.fixture(scope="module")
def rrdbnet_weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small RRDBNet (ESRGAN, x4, 2 blocks, 16 filters) with random weights, saved as
    a .pth state dict and as .safetensors: the same keys Real-ESRGAN checkpoints have."""
    import_spandrel()
    from safetensors.torch import save_file
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(0)
    net = ESRGAN(in_nc=3, out_nc=3, num_filters=16, num_blocks=2, scale=4)
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    folder = tmp_path_factory.mktemp("weights")
    torch.save(state, folder / "RealESRGAN_tiny_x4.pth")
    save_file(state, str(folder / "RealESRGAN_tiny_x4.safetensors"))
    return {"pth": folder / "RealESRGAN_tiny_x4.pth", "safetensors": folder / "RealESRGAN_tiny_x4.safetensors"}


@pytest.mark.parametrize("kind", ["pth", "safetensors"])
def test_learned_upscaler_x4_tiled(kind: str, rrdbnet_weights: dict[str, Path]) -> None:
    source = photo().resize((150, 100), Image.Resampling.LANCZOS)  # a real photo, 3 x 2 tiles of 64 px
    upscaler = ModelUpscaler(rrdbnet_weights[kind], tile=64, overlap=24, device="auto")
    assert upscaler.architecture == "ESRGAN" and upscaler.scale == 4
    assert upscaler.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    result = upscaler(source, 4)
    assert result.size == (600, 400) and result.mode == "RGB"
    # tiles are stitched without seams: the tiled result equals one pass over the whole image
    whole = ModelUpscaler(rrdbnet_weights[kind], tile=4096, overlap=0, device="cpu").upscale_native(source)
    diff = np.abs(np.asarray(result, dtype=np.int16) - np.asarray(whole, dtype=np.int16))
    assert diff.max() <= 2, diff.max()
    # a non-native factor is resized to exactly that factor
    assert upscaler(source, 2).size == (300, 200)


def test_learned_upscaler_as_a_rendition(rrdbnet_weights: dict[str, Path], tmp_path: Path) -> None:
    source = tmp_path / "cat.png"
    photo().resize((120, 80)).save(source)
    upscalers = build_upscalers(UpscaleConfig(weights=rrdbnet_weights["pth"], tile=48, tile_overlap=16, device="cpu"))
    assert set(upscalers) == {"lanczos", "model"}
    spec = RenditionConfig(name="x4", scale=4, upscaler="model", format="png")
    [_, file] = make_renditions(source, [spec], tmp_path / "out", upscalers=upscalers)
    with Image.open(file.path) as image:
        assert image.size == (480, 320)


def test_bad_weights_are_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UpscaleError, match="no such file"):
        ModelUpscaler(tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    torch.save({"not.a.model": torch.zeros(3)}, junk)
    with pytest.raises(UpscaleError, match="spandrel cannot load it"):
        ModelUpscaler(junk)


def test_lanczos_upscale() -> None:
    source = photo()
    assert lanczos_upscale(source, 2.5).size == (round(451 * 2.5), 750)


def test_torchvision_stand_in_matches_torch() -> None:
    import importlib

    import_spandrel()
    # what spandrel's two architectures imported (the stand-in where torchvision does not load)
    lama = importlib.import_module("spandrel.architectures.LaMa.__arch.LaMa")
    InterpolationMode, rotate = lama.InterpolationMode, lama.rotate
    normalize = importlib.import_module("spandrel.architectures.RestoreFormer").tv_normalize

    x = torch.rand(1, 3, 16, 16)
    assert torch.allclose(normalize(x[0], [0.5] * 3, [0.5] * 3), (x[0] - 0.5) / 0.5)
    assert torch.allclose(rotate(x, torch.tensor(0.0), InterpolationMode.BILINEAR, fill=0), x, atol=1e-5)
    turned = rotate(x, torch.tensor(90.0), InterpolationMode.BILINEAR, fill=0)
    assert torch.allclose(turned, torch.rot90(x, 1, dims=(2, 3)), atol=1e-4)


def test_diffusers_still_imports_after_the_torchvision_stand_in() -> None:
    """A run that loaded a learned upscaler (the stand-in registered) and then the diffusers
    provider: diffusers' and transformers' checks call importlib.util.find_spec("torchvision"),
    which raised "torchvision.__spec__ is None" while the stand-in stayed in sys.modules. A
    fresh process: nothing imported before."""
    pytest.importorskip("diffusers")
    code = (
        "from imaging.upscale import import_spandrel\n"
        "import_spandrel()\n"
        "from diffusers import AutoencoderKL, UNet2DConditionModel\n"
        "print('diffusers ok', AutoencoderKL.__name__, UNet2DConditionModel.__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "diffusers ok AutoencoderKL UNet2DConditionModel" in done.stdout


class _Studio(BaseHTTPRequestHandler):
    """FLUX studio API: POST /upscale {image: data URL} -> {url}; GET /outputs/<name>."""

    outputs: dict[str, bytes] = {}
    requests: list[dict[str, Any]] = []
    fail: int | None = None

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        type(self).requests.append(body)
        if self.path != "/upscale":
            return self._send(404, b'{"detail": "not found"}', "application/json")
        if type(self).fail:
            return self._send(type(self).fail, b'{"detail": "GPU out of memory"}', "application/json")
        header, _, payload = body["image"].partition(",")
        assert header == "data:image/png;base64"
        image = Image.open(io.BytesIO(base64.b64decode(payload)))
        big = image.resize((image.width * 4, image.height * 4), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        big.save(buffer, "PNG")
        name = f"upscale_{len(type(self).outputs)}.png"
        type(self).outputs[name] = buffer.getvalue()
        self._send(200, json.dumps({"url": f"/outputs/{name}"}).encode(), "application/json")

    def do_GET(self) -> None:
        data = type(self).outputs.get(self.path.rsplit("/", 1)[-1])
        if data is None:
            return self._send(404, b"missing", "text/plain")
        self._send(200, data, "image/png")


@pytest.fixture
def studio() -> Iterator[str]:
    _Studio.outputs, _Studio.requests, _Studio.fail = {}, [], None
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Studio)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_remote_upscaler_speaks_the_studio_protocol(studio: str, tmp_path: Path) -> None:
    source = photo().resize((100, 66))
    upscaler = RemoteUpscaler(studio, timeout_s=10)
    try:
        result = upscaler(source, 4)
        assert result.size == (400, 264)
        assert len(_Studio.requests) == 1 and set(_Studio.requests[0]) == {"image"}
        reference = np.asarray(source.resize((400, 264), Image.Resampling.LANCZOS), dtype=np.int16)
        assert np.abs(np.asarray(result, dtype=np.int16) - reference).mean() < 2
        _Studio.fail = 503
        with pytest.raises(UpscaleError, match="HTTP 503.*GPU out of memory"):
            upscaler(source, 4)
    finally:
        upscaler.close()
    upscalers = build_upscalers(UpscaleConfig(remote_url=studio))
    src = tmp_path / "s.png"
    source.save(src)
    _Studio.fail = None
    [_, file] = make_renditions(src, [RenditionConfig(name="big", scale=2, upscaler="remote", format="webp")], tmp_path / "o", upscalers=upscalers)
    assert (file.width, file.height) == (200, 132)
