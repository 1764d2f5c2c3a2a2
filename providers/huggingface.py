"""Hugging Face Inference through ``huggingface_hub.InferenceClient.text_to_image``
(https://huggingface.co/docs/huggingface_hub/package_reference/inference_client; the
client's src/huggingface_hub/inference/_client.py and
src/huggingface_hub/inference/_providers/hf_inference.py).

hf-inference request: ``POST {router}/hf-inference/models/{model_id}`` with
``{"inputs": prompt, "parameters": {negative_prompt, height, width,
num_inference_steps, guidance_scale, scheduler, seed}}``; success is the raw image.
``inference_provider`` routes through a partner (``auto``, ``fal-ai``, ...);
``endpoint_url`` (a dedicated Inference Endpoint, or a loopback test server) is called
exactly as given. A 503 ``{"error": "Model X is currently loading", "estimated_time":
20.0}`` is transient with ``estimated_time`` as the retry hint (the client does not
retry it since huggingface_hub 0.29). Token: ``HUGGINGFACE_TOKEN`` / ``HF_TOKEN``.
Price: hf-inference bills compute time (https://huggingface.co/docs/inference-providers/pricing);
the table holds a per-image estimate for SDXL on the serverless GPUs.
"""

from __future__ import annotations

import io
import time
from typing import Any, ClassVar

from domain.model import GenerationRequest, GenerationResult
from domain.errors import InvalidOutputError, ProviderError, RejectedProviderError, TransientProviderError
from providers.base import Provider, ProviderCheck, result_from_bytes
from providers.httperrors import error_for_status, parse_retry_after
from providers.spec import ModelSpec, PriceTable, ProviderConfig
from providers.netguard import huggingface_guard
from PIL import UnidentifiedImageError


class HuggingFaceConfig(ProviderConfig):
    """``providers.huggingface``: ``model`` (a Hub model id); ``inference_provider``:
    ``hf-inference`` (default), ``auto`` (the Hub's provider mapping) or a named partner
    (``fal-ai``, ``replicate``, ``together`` ...); ``endpoint_url``: a dedicated Inference
    Endpoint (or a test server) called as given; ``hub_url`` for ``check()``; ``scheduler``.
    Token: ``HUGGINGFACE_TOKEN`` / ``HF_TOKEN``."""

    model: str | None = "stabilityai/stable-diffusion-xl-base-1.0"
    inference_provider: str = "hf-inference"
    endpoint_url: str | None = None
    hub_url: str = "https://huggingface.co"
    scheduler: str | None = None


