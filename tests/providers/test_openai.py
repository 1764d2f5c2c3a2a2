"""OpenAI Images: error codes over statuses, the price table (every size x quality of
dall-e-3 and gpt-image-1), sizes and URL answers (server: tests/providers/servers/openai.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from config import secrets as cfg
from domain.model import GenerationRequest, ImageFormat, Quality
from domain.errors import AuthBillingProviderError, ContentFilteredError, TransientProviderError, UnsafeURLError
from providers.chain import RetryConfig
from providers.chain import ProviderChain
from providers.download import SafeDownloader
from providers.openai import OpenAIConfig, OpenAIProvider, api_size
from providers.placeholder import PlaceholderConfig, PlaceholderProvider
from tests.providers.servers.openai import KEY, OpenAIServer


def secrets(key: str = KEY) -> cfg.Secrets:
    return cfg.Secrets(_env_file=None, provider_secrets={"OPENAI_API_KEY": key})  # type: ignore[call-arg]


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as running:
        yield running  # type: ignore[misc]


def provider_for(server: OpenAIServer, model: str = "gpt-image-1", key: str = KEY) -> OpenAIProvider:
    return OpenAIProvider(
        config=OpenAIConfig(base_url=f"{server.url}/v1", model=model, timeout_s=10), secrets=secrets(key), downloader=SafeDownloader(test_base_url=server.url)
    )


REQUEST = GenerationRequest(prompt="a blue vase", width=1024, height=1024, seed=1)


def test_insufficient_quota_is_billing_not_a_rate_limit(server: OpenAIServer) -> None:
    """429 with code insufficient_quota: not retried, the provider disabled for the run, an alert."""
    server.default = "insufficient_quota"
    provider = provider_for(server)
    with pytest.raises(AuthBillingProviderError) as caught:
        provider.generate(REQUEST)
    assert caught.value.status_code == 429 and "insufficient_quota" in str(caught.value)
    disabled: list[tuple[str, str]] = []
    sleeps: list[float] = []
    chain = ProviderChain(
        [provider, PlaceholderProvider(config=PlaceholderConfig(), secrets=secrets())],
        retry=RetryConfig(max_retries=3, backoff_s=0.0),
        sleep=sleeps.append,
        on_disable=lambda name, message: disabled.append((name, message)),
    )
    server.reset("insufficient_quota")
    for _ in range(2):
        assert chain.generate(REQUEST).provider == "placeholder"
    assert len(server.requests) == 1 and sleeps == []  # no retry, never called again
    assert list(chain.disabled) == ["openai"] and disabled[0][0] == "openai" and KEY not in disabled[0][1]


def test_billing_hard_limit_is_billing(server: OpenAIServer) -> None:
    server.default = "billing_hard_limit"
    with pytest.raises(AuthBillingProviderError, match="billing_hard_limit_reached") as caught:
        provider_for(server).generate(REQUEST)
    assert caught.value.status_code == 400


def test_content_policy_violation_is_filtered(server: OpenAIServer) -> None:
    server.default = "content_policy"
    with pytest.raises(ContentFilteredError, match="content_policy_violation") as caught:
        provider_for(server, "dall-e-3").generate(REQUEST)
    assert caught.value.status_code == 400 and caught.value.error_class == "content_filtered"


def test_moderation_blocked_is_filtered(server: OpenAIServer) -> None:
    server.default = "moderation_blocked"
    with pytest.raises(ContentFilteredError, match="moderation_blocked"):
        provider_for(server).generate(REQUEST)


def test_organization_must_be_verified_is_auth(server: OpenAIServer) -> None:
    server.default = "organization_must_be_verified"
    with pytest.raises(AuthBillingProviderError, match="organization_must_be_verified"):
        provider_for(server).generate(REQUEST)


def test_rate_limit_exceeded_stays_transient_with_retry_after(server: OpenAIServer) -> None:
    server.default = "429"
    with pytest.raises(TransientProviderError) as caught:
        provider_for(server).generate(REQUEST)
    assert caught.value.retry_after == 7.0 and "rate_limit_exceeded" in str(caught.value)


def test_wrong_key_answers_the_real_401(server: OpenAIServer) -> None:
    with pytest.raises(AuthBillingProviderError, match="invalid_api_key"):
        provider_for(server, key="sk-wrong-key").generate(REQUEST)


#: https://platform.openai.com/docs/pricing (image generation, per image).
DALL_E_3 = {
    ("standard", "1024x1024"): 0.04,
    ("standard", "1024x1792"): 0.08,
    ("standard", "1792x1024"): 0.08,
    ("hd", "1024x1024"): 0.08,
    ("hd", "1024x1792"): 0.12,
    ("hd", "1792x1024"): 0.12,
}
GPT_IMAGE_1 = {
    ("low", "1024x1024"): 0.011,
    ("low", "1024x1536"): 0.016,
    ("low", "1536x1024"): 0.016,
    ("medium", "1024x1024"): 0.042,
    ("medium", "1024x1536"): 0.063,
    ("medium", "1536x1024"): 0.063,
    ("high", "1024x1024"): 0.167,
    ("high", "1024x1536"): 0.25,
    ("high", "1536x1024"): 0.25,
}


@pytest.mark.parametrize("quality", list(Quality))
@pytest.mark.parametrize("fmt", list(ImageFormat))
def test_price_table_every_size_and_quality(fmt: ImageFormat, quality: Quality) -> None:
    """Each of our formats x tiers lands on the published price of the size and quality sent."""
    width, height = fmt.size
    req = GenerationRequest(prompt="x", width=width, height=height, quality=quality.value)
    dalle = OpenAIProvider(config=OpenAIConfig(model="dall-e-3"), secrets=secrets())
    dalle_quality = "standard" if quality is Quality.standard else "hd"
    assert dalle.estimate_cost(req) == DALL_E_3[(dalle_quality, api_size("dall-e-3", width, height))]
    gpt = OpenAIProvider(config=OpenAIConfig(model="gpt-image-1"), secrets=secrets())
    gpt_quality = {"standard": "low", "hd": "medium", "ultra-hd": "high"}[quality.value]
    assert gpt.estimate_cost(req) == GPT_IMAGE_1[(gpt_quality, api_size("gpt-image-1", width, height))]


def test_price_table_source_and_entries() -> None:
    table = OpenAIProvider.price_table
    assert table.source_url == "https://platform.openai.com/docs/pricing"
    for (quality, size), price in DALL_E_3.items():
        assert table.lookup("dall-e-3", f"{quality}/{size}") == price
    for (quality, size), price in GPT_IMAGE_1.items():
        assert table.lookup("gpt-image-1", f"{quality}/{size}") == price


def test_configured_prices_override_the_table() -> None:
    provider = OpenAIProvider(config=OpenAIConfig(prices_usd={"gpt-image-2.6-flare": {"standard": 0.02, "default": 0.05}}), secrets=secrets())
    assert provider.estimate_cost(GenerationRequest(prompt="x")) == 0.02
    assert provider.estimate_cost(GenerationRequest(prompt="x", num_inference_steps=70)) == 0.05
    assert OpenAIProvider(config=OpenAIConfig(cost_usd=0.5), secrets=secrets()).estimate_cost(GenerationRequest(prompt="x")) == 0.5


def test_sizes_url_answers_and_the_downloader(server: OpenAIServer) -> None:
    assert api_size("gpt-image-1", 1792, 1024) == "1536x1024" and api_size("dall-e-3", 1024, 1792) == "1024x1792"
    server.answer_urls = True
    hd = GenerationRequest(prompt="a vase", width=1792, height=1024, num_inference_steps=50)
    result = provider_for(server, "dall-e-3").generate(hd)
    sent = server.requests[0].json()
    assert sent["quality"] == "hd" and sent["size"] == "1792x1024" and result.cost_usd == pytest.approx(0.12)
    assert "steps" not in str(sent) and any(r.path.startswith("/files/") for r in server.requests)
    strict = OpenAIProvider(
        config=OpenAIConfig(base_url=f"{server.url}/v1", model="dall-e-3", timeout_s=5), secrets=secrets()
    )  # no test base: the loopback URL is refused
    with pytest.raises(UnsafeURLError):
        strict.generate(hd)
