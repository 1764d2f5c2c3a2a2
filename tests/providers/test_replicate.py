"""Replicate: official models by name, others by version (resolved from latest_version and
cached, or pinned), inputs mapped from the version's OpenAPI schema, E005 filtering, GPU-
second billing and the price table (server: tests/providers/servers/replicate.py)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from PIL import Image

from core import settings as cfg
from core.domain import GenerationRequest, ImageFormat, Quality
from core.errors import ContentFilteredError, RejectedProviderError, TransientProviderError
from core.settings import RetryConfig
from providers.chain import ProviderChain
from providers.download import SafeDownloader
from providers.replicate import ReplicateConfig, ReplicateProvider
from tests.providers.servers.replicate import FLUX_VERSION, RV_VERSION, SD_VERSION, TOKEN, ReplicateServer, is_prediction


def secrets() -> cfg.Secrets:
    return cfg.Secrets(_env_file=None, provider_secrets={"REPLICATE_API_TOKEN": TOKEN})  # type: ignore[call-arg]


@pytest.fixture
def server() -> Iterator[ReplicateServer]:
    with ReplicateServer() as running:
        yield running  # type: ignore[misc]


def provider_for(server: ReplicateServer, **settings: object) -> ReplicateProvider:
    config = ReplicateConfig(**{"base_url": server.url, "poll_interval_s": 0.05, "timeout_s": 30, **settings})
    return ReplicateProvider(config=config, secrets=secrets(), downloader=SafeDownloader(test_base_url=server.url))


def request(fmt: ImageFormat, quality: Quality = Quality.hd, seed: int = 5) -> GenerationRequest:
    width, height = fmt.size
    return GenerationRequest(prompt="a lighthouse at dawn", width=width, height=height, seed=seed,
                             num_inference_steps=quality.num_inference_steps, guidance_scale=quality.guidance_scale)


@pytest.mark.parametrize(("model", "expected_sizes"), [
    (None, {"square": (1024, 1024), "portrait": (576, 1024), "landscape": (1024, 576)}),
    ("black-forest-labs/flux-schnell", {"square": "1:1", "portrait": "9:16", "landscape": "16:9"}),
])
def test_default_configuration_and_flux_schnell_make_real_images_in_every_format(
        server: ReplicateServer, model: str | None, expected_sizes: dict[str, object]) -> None:
    """The shipped default (stability-ai/stable-diffusion, by version) and flux-schnell (an
    official model, by name): three formats, three images, one paid prediction each, every
    input inside the model's schema (the server refuses anything else with a 422)."""
    provider = provider_for(server, **({"model": model} if model else {}))
    chain = ProviderChain([provider], retry=RetryConfig(max_retries=2, backoff_s=0.0))
    attempts: list[object] = []
    for fmt in ImageFormat:
        result = chain.generate(request(fmt), attempts.append)
        with Image.open(io.BytesIO(result.image)) as image:
            colours = image.convert("RGB").resize((32, 32)).getcolors(4096)
            assert colours is not None and len(colours) > 200  # a real photo, not a placeholder
            width, height = image.size
        want_w, want_h = fmt.size
        assert (width > height) == (want_w > want_h) and (width < height) == (want_w < want_h)
        assert result.mapped_size == (expected_sizes[fmt.value] if isinstance(expected_sizes[fmt.value], str)
                                      else "{}x{}".format(*expected_sizes[fmt.value]))  # type: ignore[str-format]
        assert not result.is_placeholder and result.cost_usd > 0
    created = [r for r in server.requests if is_prediction(r)]
    assert len(created) == 3 and len(attempts) == 3  # one paid prediction per image, no retry, no fallback
    if model is None:
        assert all(r.path == "/v1/predictions" and r.json()["version"] == SD_VERSION for r in created)
        sent = created[1].json()["input"]
        assert (sent["width"], sent["height"]) == (576, 1024) and sent["num_inference_steps"] == 50
    else:
        assert all(r.path == "/v1/models/black-forest-labs/flux-schnell/predictions" for r in created)
        for r in created:
            sent = r.json()["input"]
            assert sent["num_inference_steps"] == 4 and "width" not in sent and "negative_prompt" not in sent
            assert "guidance_scale" not in sent and sent["num_outputs"] == 1
        assert [r.json()["input"]["aspect_ratio"] for r in created] == ["1:1", "9:16", "16:9"]
    schema_reads = [r for r in server.requests if r.method == "GET" and r.path.startswith("/v1/models/")]
    assert len(schema_reads) <= 1  # the schema (and version) is read once, then cached
    provider.close()


def test_version_is_resolved_from_latest_version_and_cached(server: ReplicateServer) -> None:
    provider = provider_for(server, model="stability-ai/stable-diffusion")
    provider.generate(request(ImageFormat.square))
    again = provider_for(server, model="stability-ai/stable-diffusion")  # a new instance, same process
    again.generate(request(ImageFormat.square))
    gets = [r.path for r in server.requests if r.method == "GET" and r.path.startswith("/v1/models/")]
    assert gets == ["/v1/models/stability-ai/stable-diffusion"]
    assert [r.json()["version"] for r in server.requests if is_prediction(r)] == [SD_VERSION, SD_VERSION]


