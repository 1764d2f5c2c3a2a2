"""fal.ai: queue polling and cancel, step limits per model, per-megapixel prices
(server: tests/providers/servers/fal.py)."""

from __future__ import annotations

import pytest

from config import secrets as cfg
from domain.model import GenerationRequest, ImageFormat
from domain.errors import ContentFilteredError, TransientProviderError
from providers.download import SafeDownloader
from providers.fal import FalConfig, FalProvider
from tests.providers.servers.fal import KEY, FalServer


def provider_for(server: FalServer, **settings: object) -> FalProvider:
    config = FalConfig(**{"queue_url": server.url, "poll_interval_s": 0.02, "timeout_s": 5, **settings})
    return FalProvider(
        config=config,
        secrets=cfg.Secrets(_env_file=None, provider_secrets={"FAL_KEY": KEY}),  # type: ignore[call-arg]
        downloader=SafeDownloader(test_base_url=server.url),
    )


def test_queue_polling_and_cancel() -> None:
    with FalServer() as server:
        server.in_queue_polls = 2
        result = provider_for(server).generate(GenerationRequest(prompt="a fox", width=1024, height=768, seed=4))
        assert result.seed == 4 and result.cost_usd == pytest.approx(0.003 * 1024 * 768 / 1e6, abs=1e-6)
        assert len([r for r in server.requests if r.path.endswith("/status")]) == 3  # IN_QUEUE, IN_QUEUE, COMPLETED
        server.reset()
        server.in_queue_polls = 10_000
        with pytest.raises(TransientProviderError, match="cancelled"):
            provider_for(server, poll_interval_s=0.05, timeout_s=0.4).generate(GenerationRequest(prompt="a fox", width=512, height=512))
        assert len(server.cancelled) == 1


def test_dev_takes_guidance_and_50_steps_schnell_neither() -> None:
    with FalServer() as server:
        request = GenerationRequest(prompt="a fox", width=1024, height=1792, num_inference_steps=70, guidance_scale=9.5)
        provider_for(server, model="fal-ai/flux/dev").generate(request)
        provider_for(server).generate(request)
        dev, schnell = (r.json() for r in server.requests if r.method == "POST")
    assert dev["num_inference_steps"] == 50 and dev["guidance_scale"] == 9.5
    assert schnell["num_inference_steps"] == 12 and "guidance_scale" not in schnell
    assert dev["image_size"] == {"width": 1024, "height": 1792}


def test_nsfw_flag_is_filtered() -> None:
    with FalServer("filtered") as server:
        with pytest.raises(ContentFilteredError, match="has_nsfw_concepts"):
            provider_for(server).generate(GenerationRequest(prompt="a fox", width=512, height=512))


@pytest.mark.parametrize("fmt", list(ImageFormat))
def test_price_table_per_megapixel(fmt: ImageFormat) -> None:
    """https://fal.ai/pricing: FLUX schnell USD 0.003, dev 0.025 per output megapixel."""
    table = FalProvider.price_table
    assert table.unit == "megapixel" and table.source_url == "https://fal.ai/pricing"
    width, height = fmt.size
    request = GenerationRequest(prompt="x", width=width, height=height)
    for model, per_mp in (("fal-ai/flux/schnell", 0.003), ("fal-ai/flux/dev", 0.025)):
        provider = FalProvider(config=FalConfig(model=model), secrets=cfg.Secrets(_env_file=None))  # type: ignore[call-arg]
        mapped = provider.map(request)
        assert (mapped.width, mapped.height) == (width, height)  # 1792 px fits the 2048 cap
        assert provider.estimate_cost(request) == pytest.approx(per_mp * width * height / 1e6, abs=1e-6)
