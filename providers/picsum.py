"""Picsum placeholder photos (https://picsum.photos: "Specific image", "Static random image").

``GET {base}/seed/{seed}/{width}/{height}`` answers a 302 to a stable JPEG (sides up to
5000 px; larger -> 400 ``{"error": "Invalid size"}``). Needs the internet, so the
offline placeholder must come after it in the chain. Its images are placeholders:
recorded with ``is_placeholder=True``, never published as real content. Cost 0.
The redirect is followed by the SSRF-safe downloader.
"""

from __future__ import annotations

import time
from typing import Annotated, ClassVar

from pydantic import Field

from domain.model import GenerationRequest, GenerationResult
from domain.errors import ProviderError
from providers.base import Provider, ProviderCheck, result_from_bytes
from providers.spec import ModelSpec, ProviderConfig

MAX_SIDE = 5000


class PicsumConfig(ProviderConfig):
    """Picsum online placeholder photos : never published as content, cost 0."""

    base_url: str = "https://picsum.photos"
    timeout_s: Annotated[float, Field(gt=0, le=3600)] = 20.0


class PicsumProvider(Provider):
    """A random-but-stable stock photo of the requested size, as a placeholder."""

    name: ClassVar[str] = "picsum"
    display_name: ClassVar[str] = "Picsum placeholder (online)"
    Config = PicsumConfig
    models: ClassVar[tuple[str, ...]] = ("picsum",)
    default_model: ClassVar[str] = "picsum"
    default_spec: ClassVar[ModelSpec] = ModelSpec(side_range=(1, MAX_SIDE), side_multiple=1, steps=None, guidance=None, negative_prompt=False)
    is_placeholder: ClassVar[bool] = True

    config: PicsumConfig

    def estimate_cost(self, request: GenerationRequest) -> float:
        return 0.0

    def url(self, request: GenerationRequest) -> str:
        """The image URL: sides clamped to 5000 px, the seed keeps the photo stable."""
        base = self.config.base_url.rstrip("/")
        mapped = self.map(request)
        width, height = mapped.width, mapped.height
        seed = request.seed if request.seed is not None else (request.idempotency_key or "content-pipeline")
        return f"{base}/seed/{seed}/{width}/{height}"

    def generate(self, request: GenerationRequest) -> GenerationResult:
        started = time.monotonic()
        data = self.downloader.fetch(self.url(request), provider=self.name, model=self.model, timeout_s=self.config.timeout_s)
        return result_from_bytes(
            data, provider=self, request=request, model=self.model, seed=request.seed, cost_usd=0.0, started=started, metadata={"source": "picsum"}
        )

    def check(self) -> ProviderCheck:
        """Fetches a 64x64 image (free)."""
        probe = GenerationRequest(prompt="check", width=64, height=64, seed=1)
        try:
            data = self.downloader.fetch(self.url(probe), provider=self.name, model=self.model)
        except ProviderError as exc:
            return ProviderCheck(False, str(exc))
        return ProviderCheck(True, f"reachable ({len(data)} bytes for 64x64)")
