"""OpenAI Images API through the official ``openai`` client
(https://platform.openai.com/docs/api-reference/images/create; openai-python's
src/openai/resources/images.py and src/openai/_exceptions.py).

``POST {base}/v1/images/generations`` with ``prompt, model, n=1, size, quality`` and,
for DALL-E, ``response_format=b64_json``. The size is the model's allowed size nearest
the requested one (gpt-image: 1024x1024, 1536x1024, 1024x1536; dall-e-3: 1024x1024,
1792x1024, 1024x1792; dall-e-2: 256, 512, 1024 squares); the Images API takes no steps,
guidance or negative prompt (dropped, with a note). Errors are ``{"error": {message,
type, param, code}}`` (https://platform.openai.com/docs/guides/error-codes): the code
wins over the status: 429 ``insufficient_quota`` / ``billing_hard_limit_reached`` are
auth/billing (no retry, provider disabled, alert), 400 ``content_policy_violation`` /
``moderation_blocked`` a content filter, 403 ``organization_must_be_verified``
auth/billing, 429 ``rate_limit_exceeded`` transient with ``retry-after``.

Cost: the reported token ``usage`` priced with ``token_prices_usd`` (gpt-image), else
the price table per image by quality and size (https://platform.openai.com/docs/pricing).
Key: ``OPENAI_API_KEY``. The client's own retries are off: the chain retries.

Model lifecycle (``model_lifecycle``, providers/lifecycle.py) from the official
deprecations page, https://developers.openai.com/api/docs/deprecations (read 2026-12-05):
gpt-image-1.5 (and its snapshot gpt-image-1.5-2025-12-16), gpt-image-1-mini and
chatgpt-image-latest shut down on 2026-12-01 with "gpt-image-2.6-sunburst or
gpt-image-2.6-flare" as the recommended replacement; gpt-image-1 is retired and dall-e-3 /
dall-e-2 removed (their shutdown dates, 2026-05-12 for DALL-E, are from third-party copies
of the page, not confirmed on the official one). The default model is
``gpt-image-2.6-flare``, a name read on the official page only as a replacement: its sizes
and per-image prices are NOT confirmed from an official source; the sizes sent are the
gpt-image family's (1024x1024, 1536x1024, 1024x1536) and the per-image estimate uses
gpt-image-1's published prices until ``usage`` tokens price the call. ``model_status``
asks ``GET /v1/models/{model}`` (its optional ``shutdown_date``, YYYY-MM-DD); a retired
model answers 404 ``model_not_found``: ``ModelRetiredError`` (provider disabled for the run,
one alert naming the replacement, fallback). The SDK client gets an httpx client with the
private-address guard (providers/netguard.py): it follows no redirect to an internal address.
"""

from __future__ import annotations

import base64
import time
from datetime import date
from typing import Annotated, Any, ClassVar

from pydantic import Field

from domain.model import GenerationRequest, GenerationResult
from domain.errors import InvalidOutputError, ProviderError, TransientProviderError
from providers.base import Provider, ProviderCheck, result_from_bytes
from providers.httperrors import error_for_status, parse_retry_after
from providers.lifecycle import ModelRetiredError, ModelStatus, retired_error
from providers.netguard import guard_for, guarded_sdk_client, unsafe_cause
from providers.spec import Mapped, ModelSpec, PriceTable, ProviderConfig, nearest_size

SIZES: dict[str, tuple[tuple[int, int], ...]] = {
    "gpt-image": ((1024, 1024), (1536, 1024), (1024, 1536)),
    "dall-e-3": ((1024, 1024), (1792, 1024), (1024, 1792)),
    "dall-e-2": ((256, 256), (512, 512), (1024, 1024)),
}


def _family(model: str) -> str:
    return "gpt-image" if model.startswith("gpt-image") else model if model in SIZES else "dall-e-3"


