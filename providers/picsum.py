"""Picsum placeholder photos (contract 8 of ../shared/contracts/providers.md; https://picsum.photos).

``GET {base}/seed/{seed}/{width}/{height}`` answers a 302 to a stable JPEG (sides up to
5000 px; larger -> 400 ``{"error": "Invalid size"}``). Needs the internet, so the
offline placeholder must come after it in the chain. Its images are placeholders:
recorded with ``is_placeholder=True``, never published as real content. Cost 0.
The redirect is followed by the SSRF-safe downloader.
"""

from __future__ import annotations

import time
from typing import ClassVar

from core.domain import GenerationRequest, GenerationResult
from core.errors import ProviderError
from providers.base import Provider, ProviderCheck, result_from_bytes

MAX_SIDE = 5000


class PicsumProvider(Provider):
    """A random-but-stable stock photo of the requested size, as a placeholder."""

    name: ClassVar[str] = "picsum"
    display_name: ClassVar[str] = "Picsum placeholder (online)"
    models: ClassVar[tuple[str, ...]] = ("picsum",)
    default_model: ClassVar[str] = "picsum"
    prices_usd: ClassVar[dict[str, float]] = {"picsum": 0.0}
    is_placeholder: ClassVar[bool] = True

    def estimate_cost(self, request: GenerationRequest) -> float:
        return 0.0

    def url(self, request: GenerationRequest) -> str:
        """The image URL: sides clamped to 5000 px, the seed keeps the photo stable."""
        base = str(getattr(self.config, "base_url", "https://picsum.photos")).rstrip("/")
        width, height = min(request.width, MAX_SIDE), min(request.height, MAX_SIDE)
        seed = request.seed if request.seed is not None else (request.idempotency_key or "content-pipeline")
        return f"{base}/seed/{seed}/{width}/{height}"

    def generate(self, request: GenerationRequest) -> GenerationResult:
        started = time.monotonic()
        data = self.downloader.fetch(self.url(request), provider=self.name, model=self.model,
                                     timeout_s=self.config.timeout_s)
        return result_from_bytes(data, provider=self, request=request, model=self.model, seed=request.seed,
                                 cost_usd=0.0, started=started, metadata={"source": "picsum"})

    def check(self) -> ProviderCheck:
        """Fetches a 64x64 image (free)."""
        probe = GenerationRequest(prompt="check", width=64, height=64, seed=1)
        try:
            data = self.downloader.fetch(self.url(probe), provider=self.name, model=self.model)
        except ProviderError as exc:
            return ProviderCheck(False, str(exc))
        return ProviderCheck(True, f"reachable ({len(data)} bytes for 64x64)")
