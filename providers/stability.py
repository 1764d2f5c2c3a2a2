"""Stability AI REST v2beta Stable Image (https://platform.stability.ai/docs/api-reference,
"Generate": Stable Image Ultra, Core and SD3.5).

``POST /v2beta/stable-image/generate/{ultra|core|sd3}``, multipart/form-data, ``accept:
image/*`` (raw bytes back). There is no width/height: the requested size is mapped to
the nearest of the documented aspect ratios (about 1 MP output); there are no steps
(dropped, with a note) and only SD3.5 takes ``cfg_scale`` (1..10). Ultra and SD3.5 also
take an ``image`` and a ``strength`` (image-to-image). ``finish-reason:
CONTENT_FILTERED`` arrives with HTTP 200 and is a rejection, as is a 403 with ``name:
content_moderation``; errors are ``{id, name, errors[]}`` and ``name`` is the error
code (402 ``payment_required``: auth/billing). Seed 0 means random; the seed used comes
back in the ``seed`` header. Key: ``STABILITY_API_KEY``.

Prices are credits per image, 1 credit = USD 0.01 (https://platform.stability.ai/pricing).
"""

from __future__ import annotations

import time
from typing import Any, ClassVar


from domain.model import GenerationRequest, GenerationResult
from domain.errors import ContentFilteredError
from providers.base import Provider, ProviderCheck, result_from_bytes
from providers.httperrors import raise_for_status, rate_limit_headers, translate_httpx
from providers.netguard import guard_for, guarded_client
from providers.spec import ModelSpec, PriceTable, ProviderConfig
from providers.spec import nearest_aspect_ratio as _nearest

ASPECT_RATIOS = ("16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21")
SD3_MODELS = ("sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium", "sd3.5-flash")
#: Credits per generated image (1 credit = USD 0.01).
CREDITS: dict[str, float] = {"ultra": 8, "core": 3, "sd3.5-large": 6.5, "sd3.5-large-turbo": 4, "sd3.5-medium": 3.5, "sd3.5-flash": 2.5}
USD_PER_CREDIT = 0.01


def nearest_aspect_ratio(width: int, height: int) -> str:
    """The documented aspect ratio closest to ``width`` / ``height`` (compared in log space)."""
    return _nearest(width, height, ASPECT_RATIOS)


class StabilityConfig(ProviderConfig):
    """``providers.stability``: ``base_url``, ``model`` (``ultra``, ``core`` or an SD3.5
    model) and an optional ``style_preset`` (Ultra, Core). Key: ``STABILITY_API_KEY``."""

    base_url: str = "https://api.stability.ai"
    model: str | None = "ultra"
    style_preset: str | None = None


class StabilityProvider(Provider):
    """Stable Image Ultra / Core / SD3.5 on the Stability AI platform."""

    name: ClassVar[str] = "stability"
    display_name: ClassVar[str] = "Stability AI"
    Config = StabilityConfig
    secret_env: ClassVar[dict[str, tuple[str, ...]]] = {"api_key": ("STABILITY_API_KEY",)}
    models: ClassVar[tuple[str, ...]] = ("ultra", "core", *SD3_MODELS)
    default_model: ClassVar[str] = "ultra"
    price_table: ClassVar[PriceTable] = PriceTable(
        source_url="https://platform.stability.ai/pricing",
        checked="2026-11-29",
        prices={model: round(credits * USD_PER_CREDIT, 4) for model, credits in CREDITS.items()},
        note="credits per image x USD 0.01",
    )
    model_specs: ClassVar[dict[str, ModelSpec]] = {
        "ultra": ModelSpec(aspect_ratios=ASPECT_RATIOS, steps=None, guidance=None, img2img=True),
        "core": ModelSpec(aspect_ratios=ASPECT_RATIOS, steps=None, guidance=None),
        **{
            m: ModelSpec(aspect_ratios=ASPECT_RATIOS, steps=None, guidance=(1.0, 10.0), img2img=True, negative_prompt=m != "sd3.5-large-turbo")
            for m in SD3_MODELS
        },
    }

    config: StabilityConfig

    def __init__(self, *, config: StabilityConfig, secrets: Any, downloader: Any = None) -> None:
        super().__init__(config=config, secrets=secrets, downloader=downloader)
        key = self.secret("api_key")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = guarded_client(guard_for(self, config.base_url), base_url=config.base_url.rstrip("/"), headers=headers, timeout=config.timeout_s)

    def form(self, request: GenerationRequest) -> tuple[str, dict[str, str]]:
        """(endpoint path, form fields) for ``request``."""
        model = request.model or self.model
        mapped = self.map(request)
        fields: dict[str, str] = {
            "prompt": request.prompt[:10000],
            "aspect_ratio": mapped.aspect_ratio or nearest_aspect_ratio(request.width, request.height),
            "output_format": request.output_format if request.output_format in ("png", "jpeg", "webp") else "png",
            "seed": str(request.seed % 4294967295 if request.seed is not None else 0),
        }
        if mapped.negative_prompt:
            fields["negative_prompt"] = mapped.negative_prompt
        if request.init_image is not None:
            fields["strength"] = str(request.strength if request.strength is not None else 0.6)
            del fields["aspect_ratio"]  # image-to-image keeps the input's aspect ratio
        if model in SD3_MODELS:
            fields["model"] = model
            fields["mode"] = "image-to-image" if request.init_image is not None else "text-to-image"
            if mapped.guidance_scale is not None:
                fields["cfg_scale"] = f"{mapped.guidance_scale:g}"
            return "/v2beta/stable-image/generate/sd3", fields
        if self.config.style_preset:
            fields["style_preset"] = self.config.style_preset
        return f"/v2beta/stable-image/generate/{model}", fields

    def generate(self, request: GenerationRequest) -> GenerationResult:
        model = request.model or self.model
        started = time.monotonic()
        path, fields = self.form(request)
        # a file part forces multipart/form-data as the API requires (``none`` when there is no image)
        files = {"image": ("image", request.init_image)} if request.init_image is not None else {"none": ("", b"")}
        with translate_httpx(provider=self.name, model=model):
            response = self._client.post(path, data=fields, files=files, headers={"Accept": "image/*"})
        raise_for_status(response, provider=self.name, model=model)  # 403 content_moderation: a content filter
        finish = response.headers.get("finish-reason", "SUCCESS").upper()
        if finish == "CONTENT_FILTERED":
            raise ContentFilteredError("content filtered: finish-reason CONTENT_FILTERED", provider=self.name, model=model)
        if finish != "SUCCESS":
            raise ContentFilteredError(f"finish-reason {finish}", provider=self.name, model=model)
        seed_header = response.headers.get("seed")
        seed = int(seed_header) if seed_header and seed_header.isdigit() else request.seed
        # ~1 MP at the mapped aspect ratio: compare the aspect, not the exact size
        return result_from_bytes(
            response.content,
            provider=self,
            request=request,
            model=model,
            seed=seed,
            cost_usd=self.estimate_cost(request),
            started=started,
            mapped=self.map(request),
            metadata={"aspect_ratio": fields.get("aspect_ratio"), "request_id": response.headers.get("x-request-id"), "headers": rate_limit_headers(response)},
        )

    def check(self) -> ProviderCheck:
        """``GET /v1/user/balance`` (free): key valid, credits left."""
        response = self.probe_get(self._client, "/v1/user/balance")
        if isinstance(response, ProviderCheck):
            return response
        credits = response.json().get("credits")
        return ProviderCheck(True, f"{credits} credits (USD {float(credits or 0) * USD_PER_CREDIT:.2f}); model {self.model}")

    def close(self) -> None:
        self._client.close()
