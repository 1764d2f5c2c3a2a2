"""AUTOMATIC1111 stable-diffusion-webui started with ``--api``
(https://github.com/AUTOMATIC1111/stable-diffusion-webui/wiki/API; request models in
modules/api/models.py, routes in modules/api/api.py of that repository).

``POST /sdapi/v1/txt2img`` (or ``/sdapi/v1/img2img`` with ``init_images``, ``mask``
and ``denoising_strength`` when the request carries an init image: img2img, and
inpainting with a mask, white = repaint) with prompt, negative_prompt, seed (-1 =
random), steps, cfg_scale, width, height, sampler_name,
override_settings.sd_model_checkpoint (the checkpoint chosen per request); the
answer is ``{"images": [base64 PNG], "parameters": {...}, "info": "<JSON string>"}``
and the seed actually used is ``json.loads(info)["seed"]``. HTTP Basic auth from
``AUTOMATIC1111_AUTH=user:pass`` when the WebUI runs with ``--api-auth``.

Brand consistency: a template's ControlNet units go through the sd-webui-controlnet
extension (https://github.com/Mikubill/sd-webui-controlnet/wiki/API) as
``alwayson_scripts: {"controlnet": {"args": [unit, ...]}}``, one object per unit with
``enabled``, ``image`` (base64), ``module``, ``model``, ``weight``, ``guidance_start``,
``guidance_end``, ``resize_mode`` and ``control_mode``; a hires-fix pass (txt2img only)
as ``enable_hr``, ``hr_scale``, ``hr_upscaler`` and ``denoising_strength``
(StableDiffusionProcessingTxt2Img in modules/processing.py).
Self-hosted: cost 0 unless ``cost_usd`` is configured.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Annotated, Any, ClassVar

import httpx

from domain.model import GenerationRequest, GenerationResult
from domain.errors import InvalidOutputError, ProviderError
from pydantic import Field

from providers.spec import ModelSpec, ProviderConfig
from providers.base import Provider, ProviderCheck, result_from_bytes
from providers.httperrors import raise_for_status, rate_limit_headers, translate_httpx
from providers.netguard import guard_for, guarded_client


class Automatic1111Config(ProviderConfig):
    """``providers.automatic1111``: the WebUI's ``base_url``, sampler and scheduler, and the
    img2img / inpainting defaults: how much of the init image changes (0..1), how masked
    areas start (0 fill, 1 original, 2 latent noise, 3 latent nothing), mask blur (px).
    HTTP Basic from ``AUTOMATIC1111_AUTH=user:pass`` in the environment."""

    enabled: bool = False
    base_url: str = "http://localhost:7860"
    sampler_name: str = "DPM++ 2M"
    scheduler: str | None = None
    denoising_strength: Annotated[float, Field(ge=0, le=1)] = 0.75
    inpainting_fill: Annotated[int, Field(ge=0, le=3)] = 1
    mask_blur: Annotated[int, Field(ge=0, le=64)] = 4
    inpaint_full_res: bool = False


class Automatic1111Provider(Provider):
    """txt2img, img2img and inpainting against an AUTOMATIC1111 WebUI (default http://localhost:7860)."""

    name: ClassVar[str] = "automatic1111"
    display_name: ClassVar[str] = "AUTOMATIC1111 WebUI"
    Config = Automatic1111Config
    models: ClassVar[tuple[str, ...]] = ()  # whatever checkpoints the server has
    default_model: ClassVar[str] = "server-default"
    #: ``user:pass`` for a WebUI started with ``--api-auth`` (optional).
    secret_env: ClassVar[dict[str, tuple[str, ...]]] = {"auth": ("AUTOMATIC1111_AUTH",)}
    optional_secret_env: ClassVar[frozenset[str]] = frozenset({"auth"})  # only with --api-auth
    #: StableDiffusionProcessing fields: any size (multiples of 8), steps 1..150, cfg 1..30.
    default_spec: ClassVar[ModelSpec] = ModelSpec(side_range=(64, 2048), side_multiple=8, steps=(1, 150),
                                                  guidance=(1.0, 30.0), img2img=True, inpainting=True, loras=True,
                                                  controlnet=True)

    config: Automatic1111Config

    def __init__(self, *, config: Automatic1111Config, secrets: Any, downloader: Any = None) -> None:
        super().__init__(config=config, secrets=secrets, downloader=downloader)
        auth = None
        credentials = self.secret("auth")
        if credentials is not None:
            user, _, password = credentials.partition(":")
            auth = httpx.BasicAuth(user, password)
        self._client = guarded_client(guard_for(self, config.base_url), base_url=config.base_url.rstrip("/"), timeout=config.timeout_s,
                                      auth=auth)

    def payload(self, request: GenerationRequest) -> dict[str, Any]:
        """The txt2img (or img2img) JSON body for ``request``, mapped onto the WebUI's limits."""
        mapped = self.map(request)
        # LoRAs by the WebUI's prompt syntax <lora:name:weight> (extensions-builtin/Lora)
        loras = "".join(f" <lora:{name}:{weight:g}>" for name, weight in request.loras or ())
        body: dict[str, Any] = {
            "prompt": request.prompt + loras,
            "negative_prompt": request.negative_prompt,
            "seed": request.seed if request.seed is not None else -1,
            "steps": mapped.num_inference_steps,
            "cfg_scale": mapped.guidance_scale,
            "width": mapped.width,
            "height": mapped.height,
            "sampler_name": self.config.sampler_name,
            "batch_size": 1,
            "n_iter": 1,
            "send_images": True,
            "save_images": False,
        }
        if self.config.scheduler:
            body["scheduler"] = self.config.scheduler
        checkpoint = request.model or self.config.model
        if checkpoint:
            body["override_settings"] = {"sd_model_checkpoint": checkpoint}
            body["override_settings_restore_afterwards"] = False  # the next image likely wants it too
        body.update(self.extras(request))
        if request.init_image is not None:
            body["init_images"] = [base64.b64encode(request.init_image).decode()]
            body["denoising_strength"] = (
                request.strength if request.strength is not None else self.config.denoising_strength
            )
            if request.mask_image is not None:
                body["mask"] = base64.b64encode(request.mask_image).decode()
                body["inpainting_fill"] = self.config.inpainting_fill
                body["mask_blur"] = self.config.mask_blur
                body["inpaint_full_res"] = self.config.inpaint_full_res
                body["inpainting_mask_invert"] = 0  # white = repaint
        return body

    @staticmethod
    def extras(request: GenerationRequest) -> dict[str, Any]:
        """The ControlNet units (``alwayson_scripts.controlnet.args``) and, for txt2img, the
        hires-fix fields of ``request``; empty when it has neither."""
        extra: dict[str, Any] = {}
        if request.control_units:
            extra["alwayson_scripts"] = {"controlnet": {"args": [
                {"enabled": True, "image": base64.b64encode(c.image).decode(), "module": c.unit.module,
                 "model": c.unit.model, "weight": c.unit.weight, "guidance_start": c.unit.guidance_start,
                 "guidance_end": c.unit.guidance_end, "resize_mode": "Crop and Resize", "control_mode": "Balanced",
                 "pixel_perfect": False}
                for c in request.control_units]}}
        hires = request.hires_fix
        if hires is not None and request.init_image is None:  # hires fix is a txt2img pass
            extra.update({"enable_hr": True, "hr_scale": hires.scale, "hr_upscaler": hires.upscaler,
                          "denoising_strength": hires.denoising_strength})
        return extra

    def endpoint(self, request: GenerationRequest) -> str:
        """``/sdapi/v1/img2img`` when the request has an init image, else ``/sdapi/v1/txt2img``."""
        return "/sdapi/v1/img2img" if request.init_image is not None else "/sdapi/v1/txt2img"

    def check(self) -> ProviderCheck:
        """``GET /sdapi/v1/sd-models`` (free): reachable, credentials accepted, checkpoints listed."""
        try:
            with translate_httpx(provider=self.name, model=self.model):
                response = self._client.get("/sdapi/v1/sd-models")
            raise_for_status(response, provider=self.name, model=self.model)
        except ProviderError as exc:
            return ProviderCheck(False, self.scrub(str(exc)))
        names = [m.get("title") or m.get("model_name") for m in response.json() if isinstance(m, dict)]
        return ProviderCheck(True, f"{len(names)} checkpoints: {', '.join(map(str, names[:5]))}")

    def generate(self, request: GenerationRequest) -> GenerationResult:
        model = request.model or self.model
        started = time.monotonic()
        with translate_httpx(provider=self.name, model=model):
            response = self._client.post(self.endpoint(request), json=self.payload(request))
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
            seed = int(info["seed"]) if info.get("seed") is not None else seed
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
            metadata={"process_time": response.headers.get("x-process-time"), "sampler": info.get("sampler_name"),
                      "headers": rate_limit_headers(response),
                      "controlnet_units": len(request.control_units or ()),
                      "hires_fix": bool(request.hires_fix and request.init_image is None),
                      "mode": "inpaint" if request.mask_image else ("img2img" if request.init_image else "txt2img")},
        )

    def close(self) -> None:
        self._client.close()