def api_size(model: str, width: int, height: int) -> str:
    """The model's allowed size nearest ``width`` x ``height`` (``"1536x1024"``)."""
    w, h = nearest_size(width, height, SIZES[_family(model)])
    return f"{w}x{h}"


def _spec(family: str) -> ModelSpec:
    return ModelSpec(sizes=SIZES[family], steps=None, guidance=None, negative_prompt=False)


class OpenAIConfig(ProviderConfig):
    """``providers.openai``: ``base_url``, ``model`` (gpt-image-2.6-flare, gpt-image-2.6-sunburst ...),
    ``quality_map`` (our tiers -> gpt-image quality names) and ``token_prices_usd`` (USD
    per 1M input text / output image tokens, priced against the reported ``usage``).
    Key: ``OPENAI_API_KEY``."""

    base_url: str = "https://api.openai.com/v1"
    model: str | None = "gpt-image-2.6-flare"
    quality_map: dict[str, str] = Field(default_factory=lambda: {"standard": "low", "hd": "medium", "ultra-hd": "high"})
    token_prices_usd: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=lambda: {"input": 5.0, "output": 40.0})


DEPRECATIONS_URL = "https://developers.openai.com/api/docs/deprecations"
REPLACEMENT = "gpt-image-2.6-flare"
_UNCONFIRMED = "named on the official deprecations page as a replacement; sizes and prices not confirmed"


def _lifecycle() -> dict[str, ModelStatus]:
    def entry(model: str, status: str, shutdown: date | None = None, note: str = "") -> ModelStatus:
        replacement = None if status == "active" else REPLACEMENT
        return ModelStatus(model, status, shutdown, replacement, DEPRECATIONS_URL, note)  # type: ignore[arg-type]

    return {
        "gpt-image-2.6-flare": entry("gpt-image-2.6-flare", "active", note=_UNCONFIRMED),
        "gpt-image-2.6-sunburst": entry("gpt-image-2.6-sunburst", "active", note=_UNCONFIRMED),
        "gpt-image-1.5": entry("gpt-image-1.5", "deprecated", date(2026, 12, 1)),
        "gpt-image-1-mini": entry("gpt-image-1-mini", "deprecated", date(2026, 12, 1)),
        "gpt-image-1": entry("gpt-image-1", "retired", note="shutdown date not confirmed on the official page"),
        "dall-e-3": entry("dall-e-3", "retired", date(2026, 5, 12), "date from third-party copies of the page"),
        "dall-e-2": entry("dall-e-2", "retired", date(2026, 5, 12), "date from third-party copies of the page"),
    }


#: gpt-image-1's published per-image prices by quality and size (USD): the estimate of
#: the gpt-image models whose own per-image prices are not confirmed (usage prices the call).
_GPT_IMAGE_PRICES = {
    "low/1024x1024": 0.011,
    "low/1024x1536": 0.016,
    "low/1536x1024": 0.016,
    "medium/1024x1024": 0.042,
    "medium/1024x1536": 0.063,
    "medium/1536x1024": 0.063,
    "high/1024x1024": 0.167,
    "high/1024x1536": 0.25,
    "high/1536x1024": 0.25,
}


