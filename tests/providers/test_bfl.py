"""Black Forest Labs API: polling, moderation statuses, per-model inputs, key only to
trusted hosts, price table (server: tests/providers/servers/bfl.py)."""

from __future__ import annotations

import pytest

from config import secrets as cfg
from domain.model import GenerationRequest, ImageFormat
from domain.errors import AuthBillingProviderError, ContentFilteredError, UnsafeURLError
from providers.bfl import BFLConfig, BFLProvider
from providers.download import SafeDownloader
from tests.providers.servers.bfl import KEY, BFLServer


def provider_for(server: BFLServer, **settings: object) -> BFLProvider:
    config = BFLConfig(**{"base_url": server.url, "poll_interval_s": 0.02, "timeout_s": 10, **settings})
    return BFLProvider(
        config=config,
        secrets=cfg.Secrets(_env_file=None, provider_secrets={"BFL_API_KEY": KEY}),  # type: ignore[call-arg]
        downloader=SafeDownloader(test_base_url=server.url),
    )


PORTRAIT = GenerationRequest(prompt="a heron", width=1024, height=1792, num_inference_steps=70, guidance_scale=9.5, seed=8)


def test_polls_until_ready_and_maps_the_size() -> None:
    with BFLServer() as server:
        server.pending_polls = 2
        result = provider_for(server).generate(PORTRAIT)
        sent = server.requests[0].json()
        polls = [r for r in server.requests if r.path == "/v1/get_result"]
    assert (sent["width"], sent["height"]) == (832, 1440) and "steps" not in sent and "guidance" not in sent
    assert len(polls) == 3 and result.seed == 8 and result.cost_usd == 0.04 and result.mapped_size == "832x1440"
    assert not any("x-key" in r.headers for r in server.requests if r.path.startswith("/files/"))  # signed URL, no key


def test_dev_steps_and_guidance_clamped_ultra_takes_an_aspect_ratio() -> None:
    with BFLServer() as server:
        provider_for(server, model="flux-dev").generate(PORTRAIT)
        ultra = provider_for(server, model="flux-pro-1.1-ultra").generate(GenerationRequest(prompt="a heron", width=1792, height=1024))
        dev_sent, ultra_sent = (r.json() for r in server.requests if r.method == "POST")
    assert dev_sent["steps"] == 50 and dev_sent["guidance"] == 5.0
    assert ultra_sent["aspect_ratio"] == "16:9" and "width" not in ultra_sent and ultra.cost_usd == 0.06


@pytest.mark.parametrize("status", ["Request Moderated", "Content Moderated"])
def test_moderated_statuses_are_filtered(status: str) -> None:
    with BFLServer("filtered") as server:
        original = server.route

        def route(request):  # type: ignore[no-untyped-def]
            reply = original(request)
            for task in server.tasks.values():
                if task["status"] == "Content Moderated":
                    task["status"] = status
            return reply

        server.route = route  # type: ignore[method-assign]
        with pytest.raises(ContentFilteredError, match=status):
            provider_for(server).generate(PORTRAIT)


def test_402_insufficient_credits_is_billing() -> None:
    with BFLServer("402") as server:
        with pytest.raises(AuthBillingProviderError, match="Insufficient credits"):
            provider_for(server).generate(PORTRAIT)


def test_the_key_goes_nowhere_else() -> None:
    provider = BFLProvider(config=BFLConfig(), secrets=cfg.Secrets(_env_file=None))  # type: ignore[call-arg]
    assert provider._polling_url("https://api.us1.bfl.ai/v1/get_result?id=1", "flux-pro-1.1")
    for url in ("http://api.bfl.ai/v1/get_result", "https://evil.example/bfl.ai", "https://bfl.ai.evil.example/x"):
        with pytest.raises(UnsafeURLError):
            provider._polling_url(url, "flux-pro-1.1")


def test_check_reads_credits() -> None:
    with BFLServer() as server:
        assert "1234.5 credits" in provider_for(server).check().detail
        assert (
            not BFLProvider(
                config=BFLConfig(base_url=server.url),
                secrets=cfg.Secrets(  # type: ignore[call-arg]
                    _env_file=None
                ),
            )
            .check()
            .ok
        )


@pytest.mark.parametrize("fmt", list(ImageFormat))
def test_price_table(fmt: ImageFormat) -> None:
    """https://docs.bfl.ai/pricing: per image, whatever the size."""
    assert BFLProvider.price_table.source_url == "https://docs.bfl.ai/pricing"
    width, height = fmt.size
    for model, price in (("flux-pro-1.1", 0.04), ("flux-dev", 0.025), ("flux-pro-1.1-ultra", 0.06)):
        provider = BFLProvider(config=BFLConfig(model=model), secrets=cfg.Secrets(_env_file=None))  # type: ignore[call-arg]
        assert provider.estimate_cost(GenerationRequest(prompt="x", width=width, height=height)) == price


@pytest.mark.parametrize("status", ["Request Moderated", "Content Moderated"])
def test_moderation_is_not_charged(status: str) -> None:
    """BFL does not charge moderated requests (https://help.bfl.ai): the chain counts USD 0,
    not the may-have-billed estimate."""
    from domain.model import Attempt
    from providers.chain import RetryConfig
    from providers.chain import ProviderChain
    from providers.placeholder import PlaceholderConfig, PlaceholderProvider

    with BFLServer("filtered") as server:
        original = server.route

        def route(request):  # type: ignore[no-untyped-def]
            reply = original(request)
            for task in server.tasks.values():
                if task["status"] == "Content Moderated":
                    task["status"] = status
            return reply

        server.route = route  # type: ignore[method-assign]
        provider = provider_for(server)
        attempts: list[Attempt] = []
        chain = ProviderChain(
            [provider, PlaceholderProvider(config=PlaceholderConfig(), secrets=provider.secrets)],
            retry=RetryConfig(max_retries=2, backoff_s=0.0),
            sleep=lambda s: None,
        )
        assert chain.generate(PORTRAIT, attempts.append).provider == "placeholder"
    failed = [a for a in attempts if a.provider == "bfl"]
    assert len(failed) == 1 and failed[0].error_class == "content_filtered" and failed[0].cost_usd == 0.0


def test_a_task_pending_at_the_timeout_is_counted_as_billed() -> None:
    """No cancel endpoint: the task runs on and is billed, so the timeout carries its price."""
    from domain.errors import TransientProviderError
    from providers.chain import failed_cost

    with BFLServer() as server:
        server.pending_polls = 10_000
        provider = provider_for(server, timeout_s=0.3)
        with pytest.raises(TransientProviderError) as caught:
            provider.generate(PORTRAIT)
    assert failed_cost(provider, PORTRAIT, caught.value) == 0.04
