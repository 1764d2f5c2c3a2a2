"""Brand consistency in the local diffusers provider: a ControlNet unit, an IP-Adapter style
reference and a hires-fix pass, run through tiny random-weight models built here the way
diffusers tests itself (the tiny SD 1.5 of test_diffusers_local, a ControlNet made from its
UNet with ``ControlNetModel.from_unet``, a CLIP vision encoder from a small config and an
IP-Adapter state dict in the layout ``load_ip_adapter`` reads). 64 px, 2 steps, seeded;
nothing is downloaded (HF_HUB_OFFLINE=1)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("diffusers", reason="the local extra is not installed")
torch = pytest.importorskip("torch")

from PIL import Image  # noqa: E402

from config.secrets import Secrets  # noqa: E402
from domain.model import ControlInput, ControlUnit, GenerationRequest, HiresFix, StyleInput, StyleReference  # noqa: E402
from providers.diffusers_local import DiffusersConfig, DiffusersProvider, IpAdapterConfig, LocalModelConfig  # noqa: E402
from tests.providers.servers.common import photo  # noqa: E402
from tests.providers.test_diffusers_local import SIZE, STEPS, build_tiny_model  # noqa: E402

CANNY = "control_v11p_sd15_canny [d14c016b]"
STYLE = "ip-adapter_sd15"


def build_tiny_conditioning(root: Path, model: Path) -> dict[str, Path]:
    """A ControlNet from the tiny model's UNet and an IP-Adapter (tiny CLIP vision encoder +
    image projection + per-cross-attention ``to_k_ip`` / ``to_v_ip`` weights), saved under ``root``."""
    from diffusers import ControlNetModel, UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(1)
    unet = UNet2DConditionModel.from_pretrained(model / "unet")
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(4, 8))
    zero_convs = [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block, controlnet.controlnet_cond_embedding.conv_out]
    with torch.no_grad():  # a trained ControlNet's zero convolutions are no longer zero: random ones, so its weight shows
        for conv in zero_convs:
            conv.weight.normal_(0.0, 0.3)
    controlnet.save_pretrained(root / "controlnet")
    embed = 32
    encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(hidden_size=32, projection_dim=embed, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, image_size=32, patch_size=4)
    )
    encoder.save_pretrained(root / "ip-adapter" / "image_encoder")
    cross = unet.config.cross_attention_dim
    # diffusers/loaders/unet.py: image_proj.{proj,norm} (4 image tokens) and ip_adapter.<1, 3, 5 ...>.to_{k,v}_ip for each cross-attention
    state = {
        "image_proj.proj.weight": torch.randn(cross * 4, embed),
        "image_proj.proj.bias": torch.zeros(cross * 4),
        "image_proj.norm.weight": torch.ones(cross),
        "image_proj.norm.bias": torch.zeros(cross),
    }
    channels = unet.config.block_out_channels
    key_id = 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        block = name.split(".")[0]
        hidden = channels[-1] if block == "mid_block" else (channels[::-1] if block == "up_blocks" else channels)[int(name.split(".")[1])]
        state[f"ip_adapter.{key_id}.to_k_ip.weight"] = torch.randn(hidden, cross)
        state[f"ip_adapter.{key_id}.to_v_ip.weight"] = torch.randn(hidden, cross)
        key_id += 2
    save_file(state, str(root / "ip-adapter" / "ip-adapter.safetensors"))
    return {"controlnet": root / "controlnet", "ip_adapter": root / "ip-adapter"}


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DiffusersProvider]:
    root = tmp_path_factory.mktemp("tiny-brand")
    tiny = build_tiny_model(root)
    extra = build_tiny_conditioning(root, tiny["model"])
    os.environ["HF_HUB_OFFLINE"] = "1"  # module-wide: any hub access would fail loudly
    torch.set_num_threads(1)  # 2 threads spin against each other on a loaded 2-core machine
    config = DiffusersConfig(
        enabled=True,
        device="cpu",
        model="tiny",
        local_files_only=True,
        models={
            "tiny": LocalModelConfig(
                path=str(tiny["model"]),
                pipeline="sd15",
                controlnets={CANNY: str(extra["controlnet"])},
                ip_adapters={STYLE: IpAdapterConfig(path=str(extra["ip_adapter"]))},
            )
        },
    )
    made = DiffusersProvider(config=config, secrets=Secrets(_env_file=None))  # type: ignore[call-arg]
    yield made
    made.close()
    os.environ.pop("HF_HUB_OFFLINE", None)


@pytest.fixture(scope="module")
def plain(provider: DiffusersProvider) -> Any:
    """The pixels of the unconditioned image (seed 11)."""
    return pixels(provider.generate(request()).image)


def request(**extra: Any) -> GenerationRequest:
    return GenerationRequest(prompt="a red ceramic mug", negative_prompt="", width=SIZE, height=SIZE, num_inference_steps=STEPS, seed=11, **extra)


def control(weight: float, model: str = CANNY) -> tuple[ControlInput, ...]:
    return (
        ControlInput(
            ControlUnit(image="refs/edges.png", module="canny", model=model, weight=weight, guidance_start=0.0, guidance_end=1.0), photo(SIZE, SIZE, "camera")
        ),
    )


def style(weight: float, model: str = STYLE) -> StyleInput:
    return StyleInput(StyleReference(image="refs/look.png", model=model, weight=weight), photo(SIZE, SIZE, "astronaut"))


def pixels(data: bytes) -> Any:
    import numpy as np

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB")).astype(int)


def test_a_controlnet_unit_conditions_the_image_by_its_weight(provider: DiffusersProvider, plain: Any) -> None:
    off = provider.generate(request(control_units=control(0.0)))
    on = provider.generate(request(control_units=control(2.0)))
    assert off.metadata["controlnet"] == [f"{CANNY}@0"] and on.metadata["controlnet"] == [f"{CANNY}@2"]
    assert abs(pixels(off.image) - plain).max() <= 2  # weight 0: the ControlNet adds nothing
    assert abs(pixels(on.image) - plain).mean() > 1  # weight 2: it shapes the image


def test_an_ip_adapter_style_reference_is_loaded_scaled_and_unloaded(provider: DiffusersProvider, plain: Any) -> None:
    styled = provider.generate(request(style_reference=style(1.0)))
    assert styled.metadata["ip_adapter"] == f"{STYLE}@1" and (styled.width, styled.height) == (SIZE, SIZE)
    assert abs(pixels(styled.image) - plain).mean() > 1
    with_unit = provider.generate(request(style_reference=style(1.0), control_units=control(1.0)))
    assert with_unit.metadata["controlnet"] and with_unit.metadata["ip_adapter"]
    assert abs(pixels(provider.generate(request()).image) - plain).max() <= 2  # unloaded again: the plain image


def test_hires_fix_is_an_img2img_pass_at_the_larger_size(provider: DiffusersProvider) -> None:
    result = provider.generate(request(hires_fix=HiresFix(scale=2.0, upscaler="Latent", denoising_strength=0.5)))
    assert (result.width, result.height) == (2 * SIZE, 2 * SIZE)
    assert result.metadata["hires_fix"] == {"scale": 2.0, "denoising_strength": 0.5}


def test_an_unconfigured_unit_or_adapter_is_a_clear_skip_reason(provider: DiffusersProvider) -> None:
    assert provider.cannot(request()) is None
    reason = provider.cannot(request(control_units=control(1.0, model="control_depth")))
    assert reason == f"diffusers tiny has no ControlNet 'control_depth' (providers.diffusers.models.tiny.controlnets: {CANNY})"
    assert "has no IP-Adapter 'ip-adapter-plus'" in (provider.cannot(request(style_reference=style(0.5, model="ip-adapter-plus"))) or "")