def test_pinned_version_in_the_id_or_the_config(server: ReplicateServer) -> None:
    pinned = provider_for(server, model=f"lucataco/realistic-vision-v5.1:{RV_VERSION}")
    result = pinned.generate(request(ImageFormat.portrait, Quality.ultra_hd))
    assert f"/v1/models/lucataco/realistic-vision-v5.1/versions/{RV_VERSION}" in [r.path for r in server.requests]
    sent = [r for r in server.requests if is_prediction(r)][0].json()
    assert sent["version"] == RV_VERSION
    # this model calls them "steps" and "guidance" (3.5..7): read from its schema, clamped with a note
    assert sent["input"]["steps"] == 70 and sent["input"]["guidance"] == 7.0 and "guidance_scale" not in sent["input"]
    assert any("guidance_scale 9.5 -> 7" in note for note in result.metadata["mapping_notes"])
    server.reset()
    configured = provider_for(server, model="black-forest-labs/flux-schnell",
                              versions={"black-forest-labs/flux-schnell": FLUX_VERSION})
    configured.generate(request(ImageFormat.landscape))
    sent = [r for r in server.requests if is_prediction(r)][0]
    assert sent.path == "/v1/predictions" and sent.json()["version"] == FLUX_VERSION  # pinned: by version


def test_a_community_model_by_name_is_refused_by_the_real_route(server: ReplicateServer) -> None:
    """What the old adapter did: POST /v1/models/{owner}/{name}/predictions for a model that
    is not official gets 404 (a rejection, not a retry)."""
    provider = provider_for(server, model="stability-ai/stable-diffusion",
                            official_models=["stability-ai/stable-diffusion"])
    with pytest.raises(RejectedProviderError, match="404"):
        provider.generate(request(ImageFormat.square))


def test_unknown_model_is_a_rejection(server: ReplicateServer) -> None:
    with pytest.raises(RejectedProviderError, match="404"):
        provider_for(server, model="nobody/nothing").generate(request(ImageFormat.square))


def test_e005_sensitive_is_content_filtered(server: ReplicateServer) -> None:
    server.script.append("filtered")
    with pytest.raises(ContentFilteredError, match="E005"):
        provider_for(server).generate(request(ImageFormat.square))


def test_polls_then_succeeds_and_cancels_on_timeout(server: ReplicateServer) -> None:
    server.polls = 2
    provider = provider_for(server, model="black-forest-labs/flux-schnell")
    provider.generate(request(ImageFormat.square))
    gets = [r.path for r in server.requests if r.path.startswith("/v1/predictions/")]
    assert len(gets) == 2 and gets[0] == gets[1]  # polled urls.get twice
    server.reset()
    server.polls = None  # never finishes
    slow = provider_for(server, timeout_s=0.5)
    with pytest.raises(TransientProviderError, match="cancelled"):
        slow.generate(request(ImageFormat.square))
    assert len(server.cancelled) == 1 and server.requests[-1].path.endswith("/cancel")


def test_time_billed_models_cost_predict_time_times_the_hardware_price(server: ReplicateServer) -> None:
    server.predict_time = 3.2
    sd = provider_for(server).generate(request(ImageFormat.square))
    assert sd.cost_usd == pytest.approx(3.2 * 0.0014)  # A100 (80GB): USD 0.0014 per second
    rv = provider_for(server, model="lucataco/realistic-vision-v5.1").generate(request(ImageFormat.square))
    assert rv.cost_usd == pytest.approx(3.2 * 0.000725)  # A40 (Large)
    on_t4 = provider_for(server, hardware={"stability-ai/stable-diffusion": "gpu-t4"}).generate(request(ImageFormat.square))
    assert on_t4.cost_usd == pytest.approx(3.2 * 0.000225) and on_t4.metadata["predict_time"] == 3.2
    flux = provider_for(server, model="black-forest-labs/flux-schnell").generate(request(ImageFormat.square))
    assert flux.cost_usd == pytest.approx(0.003)  # official: per output image, whatever the time


def test_max_cost_bounds_a_time_billed_call_by_its_timeout() -> None:
    provider = ReplicateProvider(config=ReplicateConfig(timeout_s=120), secrets=secrets())
    req = request(ImageFormat.square)
    assert provider.estimate_cost(req) == pytest.approx(4.0 * 0.0014)  # typical 4 s on an A100
    assert provider.max_cost(req) == pytest.approx(120 * 0.0014)
    assert provider.max_cost(req, timeout_s=30) == pytest.approx(30 * 0.0014)
    flux = GenerationRequest(prompt="x", model="black-forest-labs/flux-schnell")
    assert provider.max_cost(flux) == provider.estimate_cost(flux) == pytest.approx(0.003)


def test_price_table() -> None:
    """https://replicate.com/pricing: official models per image, hardware per second."""
    table = ReplicateProvider.price_table
    assert table.source_url == "https://replicate.com/pricing" and table.checked
    assert {m: table.lookup(m, "standard") for m in ("black-forest-labs/flux-schnell", "black-forest-labs/flux-dev",
                                                     "black-forest-labs/flux-1.1-pro")} == {
        "black-forest-labs/flux-schnell": 0.003, "black-forest-labs/flux-dev": 0.025, "black-forest-labs/flux-1.1-pro": 0.04}
    assert dict(table.hardware_usd_per_second) == {
        "cpu": 0.0001, "gpu-t4": 0.000225, "gpu-l40s": 0.000975, "gpu-a40-small": 0.000575, "gpu-a40-large": 0.000725,
        "gpu-a100-large": 0.0014, "gpu-h100": 0.001525}
    assert table.per_second("stability-ai/stable-diffusion") == 0.0014
    assert table.per_second("lucataco/realistic-vision-v5.1") == 0.000725
    provider = ReplicateProvider(config=ReplicateConfig(), secrets=secrets())
    assert provider.per_second_usd("someone/new-model") == 0.0014  # default_hardware for unknown community models
    assert provider.per_second_usd("black-forest-labs/flux-schnell") is None