class HuggingFaceProvider(Provider):
    """Text-to-image on Hugging Face Inference (hf-inference or a routed partner)."""

    name: ClassVar[str] = "huggingface"
    display_name: ClassVar[str] = "Hugging Face Inference"
    models: ClassVar[tuple[str, ...]] = (
        "stabilityai/stable-diffusion-xl-base-1.0",
        "black-forest-labs/FLUX.1-schnell",
        "black-forest-labs/FLUX.1-dev",
    )
    default_model: ClassVar[str] = "stabilityai/stable-diffusion-xl-base-1.0"
    Config = HuggingFaceConfig
    secret_env: ClassVar[dict[str, tuple[str, ...]]] = {"token": ("HUGGINGFACE_TOKEN", "HF_TOKEN")}
    #: hf-inference bills GPU time; these are per-image estimates (about 10 s of an A10G-class GPU).
    price_table: ClassVar[PriceTable] = PriceTable(
        source_url="https://huggingface.co/docs/inference-providers/pricing",
        checked="2026-11-29",
        prices={"stabilityai/stable-diffusion-xl-base-1.0": 0.02, "black-forest-labs/FLUX.1-schnell": 0.02, "black-forest-labs/FLUX.1-dev": 0.03, "*": 0.02},
        note="compute-time billing; per-image estimate",
    )
    #: Text-to-image task parameters (huggingface_hub TextToImageParameters): any size divisible
    #: by 8; SDXL runs 1..100 steps with guidance; FLUX.1-schnell is distilled for 1..4 steps, no guidance.
    default_spec: ClassVar[ModelSpec] = ModelSpec(side_range=(256, 2048), side_multiple=8, steps=(1, 100), guidance=(0.0, 20.0))
    model_specs: ClassVar[dict[str, ModelSpec]] = {
        "stabilityai/stable-diffusion-xl-base-1.0": ModelSpec(side_range=(512, 1536), side_multiple=8, steps=(1, 100), guidance=(0.0, 20.0)),
        "black-forest-labs/FLUX.1-schnell": ModelSpec(side_range=(256, 1440), side_multiple=16, steps=(1, 4), guidance=None, negative_prompt=False),
        "black-forest-labs/FLUX.1-dev": ModelSpec(side_range=(256, 1440), side_multiple=16, steps=(1, 50), guidance=(1.0, 10.0), negative_prompt=False),
    }

    config: HuggingFaceConfig

    def __init__(self, *, config: HuggingFaceConfig, secrets: Any, downloader: Any = None) -> None:
        super().__init__(config=config, secrets=secrets, downloader=downloader)
        from huggingface_hub import InferenceClient  # noqa: PLC0415 - huggingface_hub: heavy import, only for that provider

        huggingface_guard(self, config.endpoint_url, config.hub_url)
        self._client = InferenceClient(
            provider=None if config.endpoint_url else config.inference_provider,  # type: ignore[arg-type]
            token=self.secret("token"),
            timeout=config.timeout_s,
        )

    def target(self, request: GenerationRequest) -> str:
        """What ``model=`` receives: the endpoint URL when configured, else the model id."""
        return self.config.endpoint_url or request.model or self.model

    def generate(self, request: GenerationRequest) -> GenerationResult:
        model = request.model or self.model
        started = time.monotonic()
        mapped = self.map(request)
        try:
            image = self._client.text_to_image(
                request.prompt,
                negative_prompt=mapped.negative_prompt,
                width=mapped.width,
                height=mapped.height,
                num_inference_steps=mapped.num_inference_steps,
                guidance_scale=mapped.guidance_scale,
                seed=request.seed,
                scheduler=self.config.scheduler,
                model=self.target(request),
            )
            data = _image_bytes(image)
        except Exception as exc:
            raise self.translate(exc, model) from exc
        return result_from_bytes(
            data,
            provider=self,
            request=request,
            model=model,
            seed=request.seed,
            cost_usd=self.estimate_cost(request),
            started=started,
            mapped=mapped,
            metadata={"inference_provider": "endpoint" if self.config.endpoint_url else self.config.inference_provider},
        )

    def translate(self, exc: Exception, model: str) -> ProviderError:
        """The one place where huggingface_hub / httpx / Pillow exceptions become ProviderErrors."""
        from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError  # noqa: PLC0415 - huggingface_hub: heavy import, only for that provider

        if isinstance(exc, ProviderError):
            return exc
        if isinstance(exc, InferenceTimeoutError):
            return TransientProviderError(f"timeout: {exc}", provider=self.name, model=model)
        if isinstance(exc, HfHubHTTPError) and getattr(exc, "response", None) is not None:
            response = exc.response
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            detail = str(getattr(exc, "server_message", "") or "") or str(exc).splitlines()[0]
            try:
                body = response.json()
            except Exception:
                body = None
            if isinstance(body, dict):
                detail = str(body.get("error") or detail)
                if retry_after is None and isinstance(body.get("estimated_time"), (int, float)):
                    retry_after = float(body["estimated_time"])  # 503 "model loading"
            return error_for_status(response.status_code, " ".join(detail.split())[:300], provider=self.name, model=model, retry_after=retry_after)
        if isinstance(exc, (UnidentifiedImageError, OSError, SyntaxError)):  # Pillow on the answer's bytes
            return InvalidOutputError(f"invalid image: does not decode ({type(exc).__name__}: {str(exc)[:120]})", provider=self.name, model=model)
        if isinstance(exc, ValueError):  # the client refused the request (unknown provider or task for the model)
            return RejectedProviderError(f"request refused by huggingface_hub: {str(exc)[:300]}", provider=self.name, model=model)
        if type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2"):
            kind = "timeout" if "Timeout" in type(exc).__name__ else "request failed"
            return TransientProviderError(f"{kind}: {type(exc).__name__}: {exc}", provider=self.name, model=model)
        return TransientProviderError(f"{type(exc).__name__}: {exc}", provider=self.name, model=model)

    def check(self) -> ProviderCheck:
        """``whoami`` on the Hub (free): the token is valid; no image is generated."""
        missing = self.missing_secrets()
        if missing:
            return ProviderCheck(False, f"missing {missing[0]} (or HF_TOKEN) in the environment or .env")
        from huggingface_hub import HfApi  # noqa: PLC0415 - huggingface_hub: heavy import, only for that provider

        try:
            info = HfApi(endpoint=self.config.hub_url, token=self.secret("token")).whoami()
        except Exception as exc:
            error = self.translate(exc, self.model)
            return ProviderCheck(False, self.scrub(str(error)))
        return ProviderCheck(True, f"token of {info.get('name', '?')} accepted; model {self.model}")


def _image_bytes(image: Any) -> bytes:
    """The encoded bytes behind the PIL image the client returns (re-encoded as PNG when
    they are not at hand); a truncated file raises OSError here."""
    source = getattr(image, "fp", None)
    if isinstance(source, io.BytesIO):
        return source.getvalue()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
