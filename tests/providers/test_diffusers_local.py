"""The local diffusers provider, tested the way diffusers tests itself: tiny random
components built here (64 px, 2 steps, seeded), saved with ``save_pretrained`` to a
temporary folder and loaded back by the provider from there, plus a LoRA saved and
loaded in the test. Nothing is downloaded (HF_HUB_OFFLINE=1)."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("diffusers", reason="the local extra is not installed")
torch = pytest.importorskip("torch")

from PIL import Image  # noqa: E402

from domain.model import GenerationRequest  # noqa: E402
from domain.errors import RejectedProviderError  # noqa: E402
from config.secrets import Secrets  # noqa: E402
from providers.diffusers_local import DiffusersConfig, LocalModelConfig, LoraConfig  # noqa: E402

SIZE = 64
STEPS = 2


def tiny_tokenizer(folder: Path):  # type: ignore[no-untyped-def]
    """A CLIP tokenizer from a character vocabulary written here (no download)."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in "abcdefghijklmnopqrstuvwxyz0123456789,.-'!":
        vocab.setdefault(char, len(vocab))
        vocab.setdefault(char + "</w>", len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(vocab_file=str(folder / "vocab.json"), merges_file=str(folder / "merges.txt"), model_max_length=77, pad_token="<|endoftext|>"), len(
        vocab
    )


def build_tiny_model(root: Path) -> dict[str, Path]:
    """A seeded, random, tiny SD 1.5-shaped pipeline (UNet, VAE, CLIP text encoder) and a
    LoRA, saved under ``root``; returns the folders of the model, its VAE and the LoRA."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from peft import LoraConfig as PeftLoraConfig
    from peft.utils import get_peft_model_state_dict
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer, vocab_size = tiny_tokenizer(root)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=SIZE // 2,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=2,
    )
    vae = AutoencoderKL(
        block_out_channels=[4, 8],
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        norm_num_groups=2,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
            hidden_size=32,
            intermediate_size=37,
            layer_norm_eps=1e-5,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=vocab_size + 2,
        )
    )
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(root / "model")
    vae.save_pretrained(root / "vae")
    unet.add_adapter(PeftLoraConfig(r=4, lora_alpha=8, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False))
    StableDiffusionPipeline.save_lora_weights(root / "lora", unet_lora_layers=get_peft_model_state_dict(unet))
    return {"model": root / "model", "vae": root / "vae", "lora": root / "lora"}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """``build_tiny_model`` in a temporary folder."""
    yield build_tiny_model(tmp_path_factory.mktemp("tiny-sd"))


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def provider(tiny_model: dict[str, Path]):  # type: ignore[no-untyped-def]
    from providers.diffusers_local import DiffusersProvider

    os.environ["HF_HUB_OFFLINE"] = "1"  # module-wide: any hub access would fail loudly
    torch.set_num_threads(2)
    config = DiffusersConfig(
        enabled=True,
        device="cpu",
        model="tiny",
        local_files_only=True,
        max_batch_size=4,
        models={
            "tiny": LocalModelConfig(
                path=str(tiny_model["model"]),
                vae=str(tiny_model["vae"]),
                negative_prompt="blurry, low quality",
                description="tiny random SD 1.5 for tests",
                loras={"tinystyle": LoraConfig(path=str(tiny_model["lora"]), weight=1.0, trigger_words=["tnystyle"])},
            ),
            "plain": LocalModelConfig(path=str(tiny_model["model"]), pipeline="sd15", scheduler="EulerDiscreteScheduler"),
        },
    )
    made = DiffusersProvider(config=config, secrets=Secrets(_env_file=None))  # type: ignore[call-arg]
    yield made
    made.close()
    os.environ.pop("HF_HUB_OFFLINE", None)


def request(prompt: str = "a red ceramic mug", seed: int | None = 7, **extra) -> GenerationRequest:  # type: ignore[no-untyped-def]
    return GenerationRequest(prompt=prompt, negative_prompt="", width=SIZE, height=SIZE, num_inference_steps=STEPS, guidance_scale=7.5, seed=seed, **extra)


def pixels(data: bytes):  # type: ignore[no-untyped-def]
    import numpy as np

    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG" and image.size == (SIZE, SIZE)
        return np.asarray(image.convert("RGB")).astype(int)


def test_generates_seeded_images_and_keeps_the_pipeline_loaded(provider, offline) -> None:  # type: ignore[no-untyped-def]
    first = provider.generate(request(seed=7))
    again = provider.generate(request(seed=7))
    other = provider.generate(request(seed=8))
    assert first.provider == "diffusers" and first.model == "tiny" and first.seed == 7 and first.cost_usd == 0.0
    assert (first.width, first.height) == (SIZE, SIZE) and not first.is_placeholder
    assert first.image == again.image  # same seed, same image
    assert abs(pixels(first.image) - pixels(other.image)).mean() > 1.0  # another seed, another image
    assert provider.loads == 1  # loaded once, kept across images
    assert first.metadata["device"] == "cpu" and first.metadata["loras"] == {"tinystyle": 1.0}
    assert first.metadata["prompt"] == "a red ceramic mug, tnystyle"  # trigger word of the active LoRA
    assert provider.generate(request(seed=None)).seed is not None  # a random seed is recorded


def test_lora_weight_changes_the_image(provider, offline) -> None:  # type: ignore[no-untyped-def]
    with_lora = pixels(provider.generate(request(seed=3)).image)
    off = provider.generate(request(seed=3, loras=(("tinystyle", 0.0),)))
    assert off.metadata["loras"] == {} and off.metadata["prompt"] == "a red ceramic mug"
    half = pixels(provider.generate(request(seed=3, loras=(("tinystyle", 0.5),))).image)
    base = pixels(off.image)
    assert abs(with_lora - base).mean() > 0.5
    assert 0 < abs(half - base).mean() < abs(with_lora - base).mean()
    with pytest.raises(RejectedProviderError, match="unknown LoRA"):
        provider.generate(request(loras=(("nope", 1.0),)))


def test_variations_are_one_batch(provider, offline) -> None:  # type: ignore[no-untyped-def]
    calls = provider.calls
    variations = [request("a red ceramic mug", seed=11), request("a blue ceramic mug", seed=12), request("a green ceramic mug", seed=13)]
    results = provider.generate_batch(variations)
    assert provider.calls == calls + 1  # one pipeline call for the three variations
    assert [r.seed for r in results] == [11, 12, 13]  # type: ignore[union-attr]
    assert all(r.metadata["batch_size"] == 3 for r in results)  # type: ignore[union-attr]
    assert len({r.image for r in results}) == 3  # type: ignore[union-attr]
    single = provider.generate(request("a blue ceramic mug", seed=12))
    assert abs(pixels(single.image) - pixels(results[1].image)).mean() < 2.0  # type: ignore[union-attr]


def test_second_model_with_scheduler_and_pipeline_family(provider, offline) -> None:  # type: ignore[no-untyped-def]
    result = provider.generate(request(model="plain", seed=5))
    assert result.model == "plain" and result.metadata["loras"] == {}
    pipe = provider.pipeline("plain")
    assert type(pipe).__name__ == "StableDiffusionPipeline"
    assert type(pipe.scheduler).__name__ == "EulerDiscreteScheduler"
    assert provider.check().ok


def test_missing_model_is_a_clear_rejection(tmp_path: Path, offline) -> None:  # type: ignore[no-untyped-def]
    from providers.diffusers_local import DiffusersProvider

    config = DiffusersConfig(enabled=True, device="cpu", local_files_only=True, models={"gone": LocalModelConfig(path=str(tmp_path / "gone"))})
    made = DiffusersProvider(config=config, secrets=Secrets(_env_file=None))  # type: ignore[call-arg]
    check = made.check()
    assert not check.ok and "not found" in check.detail
    with pytest.raises(RejectedProviderError, match="cannot load 'gone'"):
        made.generate(request())


def test_chain_renders_variations_as_one_batch(provider, offline) -> None:  # type: ignore[no-untyped-def]
    from providers.chain import RetryConfig
    from providers.placeholder import PlaceholderConfig
    from providers.chain import ProviderChain
    from providers.placeholder import PlaceholderProvider

    placeholder = PlaceholderProvider(config=PlaceholderConfig(), secrets=Secrets(_env_file=None))  # type: ignore[call-arg]
    chain = ProviderChain([provider, placeholder], retry=RetryConfig())
    attempts: list[tuple[int, str, str]] = []
    calls = provider.calls
    variations = [
        request("a red ceramic mug", seed=21),
        request("a blue ceramic mug", seed=22),
        request("a mug", seed=23, loras=(("missing-lora", 1.0),)),
    ]  # its own batch key: fails alone
    results = chain.generate_batch(variations, lambda i, a: attempts.append((i, a.provider, a.status)))
    assert provider.calls == calls + 1  # the two compatible variations: one pipeline call
    assert [r.provider for r in results] == ["diffusers", "diffusers", "placeholder"]  # type: ignore[union-attr]
    assert sorted(attempts) == [(0, "diffusers", "success"), (1, "diffusers", "success"), (2, "diffusers", "failed"), (2, "placeholder", "success")]
    assert results[2].is_placeholder  # type: ignore[union-attr]
