"""A self-hosted FLUX studio API (the studio server this project runs next to the GPU;
it has no public documentation: this docstring is its contract).

``POST /generate`` JSON ``{prompt, num_inference_steps (1..10), width, height
(multiples of 64), seed, no_text, performance_mode, image (data URL, img2img), mask
(data URL, white = repaint), strength (0.01..1), model}`` -> ``{"url":
"/outputs/<id>.png", "seed": 12345}``; the image is then fetched from the configured
base URL + that path (never from another host). ``POST /upscale {image}`` -> Real-ESRGAN
x4. Self-hosted: cost 0 unless priced. No key.
"""

from __future__ import annotations

import base64
import time
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urljoin, urlsplit

import httpx
from pydantic import Field

from domain.model import GenerationRequest, GenerationResult
from domain.errors import InvalidOutputError, ProviderError, UnsafeURLError
from providers.base import Provider, ProviderCheck, result_from_bytes, validate_image
from providers.httperrors import raise_for_status, translate_httpx
from providers.spec import ModelSpec, ProviderConfig
from providers.netguard import guard_for, guarded_client


def data_url(image: bytes) -> str:
    """``data:image/png;base64,...`` (or jpeg / webp after the magic bytes)."""
    kind = "jpeg" if image.startswith(b"\xff\xd8") else ("webp" if image[8:12] == b"WEBP" else "png")
    return f"data:image/{kind};base64,{base64.b64encode(image).decode()}"


class FluxStudioConfig(ProviderConfig):
    """``providers.flux_studio``: the studio's ``base_url``, the most steps it runs
    (``max_steps``), its ``performance_mode``, ``no_text`` and the default img2img
    ``strength``. Self-hosted: cost 0 unless priced."""

    enabled: bool = False
    base_url: str = "http://localhost:8000"
    model: str | None = "flux"
    max_steps: Annotated[int, Field(ge=1, le=10)] = 10
    performance_mode: Literal["balanced", "fast"] = "balanced"
    no_text: bool = False
    strength: Annotated[float, Field(ge=0.01, le=1)] = 0.6


class FluxStudioProvider(Provider):
    """FLUX text-to-image, img2img and inpainting on a self-hosted studio server."""

    name: ClassVar[str] = "flux_studio"
    display_name: ClassVar[str] = "FLUX studio (self-hosted)"
    Config = FluxStudioConfig
    models: ClassVar[tuple[str, ...]] = ("flux", "lama")
    default_model: ClassVar[str] = "flux"
    #: /generate: sides multiples of 64, 1..10 steps, no guidance or negative prompt; image + mask.
    default_spec: ClassVar[ModelSpec] = ModelSpec(
        side_range=(256, 2048), side_multiple=64, steps=(1, 10), guidance=None, negative_prompt=False, img2img=True, inpainting=True
    )

    config: FluxStudioConfig

    def __init__(self, *, config: FluxStudioConfig, secrets: Any, downloader: Any = None) -> None:
        super().__init__(config=config, secrets=secrets, downloader=downloader)
        self._base = config.base_url.rstrip("/")
        self._client = guarded_client(guard_for(self, self._base), base_url=self._base, timeout=config.timeout_s)

    def payload(self, request: GenerationRequest) -> dict[str, Any]:
        """The /generate body: steps capped to the server's 1..``max_steps``, sides to multiples of 64."""
        mapped = self.map(request)
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "num_inference_steps": max(1, min(mapped.num_inference_steps or 1, self.config.max_steps)),
            "width": mapped.width,
            "height": mapped.height,
            "no_text": self.config.no_text,
            "performance_mode": self.config.performance_mode,
            "model": request.model or self.model,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        if request.init_image is not None:
            body["image"] = data_url(request.init_image)
            body["strength"] = request.strength if request.strength is not None else self.config.strength
            if request.mask_image is not None:
                body["mask"] = data_url(request.mask_image)
        return body

    def _fetch_output(self, answer: httpx.Response, model: str) -> tuple[bytes, dict[str, Any]]:
        try:
            body = answer.json()
        except ValueError as exc:
            raise InvalidOutputError("invalid answer: body is not JSON", provider=self.name, model=model) from exc
        path = body.get("url") if isinstance(body, dict) else None
        if not isinstance(path, str) or not path:
            raise InvalidOutputError("invalid answer: no output url", provider=self.name, model=model)
        url = urljoin(self._base + "/", path)
        if urlsplit(url)[:2] != urlsplit(self._base)[:2]:
            raise UnsafeURLError(f"refused URL: output {path!r} is not on the studio server", provider=self.name, model=model)
        with translate_httpx(provider=self.name, model=model):
            response = self._client.get(url)
        raise_for_status(response, provider=self.name, model=model)
        return response.content, body

    def generate(self, request: GenerationRequest) -> GenerationResult:
        model = request.model or self.model
        started = time.monotonic()
        with translate_httpx(provider=self.name, model=model):
            answer = self._client.post("/generate", json=self.payload(request))
        raise_for_status(answer, provider=self.name, model=model)
        data, body = self._fetch_output(answer, model)
        seed = body.get("seed") if isinstance(body.get("seed"), int) else request.seed
        return result_from_bytes(
            data,
            provider=self,
            request=request,
            model=model,
            seed=seed,
            cost_usd=self.estimate_cost(request),
            started=started,
            metadata={"output_path": body.get("url"), "mode": "inpaint" if request.mask_image else ("img2img" if request.init_image else "txt2img")},
        )

    def upscale(self, image: bytes) -> bytes:
        """Real-ESRGAN x4 of ``image`` (encoded bytes) via ``POST /upscale``; returns the
        encoded result, validated (about 4x the sides). Raises ProviderError subclasses."""
        with translate_httpx(provider=self.name, model="realesrgan-x4"):
            answer = self._client.post("/upscale", json={"image": data_url(image)})
        raise_for_status(answer, provider=self.name, model="realesrgan-x4")
        data, _ = self._fetch_output(answer, "realesrgan-x4")
        validate_image(data, provider=self.name, model="realesrgan-x4")
        return data

    def check(self) -> ProviderCheck:
        """``GET /health`` (free)."""
        try:
            with translate_httpx(provider=self.name, model=self.model):
                response = self._client.get("/health")
            raise_for_status(response, provider=self.name, model=self.model)
        except ProviderError as exc:
            return ProviderCheck(False, str(exc))
        return ProviderCheck(True, f"studio at {self._base}: {response.json().get('status', 'ok')}")

    def close(self) -> None:
        self._client.close()
