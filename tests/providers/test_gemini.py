"""Google Gemini image models: request shape, safety blocks and their billing, finish without
an image, 429 retryDelay, 400 classification, image editing with a reference, key names and
lifecycle (server: tests/providers/servers/gemini.py)."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Iterator
from datetime import date

import httpx
import pytest

from config import secrets as cfg
from domain.errors import (
    AuthBillingProviderError,
    ContentFilteredError,
    InvalidOutputError,
    RejectedProviderError,
    TransientProviderError,
)
from domain.model import GenerationRequest
from providers.gemini import GeminiConfig, GeminiProvider, retry_delay
from providers.lifecycle import ModelRetiredError, doctor_findings
from tests.providers.servers.common import photo
from tests.providers.servers.gemini import IMAGE_TOKENS, KEY, PROMPT_TOKENS, STANDARD_COST, GeminiServer


def secrets(variable: str = "GEMINI_API_KEY", value: str = KEY) -> cfg.Secrets:
    return cfg.Secrets(_env_file=None, provider_secrets={variable: value})  # type: ignore[dict-item]


@pytest.fixture
def server() -> Iterator[GeminiServer]:
    with GeminiServer() as running:
        yield running  # type: ignore[misc]


def provider_for(server: GeminiServer, model: str = "gemini-2.5-flash-image", **kwargs: str) -> GeminiProvider:
    return GeminiProvider(config=GeminiConfig(base_url=server.url, model=model, timeout_s=10), secrets=secrets(**kwargs))


REQUEST = GenerationRequest(prompt="a dune at noon", width=1792, height=1024, seed=77, num_inference_steps=50, guidance_scale=8.5)


def test_success_sends_image_modality_and_prices_the_usage(server: GeminiServer) -> None:
    result = provider_for(server).generate(REQUEST)
    sent = server.requests[0]
    assert sent.path == "/v1beta/models/gemini-2.5-flash-image:generateContent"
    assert sent.headers["x-goog-api-key"] == KEY and "authorization" not in sent.headers
    body = sent.json()
    assert body["generationConfig"] == {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": {"aspectRatio": "16:9"}, "seed": 77}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "a dune at noon"}]}]
    assert (result.width, result.height) == (1344, 768) and result.mapped_size == "16:9"
    assert result.cost_usd == pytest.approx(STANDARD_COST)  # 12 x 0.30 + 1290 x 30 + 8 x 2.50 per 1M tokens
    assert result.metadata["usage"]["candidatesTokenCount"] == IMAGE_TOKENS + 8
    assert result.metadata["text"] == "Here is the image you asked for."
    assert any("num_inference_steps 50 dropped" in note for note in result.metadata["mapping_notes"])


def test_google_api_key_is_accepted_too(server: GeminiServer) -> None:
    assert provider_for(server, variable="GOOGLE_API_KEY").generate(REQUEST).provider == "gemini"


def test_blocked_prompt_is_rejected_and_billed_for_input_only(server: GeminiServer) -> None:
    server.script.append("filtered")
    with pytest.raises(ContentFilteredError, match="blockReason PROHIBITED_CONTENT") as caught:
        provider_for(server).generate(REQUEST)
    assert caught.value.error_class == "content_filtered"
    assert caught.value.billed_usd == pytest.approx(PROMPT_TOKENS * 0.30 / 1e6)  # no output generated, none billed


def test_image_safety_finish_is_rejected(server: GeminiServer) -> None:
    server.script.append("image_safety")
    with pytest.raises(ContentFilteredError, match="finishReason IMAGE_SAFETY"):
        provider_for(server).generate(REQUEST)


def test_finish_without_an_image_is_invalid_output(server: GeminiServer) -> None:
    server.script.append("text_only")
    with pytest.raises(InvalidOutputError, match="STOP without an image: I can describe") as caught:
        provider_for(server).generate(REQUEST)
    assert caught.value.billed_usd == pytest.approx((PROMPT_TOKENS * 0.30 + 11 * 2.50) / 1e6)


def test_429_resource_exhausted_waits_the_retry_delay(server: GeminiServer) -> None:
    server.script.append("429")
    with pytest.raises(TransientProviderError) as caught:
        provider_for(server).generate(REQUEST)
    error = caught.value
    assert error.status_code == 429 and error.retry_after == pytest.approx(7.0)  # RetryInfo, no Retry-After header
    assert "resource_exhausted" in str(error) and error.billed_usd == 0.0


def test_retry_delay_falls_back_to_the_header() -> None:
    assert retry_delay({"error": {"details": [{"retryDelay": "1.5s"}]}}, "9") == pytest.approx(1.5)
    assert retry_delay({"error": {"details": [{"@type": "QuotaFailure"}]}}, "9") == pytest.approx(9.0)
    assert retry_delay({}, None) is None


def test_400_invalid_argument_is_rejected_and_a_wrong_key_is_auth(server: GeminiServer) -> None:
    server.script.append("400")
    with pytest.raises(RejectedProviderError, match="invalid_argument") as caught:
        provider_for(server).generate(REQUEST)
    assert caught.value.status_code == 400 and caught.value.error_class == "rejected"
    with pytest.raises(AuthBillingProviderError, match="API_KEY_INVALID") as wrong:
        provider_for(server, value="AIzaSy-wrong").generate(REQUEST)
    assert wrong.value.status_code == 400 and "AIzaSy-wrong" not in str(wrong.value)


def test_the_server_refuses_what_the_api_refuses(server: GeminiServer) -> None:
    url = f"{server.url}/v1beta/models/gemini-2.5-flash-image:generateContent"
    no_key = httpx.post(url, json={"contents": [{"parts": [{"text": "x"}]}]})
    assert no_key.status_code == 403 and no_key.json()["error"]["status"] == "PERMISSION_DENIED"
    unknown = httpx.post(
        url,
        headers={"x-goog-api-key": KEY},
        json={"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"responseModalities": ["IMAGE"], "size": "1k"}},
    )
    assert unknown.status_code == 400 and 'Unknown name "size"' in unknown.json()["error"]["message"]
    text_only = httpx.post(
        url, headers={"x-goog-api-key": KEY}, json={"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"responseModalities": ["TEXT"]}}
    )
    assert text_only.status_code == 400 and text_only.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert not server.script  # refusals use up no mode


def test_image_editing_sends_the_reference_as_inline_data(server: GeminiServer) -> None:
    reference = photo(640, 480, "chelsea", "JPEG")
    request = dataclasses.replace(REQUEST, prompt="make the cat wear a hat", width=1024, height=768, init_image=reference)
    result = provider_for(server).generate(request)
    parts = server.requests[0].json()["contents"][0]["parts"]
    assert parts[0] == {"text": "make the cat wear a hat"}
    assert parts[1]["inlineData"]["mimeType"] == "image/jpeg"
    assert base64.b64decode(parts[1]["inlineData"]["data"]) == reference
    assert result.mapped_size == "4:3" and (result.width, result.height) == (1184, 864)


def test_a_model_that_is_gone_is_retired_with_its_replacement(server: GeminiServer) -> None:
    with pytest.raises(ModelRetiredError, match="documented replacement: gemini-2.5-flash-image") as caught:
        provider_for(server, model="gemini-2.5-flash-image-preview").generate(REQUEST)
    assert caught.value.status_code == 404 and caught.value.billed_usd == 0.0


def test_lifecycle_imagen_shut_down_and_doctor_warns(server: GeminiServer) -> None:
    imagen = GeminiProvider.model_lifecycle["imagen-4.0-generate-001"]
    assert imagen.shutdown == date(2026, 8, 17) and imagen.replacement == "gemini-2.5-flash-image"
    assert imagen.source == "https://ai.google.dev/gemini-api/docs/imagen"
    assert imagen.effective(date(2026, 12, 5)) == "retired"
    provider = provider_for(server, model="imagen-4.0-generate-001")
    status = provider.model_status("imagen-4.0-generate-001")  # GET /v1beta/models/... answers 404
    assert status.status == "retired" and status.replacement == "gemini-2.5-flash-image"
    [(level, line)] = doctor_findings(provider, date(2026, 12, 5))
    assert level == "warn" and "imagen-4.0-generate-001 is retired since 2026-08-17" in line
    assert provider_for(server).model_status("gemini-2.5-flash-image").status == "active"
    assert provider_for(server).check().ok


def test_price_table_cites_the_pricing_page() -> None:
    table = GeminiProvider.price_table
    assert table.source_url == "https://ai.google.dev/gemini-api/docs/pricing"
    provider = GeminiProvider(config=GeminiConfig(), secrets=secrets())
    assert provider.estimate_cost(REQUEST) == pytest.approx(0.039)  # 1290 tokens x USD 30 per 1M
    assert provider.usage_cost(None) is None
