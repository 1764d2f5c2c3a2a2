"""Stability AI REST v2beta Stable Image (contract 3 of ../shared/contracts/providers.md;
https://platform.stability.ai/docs/api-reference).

``POST /v2beta/stable-image/generate/{ultra|core|sd3}``, multipart/form-data, ``accept:
image/*`` (raw bytes back). There is no width/height: the requested size is mapped to
the nearest of the documented aspect ratios (~1 MP output). ``finish-reason:
CONTENT_FILTERED`` arrives with HTTP 200 and is a rejection, as is a 403
``content_moderation``. Seed 0 means random; the seed used comes back in the ``seed``
header. 1 credit = USD 0.01 (ultra 8, core 3, sd3.5-large 6.5). Key: ``STABILITY_API_KEY``.
"""

from __future__ import annotations

import math
import time
from typing import Any, ClassVar

import httpx

from core.domain import GenerationRequest, GenerationResult
from core.errors import ContentFilteredError
from core.settings import Secrets, StabilityConfig
from providers.base import (
    Provider,
    ProviderCheck,
    raise_for_status,
    rate_limit_headers,
    result_from_bytes,
    translate_httpx,
)

ASPECT_RATIOS = ("16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21")
SD3_MODELS = ("sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium")


def nearest_aspect_ratio(width: int, height: int) -> str:
    """The documented aspect ratio closest to ``width`` / ``height`` (compared in log space)."""
    target = math.log(width / height)

    def distance(ratio: str) -> float:
        a, b = (int(x) for x in ratio.split(":"))
        return abs(math.log(a / b) - target)

    return min(ASPECT_RATIOS, key=distance)


class StabilityProvider(Provider):
    """Stable Image Ultra / Core / SD3.5 on the Stability AI platform."""

    name: ClassVar[str] = "stability"
    display_name: ClassVar[str] = "Stability AI"
    models: ClassVar[tuple[str, ...]] = ("ultra", "core", *SD3_MODELS)
    default_model: ClassVar[str] = "ultra"
    prices_usd: ClassVar[dict[str, float]] = {"ultra": 0.08, "core": 0.03, "sd3.5-large": 0.065,
                                              "sd3.5-large-turbo": 0.04, "sd3.5-medium": 0.035}
    secret_settings: ClassVar[tuple[str, ...]] = ("stability_api_key",)

    config: StabilityConfig

    def __init__(self, *, config: StabilityConfig, secrets: Secrets, downloader: Any = None) -> None:
        super().__init__(config=config, secrets=secrets, downloader=downloader)
        key = self.secret("stability_api_key")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(base_url=config.base_url.rstrip("/"), headers=headers, timeout=config.timeout_s)

    def form(self, request: GenerationRequest) -> tuple[str, dict[str, str]]:
        """(endpoint path, form fields) for ``request``."""
        model = request.model or self.model
        fields: dict[str, str] = {
            "prompt": request.prompt[:10000],
            "aspect_ratio": nearest_aspect_ratio(request.width, request.height),
            "output_format": request.output_format if request.output_format in ("png", "jpeg", "webp") else "png",
            "seed": str(request.seed % 4294967295 if request.seed is not None else 0),
        }
        if request.negative_prompt:
            fields["negative_prompt"] = request.negative_prompt
        if model in SD3_MODELS:
            fields["model"] = model
            fields["mode"] = "text-to-image"
            fields["cfg_scale"] = str(request.guidance_scale)
            return "/v2beta/stable-image/generate/sd3", fields
        if self.config.style_preset:
            fields["style_preset"] = self.config.style_preset
        return f"/v2beta/stable-image/generate/{model}", fields

    def generate(self, request: GenerationRequest) -> GenerationResult:
        model = request.model or self.model
        started = time.monotonic()
        path, fields = self.form(request)
        with translate_httpx(provider=self.name, model=model):
            # files={"none": ""} forces multipart/form-data as the API requires
            response = self._client.post(path, data=fields, files={"none": ("", b"")}, headers={"Accept": "image/*"})
        if response.status_code == 403 and "moderation" in response.text:
            raise ContentFilteredError(f"content filtered: HTTP 403 {response.text[:200]}", provider=self.name,
                                       model=model, status_code=403)
        raise_for_status(response, provider=self.name, model=model)
        finish = response.headers.get("finish-reason", "SUCCESS").upper()
        if finish == "CONTENT_FILTERED":
            raise ContentFilteredError("content filtered: finish-reason CONTENT_FILTERED", provider=self.name, model=model)
        if finish != "SUCCESS":
            raise ContentFilteredError(f"finish-reason {finish}", provider=self.name, model=model)
        seed_header = response.headers.get("seed")
        seed = int(seed_header) if seed_header and seed_header.isdigit() else request.seed
        # ~1 MP at the mapped aspect ratio: compare the aspect, not the exact size
        return result_from_bytes(
            response.content, provider=self, request=request, model=model, seed=seed,
            cost_usd=self.estimate_cost(request), started=started,
            metadata={"aspect_ratio": fields["aspect_ratio"], "request_id": response.headers.get("x-request-id"),
                      "headers": rate_limit_headers(response)},
        )

    def check(self) -> ProviderCheck:
        """``GET /v1/user/balance`` (free): key valid, credits left."""
        response = self.probe_get(self._client, "/v1/user/balance")
        if isinstance(response, ProviderCheck):
            return response
        credits = response.json().get("credits")
        return ProviderCheck(True, f"{credits} credits (USD {float(credits or 0) * 0.01:.2f}); model {self.model}")

    def close(self) -> None:
        self._client.close()
