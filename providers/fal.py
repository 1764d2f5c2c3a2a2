"""fal.ai queue API (https://docs.fal.ai/model-endpoints/queue; the official client
fal-client's src/fal_client/client.py; model inputs on https://fal.ai/models/fal-ai/flux/schnell/api).

``POST {queue}/{model_id}`` -> ``{request_id, status_url, response_url}``; ``GET
status_url`` until ``COMPLETED``; ``GET response_url`` -> ``{images: [{url, width,
height, content_type}], seed, has_nsfw_concepts: [bool]}``; the image URL is fetched
through the SSRF-safe downloader. On our timeout the request is cancelled (``PUT
.../requests/{id}/cancel``). ``has_nsfw_concepts: [true]`` is a content-filter
rejection. Auth: ``Authorization: Key $FAL_KEY``. ``image_size`` is sent as
``{width, height}`` (multiples of 8, 256..2048 here); FLUX schnell takes 1..12 steps
and no guidance, FLUX dev 1..50 steps and ``guidance_scale`` 1..20; neither takes a
negative prompt. Price: USD per output megapixel (https://fal.ai/pricing and each
model's page). httpx rather than ``fal-client``: the client's queue hosts are fixed
https hosts and cannot be aimed at a test server.
"""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any, ClassVar

import httpx
from pydantic import Field

from domain.model import GenerationRequest, GenerationResult
from domain.errors import ContentFilteredError, InvalidOutputError, ProviderError, TransientProviderError, UnsafeURLError
from providers.base import Provider, ProviderCheck, job_submitted, poll_until, result_from_bytes
from providers.spec import ModelSpec, PriceTable, ProviderConfig
from providers.netguard import guard_for, guarded_client


class FalConfig(ProviderConfig):
    """``providers.fal``: ``queue_url``, ``model`` (a fal model id), ``poll_interval_s``
    and ``enable_safety_checker``. Key: ``FAL_KEY``."""

    queue_url: str = "https://queue.fal.run"
    model: str | None = "fal-ai/flux/schnell"
    poll_interval_s: Annotated[float, Field(gt=0, le=60)] = 0.5
    enable_safety_checker: bool = True


