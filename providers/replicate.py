"""Replicate HTTP API v1 (contract 2 of ../shared/contracts/providers.md;
https://replicate.com/docs/reference/http).

``POST /v1/models/{owner}/{name}/predictions`` (official models) or ``POST
/v1/predictions`` with ``version`` (``model: owner/name:<version>``), with ``Prefer:
wait=N`` so most predictions finish inside the create call; otherwise ``urls.get`` is
polled until ``timeout_s``, when ``POST /v1/predictions/{id}/cancel`` stops billing.
The output file URLs are fetched through the SSRF-safe downloader. Errors are
``application/problem+json``; a 429 carries ``retry_after`` in the body. A prediction
that failed with "flagged as sensitive (E005)" is a content-filter rejection.

httpx rather than the ``replicate`` client: the client drops the Retry-After /
``retry_after`` hint from its errors and retries polls on its own, both of which the
chain needs to see (classification, Retry-After, circuit).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any, ClassVar

import httpx

from core.domain import GenerationRequest, GenerationResult
from core.errors import ContentFilteredError, InvalidOutputError, ProviderError, TransientProviderError
from core.settings import ReplicateConfig, Secrets
from providers.base import Provider, ProviderCheck, raise_for_status, result_from_bytes, translate_httpx

FILTER_MARKERS = ("E005", "flagged as sensitive", "NSFW")


class ReplicateProvider(Provider):
    """Predictions on Replicate (SD, realistic-vision, FLUX schnell ...)."""

    name: ClassVar[str] = "replicate"
    display_name: ClassVar[str] = "Replicate"
    models: ClassVar[tuple[str, ...]] = (
        "stability-ai/stable-diffusion",
        "lucataco/realistic-vision-v5.1",
        "black-forest-labs/flux-schnell",
    )
    default_model: ClassVar[str] = "stability-ai/stable-diffusion"
    prices_usd: ClassVar[dict[str, float]] = {
        "stability-ai/stable-diffusion": 0.05,
        "lucataco/realistic-vision-v5.1": 0.08,
        "black-forest-labs/flux-schnell": 0.003,
    }
    secret_settings: ClassVar[tuple[str, ...]] = ("replicate_api_token",)

    config: ReplicateConfig

    def __init__(self, *, config: ReplicateConfig, secrets: Secrets, downloader: Any = None) -> None:
        super().__init__(config=config, secrets=secrets, downloader=downloader)
        token = self.secret("replicate_api_token")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(base_url=config.base_url.rstrip("/"), headers=headers, timeout=config.timeout_s)
        #: ``Prefer: wait=N`` blocks the create call up to N s: keep it inside our own timeout.
        self.wait_s = max(1, min(config.wait_s, int(config.timeout_s * 0.8)))

    def estimate_cost(self, request: GenerationRequest) -> float:
        """USD per image from the price table, looked up by ``owner/name`` (a pinned
        ``:version`` does not change the price)."""
        from dataclasses import replace

        model = (request.model or self.model).partition(":")[0]
        return super().estimate_cost(replace(request, model=model))

    def create_call(self, request: GenerationRequest) -> tuple[str, dict[str, Any]]:
        """(path, JSON body) of the create call for ``request``."""
        model = request.model or self.model
        data: dict[str, Any] = {
            "prompt": request.prompt,
            "width": request.width,
            "height": request.height,
            "num_inference_steps": request.num_inference_steps,
            "guidance_scale": request.guidance_scale,
            "num_outputs": 1,
        }
        if request.negative_prompt:
            data["negative_prompt"] = request.negative_prompt
        if request.seed is not None:
            data["seed"] = request.seed
        name, _, version = model.partition(":")
        if version:
            return "/v1/predictions", {"version": version, "input": data}
        return f"/v1/models/{name}/predictions", {"input": data}

    def generate(self, request: GenerationRequest) -> GenerationResult:
        model = request.model or self.model
        started = time.monotonic()
        deadline = started + self.config.timeout_s
        path, body = self.create_call(request)
        with translate_httpx(provider=self.name, model=model):
            response = self._client.post(path, json=body, headers={"Prefer": f"wait={self.wait_s}"})
        raise_for_status(response, provider=self.name, model=model)
        prediction = self._json(response, model)
        try:
            while prediction.get("status") in ("starting", "processing"):
                if time.monotonic() + self.config.poll_interval_s > deadline:
                    raise TransientProviderError(
                        f"timeout: prediction {prediction.get('id')} still {prediction.get('status')} after "
                        f"{self.config.timeout_s:.0f} s (cancelled)", provider=self.name, model=model)
                time.sleep(self.config.poll_interval_s)
                with translate_httpx(provider=self.name, model=model):
                    polled = self._client.get(self._own_url(prediction, "get", model))
                raise_for_status(polled, provider=self.name, model=model)
                prediction = self._json(polled, model)
        except ProviderError:
            self.cancel(prediction, model)
            raise
        return self._result(prediction, request, model, started)

    def cancel(self, prediction: dict[str, Any], model: str) -> None:
        """``POST urls.cancel`` so billing stops; a failure to cancel is logged, not raised."""
        try:
            self._client.post(self._own_url(prediction, "cancel", model), timeout=10.0)
        except (httpx.HTTPError, ProviderError) as exc:
            logging.getLogger("content_pipeline.providers").warning(
                "replicate: could not cancel the prediction (%s); it may still be billed", type(exc).__name__)

    def _own_url(self, prediction: dict[str, Any], kind: str, model: str) -> str:
        """``urls.get`` / ``urls.cancel``, only when it points at the configured API (our
        token never goes elsewhere); else the documented path."""
        url = str((prediction.get("urls") or {}).get(kind) or "")
        base = self.config.base_url.rstrip("/")
        if url.startswith(base + "/"):
            return url
        suffix = "/cancel" if kind == "cancel" else ""
        return f"{base}/v1/predictions/{prediction.get('id')}{suffix}"

    def _json(self, response: httpx.Response, model: str) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError as exc:
            raise InvalidOutputError("invalid answer: body is not JSON", provider=self.name, model=model) from exc
        if not isinstance(data, dict):
            raise InvalidOutputError("invalid answer: not a prediction", provider=self.name, model=model)
        return data

    def _result(self, prediction: dict[str, Any], request: GenerationRequest, model: str, started: float) -> GenerationResult:
        status = prediction.get("status")
        error = str(prediction.get("error") or "")
        if status == "failed" and any(marker in error for marker in FILTER_MARKERS):
            raise ContentFilteredError(f"content filtered: {error[:200]}", provider=self.name, model=model)
        if status != "succeeded":
            raise TransientProviderError(f"prediction {status}: {error[:200]}", provider=self.name, model=model)
        output = prediction.get("output")
        url = output[0] if isinstance(output, list) and output else output
        if not isinstance(url, str):
            raise InvalidOutputError("invalid answer: prediction has no output URL", provider=self.name, model=model)
        data = self.downloader.fetch(url, provider=self.name, model=model)
        predict_time = (prediction.get("metrics") or {}).get("predict_time")
        found = re.search(r"[Uu]sing seed:?\s*(\d+)", str(prediction.get("logs") or ""))
        seed = int(found.group(1)) if found else request.seed
        cost = self.estimate_cost(request)
        if self.config.price_per_second_usd and isinstance(predict_time, (int, float)):
            cost = round(predict_time * self.config.price_per_second_usd, 6)  # billed by reported GPU time
        return result_from_bytes(
            data, provider=self, request=request, model=model, seed=seed, cost_usd=cost, started=started,
            metadata={"prediction_id": prediction.get("id"), "predict_time": predict_time},
        )

    def check(self) -> ProviderCheck:
        """``GET /v1/account`` (free): the token is valid."""
        response = self.probe_get(self._client, "/v1/account")
        if isinstance(response, ProviderCheck):
            return response
        return ProviderCheck(True, f"account {response.json().get('username', '?')}; model {self.model}")

    def close(self) -> None:
        self._client.close()
