"""AUTOMATIC1111 stable-diffusion-webui started with ``--api`` (contract 4 of
../shared/contracts/providers.md; https://github.com/AUTOMATIC1111/stable-diffusion-webui/wiki/API).

``POST /sdapi/v1/txt2img`` with prompt, negative_prompt, seed (-1 = random), steps,
cfg_scale, width, height, sampler_name, override_settings.sd_model_checkpoint; the
answer is ``{"images": [base64 PNG], "parameters": {...}, "info": "<JSON string>"}``
and the seed actually used is ``json.loads(info)["seed"]``. HTTP Basic auth from
``AUTOMATIC1111_AUTH=user:pass`` when the WebUI runs with ``--api-auth``.
Self-hosted: cost 0 unless ``cost_usd`` is configured.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any, ClassVar

import httpx

from core.domain import GenerationRequest, GenerationResult
from core.errors import InvalidOutputError
from core.settings import Automatic1111Config, Secrets
from providers.base import Provider, raise_for_status, result_from_bytes, translate_httpx


class Automatic1111Provider(Provider):
    """txt2img against an AUTOMATIC1111 WebUI (default http://localhost:7860)."""

    name: ClassVar[str] = "automatic1111"
    display_name: ClassVar[str] = "AUTOMATIC1111 WebUI"
    models: ClassVar[tuple[str, ...]] = ()  # whatever checkpoints the server has
    default_model: ClassVar[str] = "server-default"
    prices_usd: ClassVar[dict[str, float]] = {}
    secret_settings: ClassVar[tuple[str, ...]] = ("automatic1111_auth",)

    config: Automatic1111Config

    def __init__(self, *, config: Automatic1111Config, secrets: Secrets) -> None:
        super().__init__(config=config, secrets=secrets)
        auth = None
        if secrets.automatic1111_auth is not None:
            user, _, password = secrets.automatic1111_auth.get_secret_value().partition(":")
            auth = httpx.BasicAuth(user, password)
        self._client = httpx.Client(base_url=config.base_url.rstrip("/"), timeout=config.timeout_s, auth=auth)

    def payload(self, request: GenerationRequest) -> dict[str, Any]:
        """The txt2img JSON body for ``request``."""
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
            "seed": request.seed if request.seed is not None else -1,
            "steps": request.num_inference_steps,
            "cfg_scale": request.guidance_scale,
            "width": request.width,
            "height": request.height,
            "sampler_name": self.config.sampler_name,
            "batch_size": 1,
            "n_iter": 1,
            "send_images": True,
            "save_images": False,
        }
        checkpoint = request.model or self.config.model
        if checkpoint:
            body["override_settings"] = {"sd_model_checkpoint": checkpoint}
        return body

    def generate(self, request: GenerationRequest) -> GenerationResult:
        model = request.model or self.model
        started = time.monotonic()
        with translate_httpx(provider=self.name, model=model):
            response = self._client.post("/sdapi/v1/txt2img", json=self.payload(request))
        raise_for_status(response, provider=self.name, model=model)

        def garbage(reason: str) -> InvalidOutputError:
            return InvalidOutputError(f"invalid answer: {reason}", provider=self.name, model=model)

        try:
            body = response.json()
        except ValueError as exc:
            raise garbage("body is not JSON") from exc
        images = body.get("images") if isinstance(body, dict) else None
        if not images or not isinstance(images[0], str):
            raise garbage("no images in the answer")
        encoded = images[0].split(",", 1)[1] if images[0].startswith("data:") else images[0]
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise garbage("image is not base64") from exc
        seed = request.seed
        info: dict[str, Any] = {}
        try:
            info = json.loads(body.get("info") or "{}")
            seed = int(info.get("seed", seed)) if info.get("seed") is not None else seed
        except (TypeError, ValueError):
            info = {}
        used_model = str(info.get("sd_model_name") or model)
        return result_from_bytes(
            data,
            provider=self,
            request=request,
            model=used_model,
            seed=seed,
            cost_usd=self.estimate_cost(request),
            started=started,
            metadata={"process_time": response.headers.get("x-process-time"), "sampler": info.get("sampler_name")},
        )

    def close(self) -> None:
        self._client.close()
