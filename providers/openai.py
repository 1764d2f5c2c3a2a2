"""OpenAI Images API through the official ``openai`` client (contract 6 of
../shared/contracts/providers.md; https://platform.openai.com/docs/api-reference/images).

``POST {base}/v1/images/generations`` with ``prompt, model, n=1, size, quality`` and,
for DALL-E, ``response_format=b64_json``. The size is the model's allowed size nearest
the requested aspect (gpt-image: 1024x1024, 1536x1024, 1024x1536; dall-e-3: 1024x1024,
1792x1024, 1024x1792). A 400 ``moderation_blocked`` / ``content_policy_violation`` is a
content-filter rejection; 403 ``organization_must_be_verified`` is auth/billing.
Cost: the reported token ``usage`` priced with ``token_prices_usd`` (gpt-image),
else the price table (1024^2: dall-e-3 USD 0.04; gpt-image-1 low / medium / high
0.011 / 0.042 / 0.167). Key: ``OPENAI_API_KEY``. The client's own retries are off:
the chain retries.
"""

from __future__ import annotations

import base64
import math
import time
from typing import Any, ClassVar

from core.domain import GenerationRequest, GenerationResult
from core.errors import ContentFilteredError, InvalidOutputError, ProviderError, TransientProviderError
from core.settings import OpenAIConfig, Secrets
from providers.base import Provider, ProviderCheck, error_for_status, parse_retry_after, result_from_bytes

SIZES = {
    "gpt-image": ((1024, 1024), (1536, 1024), (1024, 1536)),
    "dall-e-3": ((1024, 1024), (1792, 1024), (1024, 1792)),
    "dall-e-2": ((256, 256), (512, 512), (1024, 1024)),
}
FILTER_CODES = ("moderation_blocked", "content_policy_violation")


def api_size(model: str, width: int, height: int) -> str:
    """The model's allowed size whose aspect ratio is nearest ``width`` / ``height``."""
    family = "gpt-image" if model.startswith("gpt-image") else model if model in SIZES else "dall-e-3"
    target = math.log(width / height)
    w, h = min(SIZES[family], key=lambda s: (abs(math.log(s[0] / s[1]) - target), -s[0] * s[1]))
    return f"{w}x{h}"


class OpenAIProvider(Provider):
    """gpt-image-1 and dall-e-3 on the OpenAI Images API."""

    name: ClassVar[str] = "openai"
    display_name: ClassVar[str] = "OpenAI Images"
    models: ClassVar[tuple[str, ...]] = ("gpt-image-1", "dall-e-3")
    default_model: ClassVar[str] = "gpt-image-1"
    prices_usd: ClassVar[dict[str, float]] = {"dall-e-3": 0.04, "gpt-image-1": 0.042}
    secret_settings: ClassVar[tuple[str, ...]] = ("openai_api_key",)

    config: OpenAIConfig

    def __init__(self, *, config: OpenAIConfig, secrets: Secrets, downloader: Any = None) -> None:
        super().__init__(config=config, secrets=secrets, downloader=downloader)
        from openai import OpenAI

        self._client = OpenAI(api_key=self.secret("openai_api_key") or "missing", base_url=config.base_url.rstrip("/"),
                              timeout=config.timeout_s, max_retries=0)

    def quality(self, request: GenerationRequest, model: str) -> str:
        """The API's quality name for our tier (dall-e-3: standard / hd)."""
        tier = request.quality_tier
        if model == "dall-e-3":
            return "standard" if tier == "standard" else "hd"
        return self.config.quality_map.get(tier, "auto")

    def generate(self, request: GenerationRequest) -> GenerationResult:
        model = request.model or self.model
        started = time.monotonic()
        kwargs: dict[str, Any] = {
            "prompt": request.prompt,
            "model": model,
            "n": 1,
            "size": api_size(model, request.width, request.height),
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
        if usage is not None and getattr(usage, "output_tokens", None) is not None:
            prices = self.config.token_prices_usd
            cost = round((usage.input_tokens or 0) * prices.get("input", 0.0) / 1e6
                         + usage.output_tokens * prices.get("output", 0.0) / 1e6, 6)
        return result_from_bytes(
            data, provider=self, request=request, model=model, seed=None, cost_usd=cost, started=started,
            metadata={"size": kwargs["size"], "quality": kwargs["quality"], "revised_prompt": item.revised_prompt,
                      "usage": usage.model_dump() if usage is not None else None},
        )

    def translate(self, exc: Exception, model: str) -> ProviderError:
        """The one place where ``openai`` exceptions become ProviderErrors."""
        import openai

        if isinstance(exc, ProviderError):
            return exc
        if isinstance(exc, openai.APITimeoutError):
            return TransientProviderError(f"timeout: {exc}", provider=self.name, model=model)
        if isinstance(exc, openai.APIConnectionError):
            return TransientProviderError(f"request failed: {exc}", provider=self.name, model=model)
        if isinstance(exc, openai.APIStatusError):
            body = exc.body if isinstance(exc.body, dict) else {}
            error = body.get("error", body) if isinstance(body.get("error", body), dict) else {}
            code = str(error.get("code") or "")
            message = " ".join(str(error.get("message") or exc.message).split())[:300]
            if code in FILTER_CODES:
                return ContentFilteredError(f"content filtered: {code}: {message}", provider=self.name, model=model,
                                            status_code=exc.status_code)
            retry_after = parse_retry_after(exc.response.headers.get("retry-after"))
            return error_for_status(exc.status_code, f"{code + ': ' if code else ''}{message}", provider=self.name,
                                    model=model, retry_after=retry_after)
        if isinstance(exc, openai.OpenAIError):
            return InvalidOutputError(f"invalid answer: {type(exc).__name__}: {exc}", provider=self.name, model=model)
        return TransientProviderError(f"{type(exc).__name__}: {exc}", provider=self.name, model=model)

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
