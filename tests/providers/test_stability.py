"""Stability AI: aspect-ratio mapping, SD3.5 fields, finish_reason and moderation, credits
price table (server: tests/providers/servers/stability.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from config import secrets as cfg
from domain.model import GenerationRequest
from domain.errors import AuthBillingProviderError, ContentFilteredError, RejectedProviderError
from providers.stability import CREDITS, StabilityConfig, StabilityProvider, nearest_aspect_ratio
from tests.providers.servers.stability import KEY, StabilityServer


def secrets() -> cfg.Secrets:
    return cfg.Secrets(_env_file=None, provider_secrets={"STABILITY_API_KEY": KEY})  # type: ignore[call-arg]


@pytest.fixture
def server() -> Iterator[StabilityServer]:
    with StabilityServer() as running:
        yield running  # type: ignore[misc]


def provider_for(server: StabilityServer, model: str = "ultra") -> StabilityProvider:
    return StabilityProvider(config=StabilityConfig(base_url=server.url, model=model, timeout_s=10), secrets=secrets())


REQUEST = GenerationRequest(prompt="a dune at noon", width=1792, height=1024, seed=77, num_inference_steps=50, guidance_scale=8.5)


@pytest.mark.parametrize(
    ("size", "ratio"),
    [((1024, 1024), "1:1"), ((1792, 1024), "16:9"), ((1024, 1792), "9:16"), ((1200, 800), "3:2"), ((800, 1000), "4:5"), ((2100, 900), "21:9")],
)
def test_nearest_aspect_ratio(size: tuple[int, int], ratio: str) -> None:
    assert nearest_aspect_ratio(*size) == ratio


def test_sd3_sends_model_and_clamped_cfg_and_no_steps(server: StabilityServer) -> None:
    result = provider_for(server, "sd3.5-large").generate(REQUEST)
    form = server.requests[0].form()
    assert server.requests[0].path == "/v2beta/stable-image/generate/sd3"
    assert form["model"] == "sd3.5-large" and form["aspect_ratio"] == "16:9" and form["cfg_scale"] == "8.5"
    assert form["mode"] == "text-to-image" and "steps" not in form
    assert result.cost_usd == pytest.approx(0.065) and result.seed == 77 and result.width > result.height
    assert result.mapped_size == "16:9" and any("num_inference_steps 50 dropped" in n for n in result.metadata["mapping_notes"])


def test_finish_reason_content_filtered_is_a_rejection(server: StabilityServer) -> None:
    server.script.append("filtered")
    with pytest.raises(ContentFilteredError, match="CONTENT_FILTERED"):
        provider_for(server).generate(REQUEST)


def test_403_content_moderation_is_filtered(server: StabilityServer) -> None:
    server.script.append("403")
    with pytest.raises(ContentFilteredError, match="content_moderation") as caught:
        provider_for(server).generate(REQUEST)
    assert caught.value.status_code == 403


def test_402_payment_required_is_billing(server: StabilityServer) -> None:
    server.script.append("402")
    with pytest.raises(AuthBillingProviderError, match="payment_required"):
        provider_for(server).generate(REQUEST)


def test_the_server_refuses_what_the_api_refuses(server: StabilityServer) -> None:
    import httpx

    answer = httpx.post(
        f"{server.url}/v2beta/stable-image/generate/core", json={"prompt": "x"}, headers={"authorization": f"Bearer {KEY}", "accept": "image/*"}
    )
    assert answer.status_code == 400 and answer.json()["name"] == "bad_request"
    unauthorised = httpx.post(f"{server.url}/v2beta/stable-image/generate/core", files={"prompt": (None, "x")})
    assert unauthorised.status_code == 401 and unauthorised.json()["name"] == "unauthorized"
    provider = provider_for(server, "core")
    server.reset()
    with pytest.raises(RejectedProviderError):  # an unknown model name reaches a route that does not exist
        StabilityProvider(config=StabilityConfig(base_url=server.url, model="sdxl-0.9", timeout_s=10), secrets=secrets()).generate(REQUEST)
    provider.close()


def test_price_table_in_credits() -> None:
    """https://platform.stability.ai/pricing: credits per image, 1 credit = USD 0.01."""
    assert CREDITS == {"ultra": 8, "core": 3, "sd3.5-large": 6.5, "sd3.5-large-turbo": 4, "sd3.5-medium": 3.5, "sd3.5-flash": 2.5}
    table = StabilityProvider.price_table
    assert table.source_url == "https://platform.stability.ai/pricing"
    for model, credits in CREDITS.items():
        provider = StabilityProvider(config=StabilityConfig(model=model), secrets=secrets())
        assert provider.estimate_cost(REQUEST) == pytest.approx(credits * 0.01)
