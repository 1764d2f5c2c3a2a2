"""Google Gemini API image models ("Nano Banana") over plain REST with httpx.

Protocol (https://ai.google.dev/gemini-api/docs/image-generation and the method reference
https://ai.google.dev/api/generate-content): ``POST {base_url}/v1beta/models/{model}:generateContent``
with the key in the ``x-goog-api-key`` header (https://ai.google.dev/api, "Authentication")
and the JSON body ``{"contents": [{"role": "user", "parts": [{"text": prompt}, {"inlineData":
{"mimeType", "data"}}?]}], "generationConfig": {"responseModalities": ["TEXT", "IMAGE"],
"imageConfig": {"aspectRatio"}, "seed"}}``. The image part (base64) is image editing: the
reference image of the request. The requested size is mapped to the nearest documented
aspect ratio (1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9; about 1 MP out); there
are no steps, guidance or negative prompt (dropped, with a note).

The answer (``GenerateContentResponse``) is ``{candidates: [{content: {parts: [{text} |
{inlineData: {mimeType, data}}]}, finishReason}], promptFeedback: {blockReason},
usageMetadata: {promptTokenCount, candidatesTokenCount, candidatesTokensDetails:
[{modality, tokenCount}]}, modelVersion, responseId}``. Mapping:

* an ``inlineData`` image part: success;
* ``promptFeedback.blockReason`` (no candidates) or a candidate ``finishReason`` of
  ``SAFETY``, ``IMAGE_SAFETY``, ``PROHIBITED_CONTENT``, ``IMAGE_PROHIBITED_CONTENT``,
  ``BLOCKLIST``, ``SPII``, ``RECITATION`` or ``IMAGE_RECITATION``: ``ContentFilteredError`` (a rejection);
* any other finish without an image part (``STOP`` with text only, ``NO_IMAGE``,
  ``MAX_TOKENS`` ...): ``InvalidOutputError``;
* errors are ``{"error": {code, message, status, details[]}}``
  (https://ai.google.dev/gemini-api/docs/troubleshooting): 429 ``RESOURCE_EXHAUSTED`` is
  transient, waiting ``RetryInfo.retryDelay`` (``"7s"``) or ``Retry-After``; 400
  ``INVALID_ARGUMENT`` / ``FAILED_PRECONDITION`` rejected, except a 400 whose
  ``ErrorInfo.reason`` is ``API_KEY_INVALID`` (the answer to a wrong key): auth; 401 / 403
  (``PERMISSION_DENIED``) auth; 404 ``NOT_FOUND`` for the model: ``ModelRetiredError``;
  500 / 503 / 504 transient. An error status is not billed (billed_usd 0).

Cost (USD). Prices from https://ai.google.dev/gemini-api/docs/pricing: gemini-2.5-flash-image
input USD 0.30 per 1M tokens, output images USD 30 per 1M tokens, a 1024 x 1024 image being
1290 output tokens (USD 0.039 per image up to 1024 x 1024), as the pricing page states. Only
that model is priced and offered here: the preview image models' per-image prices could not
be read from the official page, and a model whose maximum cost is unknown cannot be
reserved against the budget; add one with its price (``providers.gemini``) once confirmed.
A call is priced from its ``usageMetadata`` (``token_prices_usd``) when present, else by the
per-image table. A safety block is billed for what ``usageMetadata`` reports, the input
tokens only: a blocked prompt generates, and is billed for, no output (billed_usd on the
error). Key: ``GEMINI_API_KEY`` (also ``GOOGLE_API_KEY``).

Lifecycle (providers/lifecycle.py): Imagen models on the Gemini API shut down on 2026-08-17
(https://ai.google.dev/gemini-api/docs/imagen); their replacement is gemini-2.5-flash-image.
gemini-2.5-flash-image-preview is retired in favour of gemini-2.5-flash-image (its shutdown
date is not confirmed here). ``model_status`` asks ``GET /v1beta/models/{model}`` (404:
retired). The client is the redirect-guarded httpx client (providers/netguard.py).
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from datetime import date
from typing import Annotated, Any, ClassVar

import httpx
from pydantic import Field

from domain.errors import AuthBillingProviderError, ContentFilteredError, InvalidOutputError, ProviderError
from domain.model import GenerationRequest, GenerationResult
from providers.base import Provider, ProviderCheck, json_object, result_from_bytes
from providers.httperrors import error_for_status, parse_retry_after, rate_limit_headers, translate_httpx
from providers.lifecycle import ModelStatus, retired_error
from providers.netguard import guard_for, guarded_client
from providers.spec import ModelSpec, PriceTable, ProviderConfig

PRICING_URL = "https://ai.google.dev/gemini-api/docs/pricing"
IMAGEN_URL = "https://ai.google.dev/gemini-api/docs/imagen"
DEFAULT_MODEL = "gemini-2.5-flash-image"
ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
#: finishReason / blockReason values that mean the content was blocked.
SAFETY_REASONS = frozenset({"SAFETY", "IMAGE_SAFETY", "PROHIBITED_CONTENT", "IMAGE_PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION", "IMAGE_RECITATION"})
#: google.rpc.ErrorInfo reasons that are auth failures whatever the HTTP status.
AUTH_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED"})
SPEC = ModelSpec(aspect_ratios=ASPECT_RATIOS, steps=None, guidance=None, negative_prompt=False, img2img=True)


class GeminiConfig(ProviderConfig):
    """``providers.gemini``: ``base_url``, ``model`` (gemini-2.5-flash-image ...) and
    ``token_prices_usd`` (USD per 1M tokens: ``input``, ``output_image``, ``output_text``),
    applied to the reported ``usageMetadata``. Key: ``GEMINI_API_KEY`` or ``GOOGLE_API_KEY``."""

    base_url: str = "https://generativelanguage.googleapis.com"
    model: str | None = DEFAULT_MODEL
    token_prices_usd: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=lambda: {"input": 0.30, "output_image": 30.0, "output_text": 2.50})


def _lifecycle() -> dict[str, ModelStatus]:
    imagen = {
        m: ModelStatus(m, "deprecated", date(2026, 8, 17), DEFAULT_MODEL, IMAGEN_URL)
        for m in ("imagen-4.0-generate-001", "imagen-4.0-ultra-generate-001", "imagen-4.0-fast-generate-001", "imagen-3.0-generate-002")
    }
    return {
        DEFAULT_MODEL: ModelStatus(DEFAULT_MODEL, "active", source=PRICING_URL),
        "gemini-2.5-flash-image-preview": ModelStatus(
            "gemini-2.5-flash-image-preview", "retired", None, DEFAULT_MODEL, "https://ai.google.dev/gemini-api/docs/changelog", "shutdown date not confirmed"
        ),
        **imagen,
    }


def retry_delay(body: dict[str, Any], header: str | None) -> float | None:
    """Seconds to wait: ``error.details[].retryDelay`` (google.rpc.RetryInfo, ``"7s"`` /
    ``"1.5s"``), else the ``Retry-After`` header, else None."""
    for detail in _details(body):
        match = re.fullmatch(r"(\d+(?:\.\d+)?)s", str(detail.get("retryDelay", "")))
        if match:
            return float(match.group(1))
    return parse_retry_after(header)


def _details(body: dict[str, Any]) -> list[dict[str, Any]]:
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    details = error.get("details") if isinstance(error, dict) else None
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


class GeminiProvider(Provider):
    """Gemini image models (generateContent with an image response modality)."""

    name: ClassVar[str] = "gemini"
    display_name: ClassVar[str] = "Google Gemini (image)"
    Config = GeminiConfig
    secret_env: ClassVar[dict[str, tuple[str, ...]]] = {"api_key": ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    model_lifecycle: ClassVar[dict[str, ModelStatus]] = _lifecycle()
    models: ClassVar[tuple[str, ...]] = tuple(model_lifecycle)
    default_model: ClassVar[str] = DEFAULT_MODEL
    #: USD per image (about 1 MP), used when the answer reports no usage.
    price_table: ClassVar[PriceTable] = PriceTable(
        source_url=PRICING_URL,
        checked="2026-12-05",
        prices={DEFAULT_MODEL: 0.039},
        note="gemini-2.5-flash-image: 1290 output tokens x USD 30/1M per image up to 1024 x 1024",
    )
    model_specs: ClassVar[dict[str, ModelSpec]] = {model: SPEC for model in model_lifecycle}
    default_spec: ClassVar[ModelSpec] = SPEC

    config: GeminiConfig

    def __init__(self, *, config: GeminiConfig, secrets: Any, downloader: Any = None) -> None:
        super().__init__(config=config, secrets=secrets, downloader=downloader)
        key = self.secret("api_key")
        headers = {"x-goog-api-key": key} if key else {}
        self._client = guarded_client(guard_for(self, config.base_url), base_url=config.base_url.rstrip("/"), headers=headers, timeout=config.timeout_s)

    def body(self, request: GenerationRequest) -> dict[str, Any]:
        """The generateContent JSON body for ``request`` (an image part when it has a reference)."""
        parts: list[dict[str, Any]] = [{"text": request.prompt}]
        if request.init_image is not None:
            parts.append({"inlineData": {"mimeType": _mime_type(request.init_image), "data": base64.b64encode(request.init_image).decode()}})
        config: dict[str, Any] = {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": {"aspectRatio": self.map(request).aspect_ratio}}
        if request.seed is not None:
            config["seed"] = request.seed % 2_147_483_647
        return {"contents": [{"role": "user", "parts": parts}], "generationConfig": config}

    def usage_cost(self, usage: Any) -> float | None:
        """USD for a ``usageMetadata`` object (input, image and text output tokens at
        ``token_prices_usd`` per 1M), or None when there is none."""
        if not isinstance(usage, dict) or "promptTokenCount" not in usage:
            return None
        prices = self.config.token_prices_usd
        image_tokens = sum(
            int(d.get("tokenCount", 0)) for d in usage.get("candidatesTokensDetails") or [] if isinstance(d, dict) and d.get("modality") == "IMAGE"
        )
        text_tokens = max(0, int(usage.get("candidatesTokenCount", 0)) - image_tokens)
        return round(
            (
                int(usage.get("promptTokenCount", 0)) * prices.get("input", 0.0)
                + image_tokens * prices.get("output_image", 0.0)
                + text_tokens * prices.get("output_text", 0.0)
            )
            / 1e6,
            9,
        )

    def generate(self, request: GenerationRequest) -> GenerationResult:
        model = self.model_of(request)
        started = time.monotonic()
        body = self.body(request)
        with translate_httpx(provider=self.name, model=model):
            response = self._client.post(f"/v1beta/models/{model}:generateContent", json=body)
        if response.status_code >= 400:
            raise self.error(response, model)
        answer = json_object(response, provider=self.name, model=model)
        data, text = self.image_of(answer, model)
        usage = answer.get("usageMetadata")
        cost = self.usage_cost(usage)
        if cost is None or self.config.cost_usd:
            cost = self.estimate_cost(request)
        return result_from_bytes(
            data,
            provider=self,
            request=request,
            model=model,
            seed=body["generationConfig"].get("seed"),
            cost_usd=cost,
            started=started,
            metadata={
                "aspect_ratio": self.map(request).aspect_ratio,
                "usage": usage,
                "text": text[:500] or None,
                "model_version": answer.get("modelVersion"),
                "response_id": answer.get("responseId"),
                "headers": rate_limit_headers(response),
            },
        )

    def image_of(self, answer: dict[str, Any], model: str) -> tuple[bytes, str]:
        """(image bytes, text) of a generateContent answer; ContentFilteredError for a
        safety block, InvalidOutputError for a finish without an image."""
        billed = self.usage_cost(answer.get("usageMetadata"))
        blocked = (answer.get("promptFeedback") or {}).get("blockReason")
        if blocked:
            raise ContentFilteredError(f"content filtered: prompt blocked (blockReason {blocked})", provider=self.name, model=model, billed_usd=billed)
        candidates = [c for c in answer.get("candidates") or [] if isinstance(c, dict)]
        if not candidates:
            raise InvalidOutputError("invalid answer: no candidates", provider=self.name, model=model, billed_usd=billed)
        candidate = candidates[0]
        finish = str(candidate.get("finishReason") or "")
        parts = [p for p in (candidate.get("content") or {}).get("parts") or [] if isinstance(p, dict)]
        text = " ".join(str(p["text"]) for p in parts if p.get("text"))
        images = [p["inlineData"] for p in parts if isinstance(p.get("inlineData"), dict)]
        if finish in SAFETY_REASONS:
            raise ContentFilteredError(f"content filtered: finishReason {finish}", provider=self.name, model=model, billed_usd=billed)
        if not images:
            said = f": {' '.join(text.split())[:120]}" if text else ""
            raise InvalidOutputError(
                f"invalid answer: finishReason {finish or 'none'} without an image{said}", provider=self.name, model=model, billed_usd=billed
            )
        try:
            return base64.b64decode(str(images[0].get("data", "")), validate=True), text
        except (binascii.Error, ValueError) as exc:
            raise InvalidOutputError("invalid answer: inlineData.data is not base64", provider=self.name, model=model, billed_usd=billed) from exc

    def error(self, response: httpx.Response, model: str) -> ProviderError:
        """The classified ProviderError of an error answer ``{"error": {code, message, status, details}}``."""
        body = _body(response)
        raw = body.get("error")
        error: dict[str, Any] = raw if isinstance(raw, dict) else {}
        status = str(error.get("status") or "") or None
        message = " ".join(str(error.get("message") or response.text[:200]).split())[:300]
        reasons = {str(d.get("reason")) for d in _details(body) if d.get("reason")}
        code = response.status_code
        if code == 404 and status == "NOT_FOUND":
            return retired_error(self, model, message, code)
        if reasons & AUTH_REASONS:  # a wrong key answers 400 INVALID_ARGUMENT, reason API_KEY_INVALID
            classified: ProviderError = AuthBillingProviderError(
                f"HTTP {code}: {sorted(reasons & AUTH_REASONS)[0]}: {message}", provider=self.name, model=model, status_code=code, billed_usd=0.0
            )
        else:
            classified = error_for_status(
                code,
                message,
                provider=self.name,
                model=model,
                retry_after=retry_delay(body, response.headers.get("retry-after")),
                error_code=status.lower() if status else None,
            )
            classified.billed_usd = 0.0
        classified.headers = rate_limit_headers(response)
        return classified

    def model_status(self, model: str) -> ModelStatus:
        """``GET /v1beta/models/{model}`` (free): 404 retired, else the declared status
        (``active`` when none is declared). Raises the classified error when the lookup fails."""
        known = self.model_lifecycle.get(model)
        with translate_httpx(provider=self.name, model=model):
            response = self._client.get(f"/v1beta/models/{model}")
        if response.status_code == 404:
            return ModelStatus(
                model, "retired", known.shutdown if known else None, known.replacement if known else DEFAULT_MODEL, known.source if known else IMAGEN_URL
            )
        if response.status_code >= 400:
            raise self.error(response, model)
        return known or ModelStatus(model, "active", source=PRICING_URL)

    def check(self) -> ProviderCheck:
        """``GET /v1beta/models/{model}`` (free): key valid, model known."""
        response = self.probe_get(self._client, f"/v1beta/models/{self.model}")
        if isinstance(response, ProviderCheck):
            return response
        return ProviderCheck(True, f"key accepted; model {_body(response).get('name', self.model)}")

    def close(self) -> None:
        self._client.close()


def _mime_type(data: bytes) -> str:
    """The MIME type of PNG / JPEG / WebP bytes (``image/png`` when unknown)."""
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "image/png"
