"""Hugging Face Inference: 503 "model loading" with estimated_time, FLUX schnell mapping,
the price table (server: tests/providers/servers/huggingface.py)."""

from __future__ import annotations

import pytest

from config import secrets as cfg
from domain.model import GenerationRequest
from domain.errors import TransientProviderError
from providers.huggingface import HuggingFaceConfig, HuggingFaceProvider
from tests.providers.servers.huggingface import TOKEN, HuggingFaceServer


def provider_for(server: HuggingFaceServer, model: str = "stabilityai/stable-diffusion-xl-base-1.0") -> HuggingFaceProvider:
    return HuggingFaceProvider(
        config=HuggingFaceConfig(endpoint_url=f"{server.url}/models/{model}", model=model, timeout_s=10),
        secrets=cfg.Secrets(_env_file=None, provider_secrets={"HF_TOKEN": TOKEN}),
    )  # type: ignore[call-arg]


REQUEST = GenerationRequest(prompt="a fox in snow", width=1024, height=1792, num_inference_steps=70, guidance_scale=9.5, seed=3)


def test_503_model_loading_is_transient_with_estimated_time() -> None:
    with HuggingFaceServer("503") as server:
        with pytest.raises(TransientProviderError) as caught:
            provider_for(server).generate(REQUEST)
    assert caught.value.status_code == 503 and caught.value.retry_after == 20.0
    assert "currently loading" in str(caught.value)


def test_flux_schnell_gets_its_steps_and_no_guidance() -> None:
    with HuggingFaceServer() as server:
        result = provider_for(server, "black-forest-labs/FLUX.1-schnell").generate(REQUEST)
        parameters = server.requests[0].json()["parameters"]
    assert parameters["num_inference_steps"] == 4 and "guidance_scale" not in parameters
    assert "negative_prompt" not in parameters and parameters["width"] % 16 == 0
    assert (parameters["width"], parameters["height"]) == (816, 1440)
    assert result.mapped_size == "816x1440" and result.height > result.width


def test_hf_token_alias_and_price_table() -> None:
    table = HuggingFaceProvider.price_table
    assert table.source_url == "https://huggingface.co/docs/inference-providers/pricing"
    provider = HuggingFaceProvider(
        config=HuggingFaceConfig(),
        secrets=cfg.Secrets(  # type: ignore[call-arg]
            _env_file=None, provider_secrets={"HF_TOKEN": TOKEN}
        ),
    )
    assert provider.secret("token") == TOKEN and provider.missing_secrets() == []
    assert provider.estimate_cost(REQUEST) == 0.02
    assert provider.estimate_cost(GenerationRequest(prompt="x", model="black-forest-labs/FLUX.1-dev")) == 0.03
