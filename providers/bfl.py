"""Black Forest Labs' own FLUX API (https://docs.bfl.ai/quick_start/generating_images,
API reference https://docs.bfl.ai/api-reference; prices https://docs.bfl.ai/pricing).

``POST {base}/v1/{model}`` (``flux-pro-1.1``, ``flux-dev``, ``flux-pro-1.1-ultra`` ...)
with ``x-key: $BFL_API_KEY`` and a JSON body ``{prompt, width, height, seed,
output_format, safety_tolerance, ...}`` answers ``{id, polling_url}``; ``GET
polling_url`` (same key) until ``status`` is ``Ready``: ``result.sample`` is a signed URL
(valid about 10 minutes) fetched through the SSRF-safe downloader, without the key.
``width`` / ``height`` are multiples of 32 in 256..1440; ``flux-dev`` also takes
``steps`` (1..50) and ``guidance`` (1.5..5); ``flux-pro-1.1-ultra`` takes an
``aspect_ratio`` instead of a size; no model takes a negative prompt. An
``image_prompt`` (base64) is a reference image (FLUX Redux-style conditioning, img2img).

Statuses ``Request Moderated`` / ``Content Moderated`` are content-filter rejections that
BFL does not charge (https://help.bfl.ai: counted at USD 0); ``Error`` / ``Task not
found`` failures. BFL has no cancel endpoint: a task still pending at our timeout runs on
and is billed, so the timeout carries the task's price (``billed_usd``) and the task id
(``pending_job``): the next run polls it by id (``resume``) instead of submitting again. HTTP errors are FastAPI's ``{"detail": ...}``
(422 validation, 402 insufficient credits, 403 key, 429 too many active tasks).
The key is only sent to the configured base URL or to an https ``*.bfl.ai`` polling host.
"""

from __future__ import annotations

import base64
import logging
import time
from typing import Annotated, Any, ClassVar
from urllib.parse import urlsplit

from pydantic import Field

from domain.model import GenerationRequest, GenerationResult
from domain.errors import ContentFilteredError, InvalidOutputError, ProviderError, TransientProviderError, UnsafeURLError
from providers.base import Provider, ProviderCheck, job_submitted, poll_until, result_from_bytes
from providers.spec import ModelSpec, PriceTable, ProviderConfig
from providers.netguard import guard_for, guarded_client

ULTRA_RATIOS = ("21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16", "9:21")
FILTERED = ("Request Moderated", "Content Moderated")
PENDING = ("Pending",)


class BFLConfig(ProviderConfig):
    """``providers.bfl``: ``base_url`` (global ``https://api.bfl.ai``, or the EU / US
    regional hosts), ``model``, ``safety_tolerance`` (0 strictest .. 6), ``poll_interval_s``.
    Key: ``BFL_API_KEY``."""

    base_url: str = "https://api.bfl.ai"
    model: str | None = "flux-pro-1.1"
    safety_tolerance: Annotated[int, Field(ge=0, le=6)] = 2
    poll_interval_s: Annotated[float, Field(gt=0, le=60)] = 0.5


