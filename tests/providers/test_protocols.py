"""Protocol details beyond the shared contract: img2img and inpainting, HTTP Basic,
checkpoints per request, Replicate / fal polling and cancellation, FLUX studio output
paths and upscaling, Stability aspect ratios, OpenAI URL answers, price tables."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from core import settings as cfg
from core.domain import GenerationRequest
from core.errors import AuthBillingProviderError, ContentFilteredError, TransientProviderError, UnsafeURLError
from providers.automatic1111 import Automatic1111Provider
from providers.download import SafeDownloader
from providers.fal import FalProvider
from providers.flux_studio import FluxStudioProvider
from providers.openai import OpenAIProvider, api_size
from providers.replicate import ReplicateProvider
from providers.stability import StabilityProvider, nearest_aspect_ratio
from tests.providers import servers as srv


def secrets(**values: str) -> cfg.Secrets:
    return cfg.Secrets(_env_file=None, **values)  # type: ignore[call-arg]


def png(width: int, height: int, colour: tuple[int, int, int] | None = None) -> bytes:
    if colour is None:
        return srv.photo(width, height, "rocket")
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


def test_a1111_img2img_inpainting_checkpoint_and_basic_auth() -> None:
    with srv.A1111Server(auth="artist:s3cret") as server:
        provider = Automatic1111Provider(
            config=cfg.Automatic1111Config(enabled=True, base_url=server.url, denoising_strength=0.55, timeout_s=10),
            secrets=secrets(automatic1111_auth="artist:s3cret"))
        init, mask = png(512, 512), png(512, 512, (255, 255, 255))
        img2img = provider.generate(GenerationRequest(prompt="the same mug, in blue", width=512, height=512, seed=9,
                                                      init_image=init, model="sd_xl_base_1.0"))
        inpaint = provider.generate(GenerationRequest(prompt="a blue mug", width=512, height=512, seed=None,
                                                      init_image=init, mask_image=mask, strength=0.9))
        txt2img = provider.generate(GenerationRequest(prompt="a mug", width=512, height=512, seed=3))
        first, second, third = (r.json() for r in server.requests)
        assert [r.path for r in server.requests] == ["/sdapi/v1/img2img", "/sdapi/v1/img2img", "/sdapi/v1/txt2img"]
        assert base64.b64decode(first["init_images"][0]) == init and first["denoising_strength"] == 0.55
        assert "mask" not in first and first["override_settings"] == {"sd_model_checkpoint": "sd_xl_base_1.0"}
        assert base64.b64decode(second["mask"]) == mask and second["denoising_strength"] == 0.9
        assert second["inpainting_fill"] == 1 and second["mask_blur"] == 4 and second["inpainting_mask_invert"] == 0
        assert "init_images" not in third
        assert img2img.model == "sd_xl_base_1.0" and img2img.metadata["mode"] == "img2img"
        assert inpaint.seed == 4242 and inpaint.metadata["mode"] == "inpaint"  # the real seed, from info
        assert txt2img.seed == 3
        provider.close()
        wrong = Automatic1111Provider(config=cfg.Automatic1111Config(enabled=True, base_url=server.url, timeout_s=10),
                                      secrets=secrets(automatic1111_auth="artist:wrong"))
        with pytest.raises(AuthBillingProviderError, match="401"):
            wrong.generate(GenerationRequest(prompt="a mug", width=512, height=512))
        assert not wrong.check().ok and "401" in wrong.check().detail
        wrong.close()


def test_replicate_polls_then_succeeds_and_cancels_on_timeout() -> None:
    with srv.ReplicateServer() as server:
        server.polls = 2
        provider = ReplicateProvider(
            config=cfg.ReplicateConfig(base_url=server.url, model="lucataco/realistic-vision-v5.1:" + "a" * 64,
                                       poll_interval_s=0.05, timeout_s=5),
            secrets=secrets(replicate_api_token="r8_test_token"), downloader=SafeDownloader(test_base_url=server.url))
        result = provider.generate(GenerationRequest(prompt="a lighthouse", width=512, height=512, seed=1))
        assert result.cost_usd == pytest.approx(0.08)  # a version-pinned id is priced by its model name
        paths = [r.path for r in server.requests]
        assert paths[0] == "/v1/predictions" and server.requests[0].json()["version"] == "a" * 64
        assert paths.count(paths[1]) == 2 and paths[1].startswith("/v1/predictions/")  # polled urls.get twice
        provider.close()

        server.reset()
        server.polls = None  # never finishes
        slow = ReplicateProvider(
            config=cfg.ReplicateConfig(base_url=server.url, poll_interval_s=0.05, timeout_s=0.5),
            secrets=secrets(replicate_api_token="r8_test_token"), downloader=SafeDownloader(test_base_url=server.url))
        with pytest.raises(TransientProviderError, match="cancelled"):
            slow.generate(GenerationRequest(prompt="a lighthouse", width=512, height=512, seed=1))
        assert len(server.cancelled) == 1 and server.requests[-1].path.endswith("/cancel")
        slow.close()


def test_replicate_per_second_billing_uses_reported_predict_time() -> None:
    with srv.ReplicateServer() as server:
        provider = ReplicateProvider(
            config=cfg.ReplicateConfig(base_url=server.url, price_per_second_usd=0.0014, timeout_s=5),
            secrets=secrets(replicate_api_token="r8_test_token"), downloader=SafeDownloader(test_base_url=server.url))
        result = provider.generate(GenerationRequest(prompt="a lighthouse", width=512, height=512))
        assert result.cost_usd == pytest.approx(2.5 * 0.0014)  # metrics.predict_time 2.5 s
        assert result.metadata["predict_time"] == 2.5


def test_fal_queue_polling_and_cancel() -> None:
    with srv.FalServer() as server:
        server.in_queue_polls = 2
        provider = FalProvider(config=cfg.FalConfig(queue_url=server.url, poll_interval_s=0.02, timeout_s=5),
                               secrets=secrets(fal_key="fal-test-key"), downloader=SafeDownloader(test_base_url=server.url))
        result = provider.generate(GenerationRequest(prompt="a fox", width=1024, height=768, seed=4))
        assert result.seed == 4 and result.cost_usd == pytest.approx(0.003 * 1024 * 768 / 1e6, abs=1e-6)
        statuses = [r.path for r in server.requests if r.path.endswith("/status")]
        assert len(statuses) == 3  # IN_QUEUE, IN_QUEUE, COMPLETED
        server.reset()
        server.in_queue_polls = 10_000
        slow = FalProvider(config=cfg.FalConfig(queue_url=server.url, poll_interval_s=0.05, timeout_s=0.4),
                           secrets=secrets(fal_key="fal-test-key"), downloader=SafeDownloader(test_base_url=server.url))
        with pytest.raises(TransientProviderError, match="cancelled"):
            slow.generate(GenerationRequest(prompt="a fox", width=512, height=512))
        assert len(server.cancelled) == 1


def test_flux_studio_img2img_mask_upscale_and_foreign_output() -> None:
    with srv.FluxStudioServer() as server:
        provider = FluxStudioProvider(config=cfg.FluxStudioConfig(enabled=True, base_url=server.url, timeout_s=5),
                                      secrets=secrets())
        init, mask = png(512, 512), png(512, 512, (255, 255, 255))
        result = provider.generate(GenerationRequest(prompt="a lamp", width=500, height=500, num_inference_steps=30,
                                                     init_image=init, mask_image=mask))
        sent = server.requests[0].json()
        assert sent["image"].startswith("data:image/png;base64,") and sent["mask"].startswith("data:image/png;base64,")
        assert sent["strength"] == 0.6 and sent["num_inference_steps"] == 10 and sent["width"] == 512
        assert result.seed == 12345 and result.metadata["mode"] == "inpaint"
        assert server.requests[1].path == result.metadata["output_path"]  # fetched from the studio itself
        upscaled = provider.upscale(png(128, 96))
        with Image.open(io.BytesIO(upscaled)) as image:
            assert image.size == (512, 384)
        server.output_url = "http://169.254.169.254/latest/meta-data/"
        with pytest.raises(UnsafeURLError):
            provider.generate(GenerationRequest(prompt="a lamp", width=512, height=512))
        assert not any(r.path.startswith("/latest") for r in server.requests)


@pytest.mark.parametrize(("size", "ratio"), [((1024, 1024), "1:1"), ((1792, 1024), "16:9"), ((1024, 1792), "9:16"),
                                              ((1200, 800), "3:2"), ((800, 1000), "4:5"), ((2100, 900), "21:9")])
def test_stability_nearest_aspect_ratio(size: tuple[int, int], ratio: str) -> None:
    assert nearest_aspect_ratio(*size) == ratio


def test_stability_sd3_and_moderation() -> None:
    with srv.StabilityServer() as server:
        provider = StabilityProvider(config=cfg.StabilityConfig(base_url=server.url, model="sd3.5-large", timeout_s=5),
                                     secrets=secrets(stability_api_key="sk-test-key"))
        result = provider.generate(GenerationRequest(prompt="a dune", width=1792, height=1024, seed=77))
        form = server.requests[0].form()
        assert server.requests[0].path == "/v2beta/stable-image/generate/sd3"
        assert form["model"] == "sd3.5-large" and form["aspect_ratio"] == "16:9" and form["cfg_scale"] == "7.5"
        assert result.cost_usd == pytest.approx(0.065) and result.seed == 77 and result.width > result.height


def test_openai_sizes_url_answers_and_tier_prices() -> None:
    assert api_size("gpt-image-1", 1792, 1024) == "1536x1024" and api_size("dall-e-3", 1024, 1792) == "1024x1792"
    with srv.OpenAIServer() as server:
        server.answer_urls = True
        provider = OpenAIProvider(config=cfg.OpenAIConfig(base_url=f"{server.url}/v1", model="dall-e-3", timeout_s=5),
                                  secrets=secrets(openai_api_key="sk-test-key"),
                                  downloader=SafeDownloader(test_base_url=server.url))
        hd = GenerationRequest(prompt="a vase", width=1024, height=1024, num_inference_steps=50)
        result = provider.generate(hd)
        assert server.requests[0].json()["quality"] == "hd" and result.cost_usd == pytest.approx(0.08)
        assert any(r.path.startswith("/files/") for r in server.requests)  # fetched through the downloader
        strict = OpenAIProvider(config=cfg.OpenAIConfig(base_url=f"{server.url}/v1", model="dall-e-3", timeout_s=5),
                                secrets=secrets(openai_api_key="sk-test-key"))  # no test base: loopback URL refused
        with pytest.raises(UnsafeURLError):
            strict.generate(hd)


def test_price_tables_from_configuration() -> None:
    provider = OpenAIProvider(config=cfg.OpenAIConfig(prices_usd={"gpt-image-1": {"standard": 0.02, "default": 0.05}}),
                              secrets=secrets())
    assert provider.estimate_cost(GenerationRequest(prompt="x")) == 0.02
    assert provider.estimate_cost(GenerationRequest(prompt="x", num_inference_steps=70)) == 0.05
    assert provider.estimate_cost(GenerationRequest(prompt="x", quality="hd")) == 0.05
    assert OpenAIProvider(config=cfg.OpenAIConfig(cost_usd=0.5), secrets=secrets()).estimate_cost(
        GenerationRequest(prompt="x")) == 0.5
    defaults = cfg.Settings().providers
    assert defaults.huggingface.prices_usd["stabilityai/stable-diffusion-xl-base-1.0"] == 0.02  # MISSION.md
    assert defaults.replicate.prices_usd["lucataco/realistic-vision-v5.1"] == 0.08
    assert defaults.stability.prices_usd["ultra"] == 0.08


def test_content_filtered_black_image_is_a_rejection() -> None:
    from providers.base import validate_image

    with pytest.raises(ContentFilteredError):
        validate_image(png(256, 256, (0, 0, 0)), provider="p", model="m")
    grey = png(256, 256, (128, 128, 128))
    with pytest.raises(Exception) as caught:
        validate_image(grey, provider="p", model="m")
    assert caught.value.error_class == "invalid_output"  # type: ignore[attr-defined]
