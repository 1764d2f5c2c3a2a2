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
``guidance_end``, ``resize_mode`` and ``control_mode``; an IP-Adapter style reference is one more unit whose
``module`` is the extension's IP-Adapter preprocessor (``ip-adapter_clip_sd15``,
``ip-adapter_clip_sdxl`` ...) and ``model`` an IP-Adapter model it lists; a hires-fix pass (txt2img only)
as ``enable_hr``, ``hr_scale``, ``hr_upscaler`` and ``denoising_strength``
(StableDiffusionProcessingTxt2Img in modules/processing.py).
Self-hosted: cost 0 unless ``cost_usd`` is configured.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Sequence
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
    #: images per call when variations of a slot share everything but the seed (``batch_size``);
    #: 1 (the default): no batching, every image its own call with the chain's retries
    batch_limit: Annotated[int, Field(ge=1, le=16)] = 1


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
    default_spec: ClassVar[ModelSpec] = ModelSpec(
        side_range=(64, 2048),
        side_multiple=8,
        steps=(1, 150),
        guidance=(1.0, 30.0),
        img2img=True,
        inpainting=True,
        loras=True,
        controlnet=True,
        ip_adapter=True,
    )

    config: Automatic1111Config

    def __init__(self, *, config: Automatic1111Config, secrets: Any, downloader: Any = None) -> None:
        super().__init__(config=config, secrets=secrets, downloader=downloader)
        auth = None
        credentials = self.secret("auth")
        if credentials is not None:
            user, _, password = credentials.partition(":")
            auth = httpx.BasicAuth(user, password)
        self._client = guarded_client(guard_for(self, config.base_url), base_url=config.base_url.rstrip("/"), timeout=config.timeout_s, auth=auth)

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
            body["denoising_strength"] = request.strength if request.strength is not None else self.config.denoising_strength
            if request.mask_image is not None:
                body["mask"] = base64.b64encode(request.mask_image).decode()
                body["inpainting_fill"] = self.config.inpainting_fill
                body["mask_blur"] = self.config.mask_blur
                body["inpaint_full_res"] = self.config.inpaint_full_res
                body["inpainting_mask_invert"] = 0  # white = repaint
        return body

    @staticmethod
    def extras(request: GenerationRequest) -> dict[str, Any]:
        """The ControlNet units and the IP-Adapter style reference (one more unit, with the
        extension's ``ip-adapter_*`` preprocessor and IP-Adapter model) as
        ``alwayson_scripts.controlnet.args`` and, for txt2img, the hires-fix fields of
        ``request``; empty when it has none of them."""
        extra: dict[str, Any] = {}
        units = [(c.image, c.unit.module, c.unit.model, c.unit.weight, c.unit.guidance_start, c.unit.guidance_end) for c in request.control_units or ()]
        style = request.style_reference
        if style is not None:
            units.append((style.image, style.unit.module, style.unit.model, style.unit.weight, 0.0, 1.0))
        if units:
            extra["alwayson_scripts"] = {
                "controlnet": {
                    "args": [
                        {
                            "enabled": True,
                            "image": base64.b64encode(image).decode(),
                            "module": module,
                            "model": model,
                            "weight": weight,
                            "guidance_start": start,
                            "guidance_end": end,
                            "resize_mode": "Crop and Resize",
                            "control_mode": "Balanced",
                            "pixel_perfect": False,
                        }
                        for image, module, model, weight, start, end in units
                    ]
                }
            }
        hires = request.hires_fix
        if hires is not None and request.init_image is None:  # hires fix is a txt2img pass
            extra.update({"enable_hr": True, "hr_scale": hires.scale, "hr_upscaler": hires.upscaler, "denoising_strength": hires.denoising_strength})
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

    def _call(self, body: dict[str, Any], endpoint: str, model: str) -> tuple[list[bytes], dict[str, Any], httpx.Response]:
        """POST ``body``; the decoded images, the parsed ``info`` and the response."""
        with translate_httpx(provider=self.name, model=model):
            response = self._client.post(endpoint, json=body)
        raise_for_status(response, provider=self.name, model=model)

        def garbage(reason: str) -> InvalidOutputError:
            return InvalidOutputError(f"invalid answer: {reason}", provider=self.name, model=model)

        try:
            answer = response.json()
        except ValueError as exc:
            raise garbage("body is not JSON") from exc
        images = answer.get("images") if isinstance(answer, dict) else None
        if not images or not all(isinstance(image, str) for image in images):
            raise garbage("no images in the answer")
        try:
            data = [base64.b64decode(i.split(",", 1)[1] if i.startswith("data:") else i, validate=True) for i in images]
        except (binascii.Error, ValueError) as exc:
            raise garbage("image is not base64") from exc
        try:
            info = json.loads(answer.get("info") or "{}")
        except (TypeError, ValueError):
            info = {}
        return data, info if isinstance(info, dict) else {}, response

    def _result(
        self, data: bytes, request: GenerationRequest, model: str, seed: Any, info: dict[str, Any], response: httpx.Response, started: float
    ) -> GenerationResult:
        try:
            used_seed = int(seed) if seed is not None else request.seed
        except (TypeError, ValueError):
            used_seed = request.seed
        return result_from_bytes(
            data,
            provider=self,
            request=request,
            model=str(info.get("sd_model_name") or model),
            seed=used_seed,
            cost_usd=self.estimate_cost(request),
            started=started,
            metadata={
                "process_time": response.headers.get("x-process-time"),
                "sampler": info.get("sampler_name"),
                "headers": rate_limit_headers(response),
                "controlnet_units": len(request.control_units or ()),
                "ip_adapter": request.style_reference.unit.model if request.style_reference else None,
                "hires_fix": bool(request.hires_fix and request.init_image is None),
                "mode": "inpaint" if request.mask_image else ("img2img" if request.init_image else "txt2img"),
            },
        )

    def generate(self, request: GenerationRequest) -> GenerationResult:
        model = request.model or self.model
        started = time.monotonic()
        images, info, response = self._call(self.payload(request), self.endpoint(request), model)
        return self._result(images[0], request, model, info.get("seed"), info, response, started)

    @property
    def renders_batches(self) -> bool:
        """True when ``batch_limit`` > 1: the chain and the flows then call ``generate_batch``."""
        return self.config.batch_limit > 1

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult | ProviderError]:
        """One result (or the ProviderError of that image) per request, in order.

        Requests whose bodies differ only in the seed (the variations of one slot) go as
        one call with ``batch_size`` = their number (at most ``batch_limit``; ``n_iter`` 1),
        seeded with the first request's seed: the WebUI gives image i seed + i and reports
        them as ``info.all_seeds``, recorded per image (regenerating with that seed alone
        gives that image again). A failed call is that error for each of its images."""
        outcomes: list[GenerationResult | ProviderError | None] = [None] * len(requests)
        groups: dict[str, list[int]] = {}
        for index, request in enumerate(requests):
            body = {k: v for k, v in self.payload(request).items() if k != "seed"}
            groups.setdefault(json.dumps(body, sort_keys=True) + self.endpoint(request), []).append(index)
        for indices in groups.values():
            for first in range(0, len(indices), self.config.batch_limit):
                chunk = indices[first : first + self.config.batch_limit]
                for i, outcome in zip(chunk, self._render([requests[i] for i in chunk]), strict=True):
                    outcomes[i] = outcome
        return [o for o in outcomes if o is not None]

    def _render(self, batch: list[GenerationRequest]) -> list[GenerationResult | ProviderError]:
        model = batch[0].model or self.model
        started = time.monotonic()
        body = self.payload(batch[0])
        body["batch_size"] = len(batch)
        try:
            images, info, response = self._call(body, self.endpoint(batch[0]), model)
            if len(images) < len(batch):
                raise InvalidOutputError(f"invalid answer: {len(images)} images for a batch of {len(batch)}", provider=self.name, model=model)
        except ProviderError as exc:
            return [exc] * len(batch)
        seeds = info.get("all_seeds")
        seeds = seeds if isinstance(seeds, list) and len(seeds) >= len(batch) else [info.get("seed")] * len(batch)
        return [self._result(images[i], r, model, seeds[i], info, response, started) for i, r in enumerate(batch)]

    def close(self) -> None:
        self._client.close()