class FalProvider(Provider):
    """FLUX (schnell, dev ...) on fal.ai's queue."""

    name: ClassVar[str] = "fal"
    display_name: ClassVar[str] = "fal.ai"
    Config = FalConfig
    secret_env: ClassVar[dict[str, tuple[str, ...]]] = {"api_key": ("FAL_KEY",)}
    models: ClassVar[tuple[str, ...]] = ("fal-ai/flux/schnell", "fal-ai/flux/dev")
    default_model: ClassVar[str] = "fal-ai/flux/schnell"
    price_table: ClassVar[PriceTable] = PriceTable(
        source_url="https://fal.ai/pricing", checked="2026-11-29", unit="megapixel", prices={"fal-ai/flux/schnell": 0.003, "fal-ai/flux/dev": 0.025, "*": 0.025}
    )
    model_specs: ClassVar[dict[str, ModelSpec]] = {
        "fal-ai/flux/schnell": ModelSpec(side_range=(256, 2048), side_multiple=8, steps=(1, 12), guidance=None, negative_prompt=False),
        "fal-ai/flux/dev": ModelSpec(side_range=(256, 2048), side_multiple=8, steps=(1, 50), guidance=(1.0, 20.0), negative_prompt=False),
    }
    default_spec: ClassVar[ModelSpec] = ModelSpec(side_range=(256, 2048), side_multiple=8, steps=(1, 50), guidance=(1.0, 20.0), negative_prompt=False)

    config: FalConfig

    def __init__(self, *, config: FalConfig, secrets: Any, downloader: Any = None) -> None:
        super().__init__(config=config, secrets=secrets, downloader=downloader)
        key = self.secret("api_key")
        headers = {"Authorization": f"Key {key}"} if key else {}
        self._base = config.queue_url.rstrip("/")
        self._client = guarded_client(guard_for(self, self._base), base_url=self._base, headers=headers, timeout=config.timeout_s)

    def payload(self, request: GenerationRequest) -> dict[str, Any]:
        """The queue submit body for ``request``, mapped onto the model's inputs."""
        mapped = self.map(request)
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "image_size": {"width": mapped.width, "height": mapped.height},
            "num_images": 1,
            "enable_safety_checker": self.config.enable_safety_checker,
            "output_format": "jpeg" if request.output_format == "jpeg" else "png",
        }
        if mapped.num_inference_steps is not None:
            body["num_inference_steps"] = mapped.num_inference_steps
        if mapped.guidance_scale is not None:
            body["guidance_scale"] = mapped.guidance_scale
        if request.seed is not None:
            body["seed"] = request.seed
        return body

    def _own(self, url: str, model: str) -> str:
        """``url`` if it is on the configured queue host (our key goes nowhere else)."""
        if not url.startswith(self._base + "/"):
            raise UnsafeURLError(f"refused URL: queue answered a URL outside {self._base}", provider=self.name, model=model)
        return url

    def generate(self, request: GenerationRequest) -> GenerationResult:
        model = request.model or self.model
        started = time.monotonic()
        job = self.call_json(self._client, "POST", f"/{model}", model, json=self.payload(request))
        request_id = str(job.get("request_id") or "")
        job_submitted(request_id)
        base = f"{self._base}/{model}/requests/{request_id}"
        # the queue answers its own URLs (for "fal-ai/flux/schnell" they live under the app "fal-ai/flux")
        status_url = self._own(str(job.get("status_url") or base + "/status"), model)
        response_url = self._own(str(job.get("response_url") or base), model)
        cancel_url = self._own(str(job.get("cancel_url") or status_url.removesuffix("/status") + "/cancel"), model)
        return self._wait(request_id, (status_url, response_url, cancel_url), request, model, started)

    resumable: ClassVar[bool] = True

    def resume(self, job_id: str, request: GenerationRequest) -> GenerationResult:
        """Poll queue request ``job_id`` submitted by an earlier run and take its result; its
        URLs are the app's (``owner/alias``, as fal-client's ``AppId``): ``.../requests/{id}/status``."""
        model = request.model or self.model
        base = f"{self._base}/{'/'.join(model.split('/')[:2])}/requests/{job_id}"
        return self._wait(job_id, (base + "/status", base, base + "/cancel"), request, model, time.monotonic())

    def _wait(self, request_id: str, urls: tuple[str, str, str], request: GenerationRequest, model: str, started: float) -> GenerationResult:
        """Poll ``urls`` (status, response, cancel) until ``COMPLETED`` (cancelled on our
        timeout or any failure), then fetch the image."""
        status_url, response_url, cancel_url = urls

        def completed(answer: dict[str, Any]) -> bool:
            status = answer.get("status")
            if status == "COMPLETED":
                return True
            if status not in ("IN_QUEUE", "IN_PROGRESS"):
                raise TransientProviderError(f"request {request_id} {status}", provider=self.name, model=model)
            return False

        def timed_out(answer: dict[str, Any]) -> ProviderError:
            return TransientProviderError(
                f"timeout: request {request_id} still {answer.get('status')} after {self.config.timeout_s:.0f} s (cancelled)", provider=self.name, model=model
            )

        try:
            poll_until(
                lambda: self.call_json(self._client, "GET", status_url, model),
                completed,
                timed_out,
                deadline=started + self.config.timeout_s,
                interval_s=self.config.poll_interval_s,
            )
        except ProviderError:
            self.cancel(cancel_url)
            raise
        output = self.call_json(self._client, "GET", response_url, model)
        if any(output.get("has_nsfw_concepts") or []):
            raise ContentFilteredError("content filtered: has_nsfw_concepts", provider=self.name, model=model)
        images = output.get("images") or []
        url = images[0].get("url") if images and isinstance(images[0], dict) else None
        if not isinstance(url, str):
            raise InvalidOutputError("invalid answer: no image URL", provider=self.name, model=model)
        data = self.downloader.fetch(url, provider=self.name, model=model)
        seed = output.get("seed") if isinstance(output.get("seed"), int) else request.seed
        return result_from_bytes(
            data,
            provider=self,
            request=request,
            model=model,
            seed=seed,
            cost_usd=self.estimate_cost(request),
            started=started,
            mapped=self.map(request),
            metadata={"request_id": request_id, "timings": output.get("timings")},
        )

    def cancel(self, cancel_url: str) -> None:
        """``PUT .../requests/{id}/cancel`` so billing stops; a failure to cancel is logged, not raised."""
        try:
            self._client.put(cancel_url, timeout=10.0)
        except httpx.HTTPError as exc:
            logging.getLogger("content_pipeline.providers").warning("fal: could not cancel the request (%s); it may still be billed", type(exc).__name__)

    def check(self) -> ProviderCheck:
        """fal has no free credential check: reports whether ``FAL_KEY`` is set."""
        missing = self.missing_secrets()
        if missing:
            return ProviderCheck(False, f"missing {missing[0]} in the environment or .env")
        return ProviderCheck(True, f"FAL_KEY set (fal has no free check endpoint); model {self.model}")

    def close(self) -> None:
        self._client.close()
