"""Self-hosted providers: AUTOMATIC1111 (img2img, inpainting, checkpoints, HTTP Basic) and
the FLUX studio (img2img, mask, upscale, output paths), against their loopback servers."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from config import secrets as cfg
from domain.model import GenerationRequest
from domain.errors import AuthBillingProviderError, ContentFilteredError, UnsafeURLError
from providers.automatic1111 import Automatic1111Config, Automatic1111Provider
from providers.flux_studio import FluxStudioConfig, FluxStudioProvider
from tests.providers.servers.automatic1111 import A1111Server
from tests.providers.servers.common import photo
from tests.providers.servers.flux_studio import FluxStudioServer


def secrets(**values: str) -> cfg.Secrets:
    return cfg.Secrets(_env_file=None, provider_secrets=values)  # type: ignore[call-arg]


def png(width: int, height: int, colour: tuple[int, int, int] | None = None) -> bytes:
    if colour is None:
        return photo(width, height, "rocket")
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


def test_a1111_img2img_inpainting_checkpoint_and_basic_auth() -> None:
    with A1111Server(auth="artist:s3cret") as server:
        provider = Automatic1111Provider(
            config=Automatic1111Config(enabled=True, base_url=server.url, denoising_strength=0.55, timeout_s=10),
            secrets=secrets(AUTOMATIC1111_AUTH="artist:s3cret"),
        )
        init, mask = png(512, 512), png(512, 512, (255, 255, 255))
        img2img = provider.generate(GenerationRequest(prompt="the same mug, in blue", width=512, height=512, seed=9, init_image=init, model="sd_xl_base_1.0"))
        inpaint = provider.generate(GenerationRequest(prompt="a blue mug", width=512, height=512, seed=None, init_image=init, mask_image=mask, strength=0.9))
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
        wrong = Automatic1111Provider(
            config=Automatic1111Config(enabled=True, base_url=server.url, timeout_s=10), secrets=secrets(AUTOMATIC1111_AUTH="artist:wrong")
        )
        with pytest.raises(AuthBillingProviderError, match="401"):
            wrong.generate(GenerationRequest(prompt="a mug", width=512, height=512))
        assert not wrong.check().ok and "401" in wrong.check().detail
        wrong.close()


def test_flux_studio_img2img_mask_upscale_and_foreign_output() -> None:
    with FluxStudioServer() as server:
        provider = FluxStudioProvider(config=FluxStudioConfig(enabled=True, base_url=server.url, timeout_s=5), secrets=secrets())
        init, mask = png(512, 512), png(512, 512, (255, 255, 255))
        result = provider.generate(GenerationRequest(prompt="a lamp", width=500, height=500, num_inference_steps=30, init_image=init, mask_image=mask))
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


def test_content_filtered_black_image_is_a_rejection() -> None:
    from providers.base import validate_image

    with pytest.raises(ContentFilteredError):
        validate_image(png(256, 256, (0, 0, 0)), provider="p", model="m")
    grey = png(256, 256, (128, 128, 128))
    with pytest.raises(Exception) as caught:
        validate_image(grey, provider="p", model="m")
    assert caught.value.error_class == "invalid_output"  # type: ignore[attr-defined]


def test_a1111_hires_fix_size_and_an_unknown_controlnet_model_is_the_servers_error() -> None:
    from domain.errors import ProviderError
    from domain.model import ControlInput, ControlUnit, HiresFix

    with A1111Server() as server:
        provider = Automatic1111Provider(config=Automatic1111Config(enabled=True, base_url=server.url, timeout_s=10), secrets=secrets())
        hires = provider.generate(GenerationRequest(prompt="a mug", width=512, height=384, seed=1, hires_fix=HiresFix(scale=2.0)))
        assert (hires.width, hires.height) == (1024, 768) and hires.metadata["hires_fix"] is True
        unit = ControlUnit(image="refs/edges.png", module="canny", model="control_v11p_sd15_openpose [cab727d4]")
        with pytest.raises(ProviderError, match="model not found: control_v11p_sd15_openpose"):
            provider.generate(GenerationRequest(prompt="a mug", width=512, height=512, control_units=(ControlInput(unit, png(64, 64)),)))
        img2img = provider.payload(GenerationRequest(prompt="a mug", width=512, height=512, init_image=png(64, 64), hires_fix=HiresFix()))
        assert "enable_hr" not in img2img  # hires fix is a txt2img pass
        provider.close()


def test_a1111_batches_variations_that_differ_only_in_the_seed_and_records_each_images_seed() -> None:
    with A1111Server() as server:
        provider = Automatic1111Provider(config=Automatic1111Config(enabled=True, base_url=server.url, timeout_s=10, batch_limit=2), secrets=secrets())
        requests = [GenerationRequest(prompt="a mug", width=512, height=512, seed=100 + i) for i in range(3)]
        requests.append(GenerationRequest(prompt="a cup", width=512, height=512, seed=7))
        results = provider.generate_batch(requests)
        sent = [r.json() for r in server.requests]
        provider.close()
    assert [(b["prompt"], b["batch_size"], b["seed"], b["n_iter"]) for b in sent] == [("a mug", 2, 100, 1), ("a mug", 1, 102, 1), ("a cup", 1, 7, 1)]
    assert [getattr(r, "seed", r) for r in results] == [100, 101, 102, 7]  # all_seeds: seed + i per image
    assert all(getattr(r, "provider", None) == "automatic1111" for r in results)