class BFLProvider(Provider):
    """FLUX1.1 [pro], FLUX.1 [dev] and FLUX1.1 [pro] Ultra on api.bfl.ai."""

    name: ClassVar[str] = "bfl"
    display_name: ClassVar[str] = "Black Forest Labs API"
    Config = BFLConfig
    secret_env: ClassVar[dict[str, tuple[str, ...]]] = {"api_key": ("BFL_API_KEY",)}
    models: ClassVar[tuple[str, ...]] = ("flux-pro-1.1", "flux-dev", "flux-pro-1.1-ultra")
    default_model: ClassVar[str] = "flux-pro-1.1"
    #: Credits per image x USD 0.01 per credit.
    price_table: ClassVar[PriceTable] = PriceTable(
        source_url="https://docs.bfl.ai/pricing",
        checked="2026-11-29",
        prices={"flux-pro-1.1": 0.04, "flux-dev": 0.025, "flux-pro-1.1-ultra": 0.06, "flux-pro": 0.05},
    )
    model_specs: ClassVar[dict[str, ModelSpec]] = {
        "flux-pro-1.1": ModelSpec(side_range=(256, 1440), side_multiple=32, steps=None, guidance=None, negative_prompt=False, img2img=True),
        "flux-dev": ModelSpec(side_range=(256, 1440), side_multiple=32, steps=(1, 50), guidance=(1.5, 5.0), negative_prompt=False, img2img=True),
        "flux-pro-1.1-ultra": ModelSpec(aspect_ratios=ULTRA_RATIOS, megapixels=4.0, steps=None, guidance=None, negative_prompt=False, img2img=True),
    }
    default_spec: ClassVar[ModelSpec] = ModelSpec(side_range=(256, 1440), side_multiple=32, steps=None, guidance=None, negative_prompt=False)

    config: BFLConfig

    def __init__(self, *, config: BFLConfig, secrets: Any, downloader: Any = None) -> None:
        super().__init__(config=config, secrets=secrets, downloader=downloader)
        key = self.secret("api_key")
        headers = {"x-key": key} if key else {}
        self._base = config.base_url.rstrip("/")
        self._client = guarded_client(
            guard_for(self, self._base), base_url=self._base, headers={**headers, "accept": "application/json"}, timeout=config.timeout_s
        )

    def payload(self, request: GenerationRequest) -> dict[str, Any]:
        """The JSON body for ``request``, mapped onto the model's inputs."""
        mapped = self.map(request)
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "output_format": "jpeg" if request.output_format == "jpeg" else "png",
            "safety_tolerance": self.config.safety_tolerance,
        }
        if mapped.aspect_ratio is not None:
            body["aspect_ratio"] = mapped.aspect_ratio
        else:
            body["width"], body["height"] = mapped.width, mapped.height
        if mapped.num_inference_steps is not None:
            body["steps"] = mapped.num_inference_steps
        if mapped.guidance_scale is not None:
            body["guidance"] = mapped.guidance_scale
        if request.seed is not None:
            body["seed"] = request.seed
        if request.init_image is not None:
            body["image_prompt"] = base64.b64encode(request.init_image).decode()
            if mapped.aspect_ratio is not None and request.strength is not None:
                body["image_prompt_strength"] = request.strength
        return body

    def _polling_url(self, url: str, model: str) -> str:
        """``url`` when our key may go there: under the base URL, or https on ``*.bfl.ai``."""
        if url.startswith(self._base + "/"):
            return url
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme == "https" and (host == "bfl.ai" or host.endswith(".bfl.ai")):
            return url
        raise UnsafeURLError(f"refused URL: polling_url outside {self._base} and *.bfl.ai", provider=self.name, model=model)

    def generate(self, request: GenerationRequest) -> GenerationResult:
        model = self.model_of(request)
        started = time.monotonic()
        task = self.call_json(self._client, "POST", f"/v1/{model}", model, json=self.payload(request))
        task_id = str(task.get("id") or "")
        job_submitted(task_id)
        polling_url = self._polling_url(str(task.get("polling_url") or f"{self._base}/v1/get_result?id={task_id}"), model)
        return self._wait(task_id, polling_url, request, model, started)

    resumable: ClassVar[bool] = True

    def resume(self, job_id: str, request: GenerationRequest) -> GenerationResult:
        """Poll task ``job_id`` (``GET /v1/get_result?id=``) submitted by an earlier run, until
        ``Ready`` or our timeout; nothing is submitted (https://docs.bfl.ai/api-reference)."""
        model = self.model_of(request)
        return self._wait(job_id, f"{self._base}/v1/get_result?id={job_id}", request, model, time.monotonic())

    def _wait(self, task_id: str, polling_url: str, request: GenerationRequest, model: str, started: float) -> GenerationResult:
        """Poll task ``task_id`` at ``polling_url`` until ``Ready``; its image as a result."""

        def ready(answer: dict[str, Any]) -> bool:
            status = str(answer.get("status") or "")
            if status == "Ready":
                return True
            if status in FILTERED:  # not charged (https://help.bfl.ai): counted at USD 0, never at the estimate
                raise ContentFilteredError(f"content filtered: {status}", provider=self.name, model=model, billed_usd=0.0)
            if status not in PENDING:
                raise TransientProviderError(
                    f"task {task_id} {status or 'without status'}: {str(answer.get('details') or '')[:200]}", provider=self.name, model=model
                )
            return False

        def timed_out(answer: dict[str, Any]) -> ProviderError:
            # BFL has no cancel call: the task finishes (and is billed) on its own; the next run polls it
            logging.getLogger("content_pipeline.providers").warning("bfl: task %s still pending at the timeout", task_id)
            error = TransientProviderError(
                f"timeout: task {task_id} still {answer.get('status')} after {self.config.timeout_s:.0f} s (it runs on and is billed)",
                provider=self.name,
                model=model,
                billed_usd=self.estimate_cost(request),
            )
            error.pending_job = task_id
            return error

        answer = poll_until(
            lambda: self.call_json(self._client, "GET", polling_url, model),
            ready,
            timed_out,
            deadline=started + self.config.timeout_s,
            interval_s=self.config.poll_interval_s,
        )
        result = answer.get("result") or {}
        url = result.get("sample") if isinstance(result, dict) else None
        if not isinstance(url, str):
            raise InvalidOutputError("invalid answer: no result.sample URL", provider=self.name, model=model)
        data = self.downloader.fetch(url, provider=self.name, model=model)
        seed = result.get("seed") if isinstance(result.get("seed"), int) else request.seed
        return result_from_bytes(
            data,
            provider=self,
            request=request,
            model=model,
            seed=seed,
            cost_usd=self.estimate_cost(request),
            started=started,
            metadata={"task_id": task_id, "duration": result.get("duration")},
        )

    def check(self) -> ProviderCheck:
        """``GET /v1/credits`` (free): the key is valid, credits left."""
        response = self.probe_get(self._client, "/v1/credits")
        if isinstance(response, ProviderCheck):
            return response
        try:
            credits = response.json().get("credits")
        except (ValueError, AttributeError):
            credits = "?"
        return ProviderCheck(True, f"{credits} credits; model {self.model}")

    def close(self) -> None:
        self._client.close()