class OpenAIProvider(Provider):
    """The gpt-image models on the OpenAI Images API (lifecycle: the module docstring)."""

    name: ClassVar[str] = "openai"
    display_name: ClassVar[str] = "OpenAI Images"
    Config = OpenAIConfig
    secret_env: ClassVar[dict[str, tuple[str, ...]]] = {"api_key": ("OPENAI_API_KEY",)}
    model_lifecycle: ClassVar[dict[str, ModelStatus]] = _lifecycle()
    models: ClassVar[tuple[str, ...]] = tuple(model_lifecycle)
    default_model: ClassVar[str] = REPLACEMENT
    #: USD per image by the API's quality name and size.
    price_table: ClassVar[PriceTable] = PriceTable(
        source_url="https://platform.openai.com/docs/pricing",
        checked="2026-11-29",
        note="gpt-image-1.5, gpt-image-1-mini and gpt-image-2.6-*: gpt-image-1's prices as an estimate (unconfirmed)",
        prices={
            "gpt-image-2.6-flare": _GPT_IMAGE_PRICES,
            "gpt-image-2.6-sunburst": _GPT_IMAGE_PRICES,
            "gpt-image-1.5": _GPT_IMAGE_PRICES,
            "gpt-image-1-mini": _GPT_IMAGE_PRICES,
            "dall-e-3": {
                "standard/1024x1024": 0.04,
                "standard/1024x1792": 0.08,
                "standard/1792x1024": 0.08,
                "hd/1024x1024": 0.08,
                "hd/1024x1792": 0.12,
                "hd/1792x1024": 0.12,
            },
            "dall-e-2": {"256x256": 0.016, "512x512": 0.018, "1024x1024": 0.02},
            "gpt-image-1": _GPT_IMAGE_PRICES,
        },
    )
    model_specs: ClassVar[dict[str, ModelSpec]] = {"gpt-image-1": _spec("gpt-image"), "dall-e-3": _spec("dall-e-3"), "dall-e-2": _spec("dall-e-2")}
    default_spec: ClassVar[ModelSpec] = _spec("gpt-image")

    config: OpenAIConfig

    def __init__(self, *, config: OpenAIConfig, secrets: Any, downloader: Any = None) -> None:
        super().__init__(config=config, secrets=secrets, downloader=downloader)
        from openai import OpenAI  # noqa: PLC0415 - the openai SDK: heavy import, only for that provider

        http_client = guarded_sdk_client(guard_for(self, config.base_url), timeout=config.timeout_s, follow_redirects=True)
        self._client = OpenAI(
            api_key=self.secret("api_key") or "missing", base_url=config.base_url.rstrip("/"), timeout=config.timeout_s, max_retries=0, http_client=http_client
        )

    def model_spec(self, model: str) -> ModelSpec:
        return self.model_specs.get(model, _spec(_family(model)))

    def price_key(self, request: GenerationRequest, mapped: Mapped) -> str:
        """``<tier>/<API quality>/<size>``: table entries are by API quality and size,
        configured overrides may use our tier names."""
        return f"{request.quality_tier}/{self.quality(request, self.model_of(request))}/{mapped.size_label}"

    def quality(self, request: GenerationRequest, model: str) -> str:
        """The API's quality name for our tier (dall-e-3: standard / hd)."""
        tier = request.quality_tier
        if model == "dall-e-3":
            return "standard" if tier == "standard" else "hd"
        if model == "dall-e-2":
            return "standard"
        return self.config.quality_map.get(tier, "auto")

    def generate(self, request: GenerationRequest) -> GenerationResult:
        model = request.model or self.model
        started = time.monotonic()
        mapped = self.map(request)
        kwargs: dict[str, Any] = {
            "prompt": request.prompt,
            "model": model,
            "n": 1,
            "size": mapped.size_label,
            "quality": self.quality(request, model),
        }
        if model.startswith("dall-e"):
            kwargs["response_format"] = "b64_json"
        else:
            kwargs["output_format"] = request.output_format if request.output_format in ("png", "jpeg", "webp") else "png"
        try:
            answer = self._client.images.generate(**kwargs)
        except Exception as exc:
            raise self.translate(exc, model) from exc
        if not answer.data:
            raise InvalidOutputError("invalid answer: no image in data[]", provider=self.name, model=model)
        item = answer.data[0]
        if item.b64_json:
            try:
                data = base64.b64decode(item.b64_json, validate=True)
            except ValueError as exc:
                raise InvalidOutputError("invalid answer: b64_json is not base64", provider=self.name, model=model) from exc
        elif item.url:
            data = self.downloader.fetch(item.url, provider=self.name, model=model)
        else:
            raise InvalidOutputError("invalid answer: neither b64_json nor url", provider=self.name, model=model)
        usage = getattr(answer, "usage", None)
        cost = self.estimate_cost(request)
        if usage is not None and getattr(usage, "output_tokens", None) is not None and not self.config.cost_usd:
            prices = self.config.token_prices_usd
            cost = round((usage.input_tokens or 0) * prices.get("input", 0.0) / 1e6 + usage.output_tokens * prices.get("output", 0.0) / 1e6, 6)
        return result_from_bytes(
            data,
            provider=self,
            request=request,
            model=model,
            seed=None,
            cost_usd=cost,
            started=started,
            mapped=mapped,
            metadata={
                "size": kwargs["size"],
                "quality": kwargs["quality"],
                "revised_prompt": item.revised_prompt,
                "usage": usage.model_dump() if usage is not None else None,
            },
        )

    def translate(self, exc: Exception, model: str) -> ProviderError:
        """The one place where ``openai`` exceptions become ProviderErrors."""
        import openai  # noqa: PLC0415 - the openai SDK: heavy import, only for that provider

        if isinstance(exc, ProviderError):
            return exc
        unsafe = unsafe_cause(exc)
        if unsafe is not None:
            unsafe.model = model
            return unsafe
        if isinstance(exc, openai.APITimeoutError):
            return TransientProviderError(f"timeout: {exc}", provider=self.name, model=model)
        if isinstance(exc, openai.APIConnectionError):
            return TransientProviderError(f"request failed: {exc}", provider=self.name, model=model)
        if isinstance(exc, openai.APIStatusError):
            body = exc.body if isinstance(exc.body, dict) else {}
            error = body.get("error", body) if isinstance(body.get("error", body), dict) else {}
            code = str(error.get("code") or getattr(exc, "code", None) or "").lower() or None
            message = " ".join(str(error.get("message") or exc.message).split())[:300]
            retry_after = parse_retry_after(exc.response.headers.get("retry-after"))
            if code == "model_not_found":
                return retired_error(self, model, message, exc.status_code)
            return error_for_status(exc.status_code, message, provider=self.name, model=model, retry_after=retry_after, error_code=code)
        if isinstance(exc, openai.OpenAIError):
            return InvalidOutputError(f"invalid answer: {type(exc).__name__}: {exc}", provider=self.name, model=model)
        return TransientProviderError(f"{type(exc).__name__}: {exc}", provider=self.name, model=model)

    def model_status(self, model: str) -> ModelStatus:
        """``GET /v1/models/{model}`` (free): ``shutdown_date`` (YYYY-MM-DD) makes it
        deprecated until that date; 404 ``model_not_found`` retired; otherwise active. The
        replacement and source come from ``model_lifecycle``. Raises the classified
        ProviderError when the lookup itself fails."""
        known = self.model_lifecycle.get(model)
        replacement, source = (known.replacement, known.source) if known else (None, DEPRECATIONS_URL)
        try:
            answer = self._client.models.retrieve(model)
        except Exception as exc:
            error = self.translate(exc, model)
            if isinstance(error, ModelRetiredError):
                return ModelStatus(model, "retired", known.shutdown if known else None, replacement, source)
            raise error from exc
        shutdown = getattr(answer, "shutdown_date", None) or (answer.model_extra or {}).get("shutdown_date")
        if shutdown:
            return ModelStatus(model, "deprecated", date.fromisoformat(str(shutdown)), replacement or REPLACEMENT, source)
        return ModelStatus(model, "active", None, None, source)

    def check(self) -> ProviderCheck:
        """``GET /v1/models`` (free): key valid, image models visible."""
        missing = self.missing_secrets()
        if missing:
            return ProviderCheck(False, f"missing {missing[0]} in the environment or .env")
        try:
            ids = [m.id for m in self._client.models.list()]
        except Exception as exc:
            return ProviderCheck(False, self.scrub(str(self.translate(exc, self.model))))
        visible = [m for m in self.models if m in ids]
        return ProviderCheck(True, f"key accepted; image models: {', '.join(visible) or 'none listed'}")

    def close(self) -> None:
        self._client.close()
