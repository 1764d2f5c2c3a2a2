"""Seconds per image of local generation at full size, without downloading a model.

The speed of a diffusion model does not depend on the values of its weights, so the
published architectures are built here from their configuration files (written below as
dicts, each citing its file on the Hugging Face Hub) with random weights, on the GPU,
in the dtype the provider uses (SDXL fp16, FLUX bf16). Nothing is downloaded: the
tokenizers are built offline too (a character vocabulary; prompts are padded to the
models' lengths, 77 CLIP tokens and 256 T5 tokens for schnell, so the work per image is
the real one).

* SDXL base 1.0 (UNet 2.6 B parameters, VAE, CLIP ViT-L and OpenCLIP ViT-bigG text
  encoders), 1024 x 1024, 30 steps, guidance 5.0 (classifier-free: two UNet passes);
* FLUX.1-schnell (transformer 12 B, VAE with 16 latent channels, CLIP ViT-L and T5-XXL
  encoders), 1024 x 1024, 4 steps, no guidance, 256 T5 tokens.

Each is timed through the project's provider (providers/diffusers_local.py
``DiffusersProvider.render``: the same device preparation, SDPA attention, channels-last,
VAE slicing, generators per seed and pipeline call as a run), at batch 1 and 4, eager
and with ``torch.compile`` of the UNet / transformer (its warm-up call timed apart).
Seconds per image = seconds of one pipeline call / batch size, median of ``--repeats``
calls after one untimed warm-up call (CUDA kernels, cuDNN autotuning). Peak memory is
``torch.cuda.max_memory_allocated`` over the timed calls of the row.

Published references (issue goals): SDXL 1024 x 1024, 30 steps, about 2.5 s per image
on an H100 with diffusers (https://huggingface.co/docs/diffusers/optimization/fp16 and
https://pytorch.org/blog/accelerating-generative-ai-3/); FLUX.1-schnell 4 steps about
0.7 s on hosted GPUs. Goals on an H100/H200: SDXL <= 1.5 s and schnell <= 0.6 s per
image at batch 1.

    python benchmarks/gpu_generation.py                 # on a CUDA machine: the full table
    python benchmarks/gpu_generation.py --tiny          # the same code path at toy size on the CPU
    python benchmarks/gpu_generation.py --models sdxl --batches 1 --modes eager
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# -- SDXL base 1.0: https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0 ----------

#: stabilityai/stable-diffusion-xl-base-1.0 unet/config.json (defaults of diffusers left out)
SDXL_UNET: dict[str, Any] = {
    "act_fn": "silu",
    "addition_embed_type": "text_time",
    "addition_embed_type_num_heads": 64,
    "addition_time_embed_dim": 256,
    "attention_head_dim": [5, 10, 20],
    "block_out_channels": [320, 640, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 2048,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "projection_class_embeddings_input_dim": 2816,
    "resnet_time_scale_shift": "default",
    "sample_size": 128,
    "transformer_layers_per_block": [1, 2, 10],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "use_linear_projection": True,
}
#: stabilityai/stable-diffusion-xl-base-1.0 vae/config.json, with ``force_upcast`` off as in
#: madebyollin/sdxl-vae-fp16-fix vae config.json (the same architecture; the VAE the sample
#: configuration names, which decodes in fp16 instead of upcasting to float32)
SDXL_VAE: dict[str, Any] = {
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "force_upcast": False,
    "in_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 1024,
    "scaling_factor": 0.13025,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
}
#: stabilityai/stable-diffusion-xl-base-1.0 text_encoder/config.json (CLIPTextModel, CLIP ViT-L/14)
SDXL_TEXT_ENCODER: dict[str, Any] = {
    "bos_token_id": 0,
    "eos_token_id": 2,
    "hidden_act": "quick_gelu",
    "hidden_size": 768,
    "intermediate_size": 3072,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": 77,
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "pad_token_id": 1,
    "projection_dim": 768,
    "vocab_size": 49408,
}
#: stabilityai/stable-diffusion-xl-base-1.0 text_encoder_2/config.json
#: (CLIPTextModelWithProjection, OpenCLIP ViT-bigG/14)
SDXL_TEXT_ENCODER_2: dict[str, Any] = {
    "bos_token_id": 0,
    "eos_token_id": 2,
    "hidden_act": "gelu",
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": 77,
    "num_attention_heads": 20,
    "num_hidden_layers": 32,
    "pad_token_id": 1,
    "projection_dim": 1280,
    "vocab_size": 49408,
}
#: stabilityai/stable-diffusion-xl-base-1.0 scheduler/scheduler_config.json (EulerDiscreteScheduler)
SDXL_SCHEDULER: dict[str, Any] = {
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "use_karras_sigmas": False,
}

# -- FLUX.1-schnell: https://huggingface.co/black-forest-labs/FLUX.1-schnell -----------------

#: black-forest-labs/FLUX.1-schnell transformer/config.json (FluxTransformer2DModel)
FLUX_TRANSFORMER: dict[str, Any] = {
    "attention_head_dim": 128,
    "axes_dims_rope": [16, 56, 56],
    "guidance_embeds": False,
    "in_channels": 64,
    "joint_attention_dim": 4096,
    "num_attention_heads": 24,
    "num_layers": 19,
    "num_single_layers": 38,
    "patch_size": 1,
    "pooled_projection_dim": 768,
}
#: black-forest-labs/FLUX.1-schnell vae/config.json (AutoencoderKL, 16 latent channels)
FLUX_VAE: dict[str, Any] = {
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "force_upcast": True,
    "in_channels": 3,
    "latent_channels": 16,
    "layers_per_block": 2,
    "mid_block_add_attention": True,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 1024,
    "scaling_factor": 0.3611,
    "shift_factor": 0.1159,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "use_post_quant_conv": False,
    "use_quant_conv": False,
}
#: black-forest-labs/FLUX.1-schnell text_encoder/config.json (CLIPTextModel, CLIP ViT-L/14)
FLUX_TEXT_ENCODER: dict[str, Any] = {**SDXL_TEXT_ENCODER}
#: black-forest-labs/FLUX.1-schnell text_encoder_2/config.json (T5EncoderModel, T5 v1.1 XXL)
FLUX_TEXT_ENCODER_2: dict[str, Any] = {
    "d_ff": 10240,
    "d_kv": 64,
    "d_model": 4096,
    "dense_act_fn": "gelu_new",
    "dropout_rate": 0.1,
    "eos_token_id": 1,
    "feed_forward_proj": "gated-gelu",
    "is_gated_act": True,
    "layer_norm_epsilon": 1e-06,
    "num_heads": 64,
    "num_layers": 24,
    "pad_token_id": 0,
    "relative_attention_max_distance": 128,
    "relative_attention_num_buckets": 32,
    "tie_word_embeddings": False,
    "vocab_size": 32128,
}
#: black-forest-labs/FLUX.1-schnell scheduler/scheduler_config.json (FlowMatchEulerDiscreteScheduler)
FLUX_SCHEDULER: dict[str, Any] = {
    "base_image_seq_len": 256,
    "base_shift": 0.5,
    "max_image_seq_len": 4096,
    "max_shift": 1.15,
    "num_train_timesteps": 1000,
    "shift": 1.0,
    "use_dynamic_shifting": False,
}
#: FLUX.1-schnell's T5 prompt length (the model card's example: max_sequence_length=256)
FLUX_SCHNELL_MAX_SEQUENCE_LENGTH = 256

# -- toy sizes for --tiny (the CPU smoke run; the shapes of diffusers' own pipeline tests) -----

TINY_CLIP: dict[str, Any] = {
    "bos_token_id": 0,
    "eos_token_id": 2,
    "pad_token_id": 1,
    "hidden_size": 32,
    "intermediate_size": 37,
    "layer_norm_eps": 1e-05,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "projection_dim": 32,
    "vocab_size": 1000,
    "max_position_embeddings": 77,
    "hidden_act": "gelu",
}
TINY: dict[str, dict[str, Any]] = {
    "sdxl_unet": {
        "block_out_channels": [8, 16],
        "layers_per_block": 1,
        "sample_size": 32,
        "in_channels": 4,
        "out_channels": 4,
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
        "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
        "attention_head_dim": [2, 4],
        "use_linear_projection": True,
        "addition_embed_type": "text_time",
        "addition_time_embed_dim": 8,
        "transformer_layers_per_block": [1, 1],
        "projection_class_embeddings_input_dim": 80,
        "cross_attention_dim": 64,
        "norm_num_groups": 4,
    },
    "sdxl_vae": {
        "block_out_channels": [8, 16],
        "in_channels": 3,
        "out_channels": 3,
        "latent_channels": 4,
        "down_block_types": ["DownEncoderBlock2D"] * 2,
        "up_block_types": ["UpDecoderBlock2D"] * 2,
        "layers_per_block": 1,
        "sample_size": 64,
        "norm_num_groups": 4,
    },
    "sdxl_text_encoder": TINY_CLIP,
    "sdxl_text_encoder_2": TINY_CLIP,
    "flux_transformer": {
        "patch_size": 1,
        "in_channels": 16,
        "num_layers": 1,
        "num_single_layers": 1,
        "attention_head_dim": 16,
        "num_attention_heads": 2,
        "joint_attention_dim": 32,
        "pooled_projection_dim": 32,
        "axes_dims_rope": [4, 4, 8],
        "guidance_embeds": False,
    },
    "flux_vae": {
        "block_out_channels": [8, 16],
        "in_channels": 3,
        "out_channels": 3,
        "latent_channels": 4,
        "down_block_types": ["DownEncoderBlock2D"] * 2,
        "up_block_types": ["UpDecoderBlock2D"] * 2,
        "layers_per_block": 1,
        "norm_num_groups": 4,
        "use_quant_conv": False,
        "use_post_quant_conv": False,
        "scaling_factor": 0.3611,
        "shift_factor": 0.1159,
    },
    "flux_text_encoder": TINY_CLIP,
    "flux_text_encoder_2": {
        "d_ff": 37,
        "d_kv": 8,
        "d_model": 32,
        "num_heads": 4,
        "num_layers": 2,
        "vocab_size": 1000,
        "feed_forward_proj": "gated-gelu",
        "is_gated_act": True,
        "dense_act_fn": "gelu_new",
        "relative_attention_num_buckets": 8,
        "pad_token_id": 0,
        "eos_token_id": 1,
    },
}

PROMPT = "product photo of a handmade speckled blue ceramic mug on a light oak table, steam rising, soft window light"


@dataclass(frozen=True)
class Workload:
    """One model's benchmark settings (sizes in pixels)."""

    name: str
    family: str  # the provider's pipeline family: sdxl | flux
    size: int
    steps: int
    guidance_scale: float
    max_sequence_length: int | None
    dtype: str  # float16 | bfloat16 | float32


@dataclass
class Row:
    model: str
    mode: str
    batch: int
    seconds_per_image: float
    seconds_per_call: float
    warmup_s: float
    compile_warmup_s: float | None
    peak_gib: float | None
    device: str


# -- building the pipelines ------------------------------------------------------------------


@contextmanager
def default_dtype(dtype: Any) -> Iterator[None]:
    """Build modules directly in ``dtype`` (no float32 copy of 12 B parameters first)."""
    import torch

    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def clip_tokenizer(folder: Path, max_length: int = 77) -> Any:
    """A CLIP BPE tokenizer over single characters (vocab.json / merges.txt written here)."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "!": 1, "<|endoftext|>": 2}
    for char in "abcdefghijklmnopqrstuvwxyz0123456789,.-'":
        vocab.setdefault(char, len(vocab))
        vocab.setdefault(char + "</w>", len(vocab))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(
        vocab_file=str(folder / "vocab.json"),
        merges_file=str(folder / "merges.txt"),
        model_max_length=max_length,
        pad_token="!",
        bos_token="<|startoftext|>",
        eos_token="<|endoftext|>",
    )


def t5_tokenizer(max_length: int = 512) -> Any:
    """A fast tokenizer over single characters with T5's special tokens (pad 0, eos 1, unk 2)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for char in "abcdefghijklmnopqrstuvwxyz0123456789,.-' ":
        vocab.setdefault(char, len(vocab))
    model = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    model.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    return PreTrainedTokenizerFast(tokenizer_object=model, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=max_length)


def inference(module: Any) -> Any:
    """``module`` in inference mode (no dropout: T5's dropout_rate 0.1 would add work), no gradients."""
    module.eval()
    module.requires_grad_(False)
    return module


def build_sdxl(device: str, dtype: Any, tiny: bool, folder: Path) -> Any:
    """StableDiffusionXLPipeline of the published architecture (or TINY), random weights."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    with torch.device(device), default_dtype(dtype):
        unet = UNet2DConditionModel(**(TINY["sdxl_unet"] if tiny else SDXL_UNET))
        vae = AutoencoderKL(**(TINY["sdxl_vae"] if tiny else SDXL_VAE))
        text_encoder = CLIPTextModel(CLIPTextConfig(**(TINY["sdxl_text_encoder"] if tiny else SDXL_TEXT_ENCODER)))
        text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**(TINY["sdxl_text_encoder_2"] if tiny else SDXL_TEXT_ENCODER_2)))
    return StableDiffusionXLPipeline(
        vae=inference(vae),
        text_encoder=inference(text_encoder),
        text_encoder_2=inference(text_encoder_2),
        unet=inference(unet),
        tokenizer=clip_tokenizer(folder / "tokenizer"),
        tokenizer_2=clip_tokenizer(folder / "tokenizer_2"),
        scheduler=EulerDiscreteScheduler(**SDXL_SCHEDULER),
    )


def build_flux(device: str, dtype: Any, tiny: bool, folder: Path) -> Any:
    """FluxPipeline of FLUX.1-schnell's architecture (or TINY), random weights."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    torch.manual_seed(0)
    with torch.device(device), default_dtype(dtype):
        transformer = FluxTransformer2DModel(**(TINY["flux_transformer"] if tiny else FLUX_TRANSFORMER))
        vae = AutoencoderKL(**(TINY["flux_vae"] if tiny else FLUX_VAE))
        text_encoder = CLIPTextModel(CLIPTextConfig(**(TINY["flux_text_encoder"] if tiny else FLUX_TEXT_ENCODER)))
        text_encoder_2 = T5EncoderModel(T5Config(**(TINY["flux_text_encoder_2"] if tiny else FLUX_TEXT_ENCODER_2)))
    return FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**FLUX_SCHEDULER),
        vae=inference(vae),
        text_encoder=inference(text_encoder),
        tokenizer=clip_tokenizer(folder / "tokenizer"),
        text_encoder_2=inference(text_encoder_2),
        tokenizer_2=t5_tokenizer(),
        transformer=inference(transformer),
    )


BUILDERS = {"sdxl": build_sdxl, "flux": build_flux}


def workloads(tiny: bool) -> dict[str, Workload]:
    if tiny:
        return {
            "sdxl": Workload("SDXL (tiny)", "sdxl", 64, 2, 5.0, None, "float32"),
            "flux": Workload("FLUX.1-schnell (tiny)", "flux", 64, 2, 0.0, 32, "float32"),
        }
    return {
        "sdxl": Workload("SDXL base 1.0", "sdxl", 1024, 30, 5.0, None, "float16"),
        "flux": Workload("FLUX.1-schnell", "flux", 1024, 4, 0.0, FLUX_SCHNELL_MAX_SEQUENCE_LENGTH, "bfloat16"),
    }


# -- timing through the provider ---------------------------------------------------------------


def provider_for(work: Workload, device: str, batch: int, compile_mode: str, backend: str) -> Any:
    from config.secrets import Secrets
    from providers.diffusers_local import DiffusersConfig, DiffusersProvider

    config = DiffusersConfig.model_validate(
        {
            "enabled": True,
            "device": device,
            "dtype": work.dtype,
            "model": work.family,
            "max_batch_size": batch,
            "compile": compile_mode,
            "local_files_only": True,
            "models": {work.family: {"path": f"(built in memory: {work.name})", "pipeline": work.family, "max_sequence_length": work.max_sequence_length}},
        }
    )
    provider = DiffusersProvider(config=config, secrets=Secrets(_env_file=None))
    provider.compile_backend = backend
    return provider


def measure(work: Workload, pipe: Any, *, device: str, batch: int, mode: str, compile_mode: str, backend: str, repeats: int) -> Row:
    """Time ``repeats`` pipeline calls of ``batch`` images after one untimed warm-up call."""
    import torch

    from domain.model import GenerationRequest

    provider = provider_for(work, device, batch, compile_mode if mode == "compiled" else "off", backend)
    provider.adopt(work.family, pipe, device)
    requests = [
        GenerationRequest(
            prompt=PROMPT,
            negative_prompt="blurry, low quality",
            width=work.size,
            height=work.size,
            num_inference_steps=work.steps,
            guidance_scale=work.guidance_scale,
            seed=seed,
            model=work.family,
        )
        for seed in range(batch)
    ]
    cuda = device == "cuda"
    started = time.monotonic()
    first = provider.render(requests)  # the compile warm-up (if any) runs inside, timed apart
    if cuda:
        torch.cuda.synchronize()
    warmup_s = time.monotonic() - started
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    calls = []
    for _ in range(repeats):
        rendered = provider.render(requests)
        if cuda:
            torch.cuda.synchronize()
        calls.append(rendered.seconds)
    per_call = statistics.median(calls)
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    return Row(work.name, mode, batch, per_call / batch, per_call, warmup_s, first.warmup_s, peak, first.device)


def run(args: argparse.Namespace) -> list[Row]:
    import diffusers
    import torch

    diffusers.utils.logging.set_verbosity_error()  # the character tokenizers truncate long prompts: expected here

    device = "cpu" if args.tiny else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_generation: no CUDA device (torch.cuda.is_available() is False); --tiny runs on the CPU")
    if args.tiny:
        torch.set_num_threads(min(2, torch.get_num_threads()))
    rows: list[Row] = []
    plan = workloads(args.tiny)
    with tempfile.TemporaryDirectory(prefix="gpu-generation-") as folder:
        for name in args.models:
            work = plan[name]
            pipe = BUILDERS[name](device, getattr(torch, work.dtype), args.tiny, Path(folder) / name)
            for mode in args.modes:  # eager first: compiling replaces the denoiser in place
                for batch in args.batches:
                    rows.append(
                        measure(work, pipe, device=device, batch=batch, mode=mode, compile_mode=args.compile_mode, backend=args.backend, repeats=args.repeats)
                    )
                    print(format_row(rows[-1]), flush=True)
            del pipe
            torch._dynamo.reset()  # compiled graphs keep the modules they were traced from alive
            gc.collect()
            if device == "cuda":
                torch.cuda.empty_cache()
    return rows


# -- the table -----------------------------------------------------------------------------------

HEADER = f"{'model':<24}{'mode':<10}{'batch':>6}{'s/image':>10}{'s/call':>10}{'warm-up s':>11}{'compile s':>11}{'peak GiB':>10}"


def format_row(row: Row) -> str:
    compile_s = f"{row.compile_warmup_s:.1f}" if row.compile_warmup_s is not None else "-"
    peak = f"{row.peak_gib:.1f}" if row.peak_gib is not None else "-"
    return (
        f"{row.model:<24}{row.mode:<10}{row.batch:>6}{row.seconds_per_image:>10.3f}{row.seconds_per_call:>10.3f}{row.warmup_s:>11.1f}{compile_s:>11}{peak:>10}"
    )


def describe_machine(tiny: bool) -> str:
    import diffusers
    import torch

    if not tiny and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        where = f"GPU {props.name} ({props.total_memory / 2**30:.0f} GiB), CUDA {torch.version.cuda}"
    else:
        where = f"CPU {platform.processor() or platform.machine()} ({torch.get_num_threads()} threads), toy sizes"
    return f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {where}, torch {torch.__version__}, diffusers {diffusers.__version__}"


def table(rows: list[Row], args: argparse.Namespace) -> str:
    plan = workloads(args.tiny)
    lines = [f"benchmarks/gpu_generation.py{' --tiny' if args.tiny else ''}: {describe_machine(args.tiny)}"]
    for name in args.models:
        work = plan[name]
        lines.append(f"{work.name}: {work.size}x{work.size}, {work.steps} steps, guidance {work.guidance_scale}, {work.dtype}, random weights")
    if "compiled" in args.modes:
        lines.append(f"compiled: torch.compile(mode={args.compile_mode!r}, backend={args.backend!r}, dynamic=False) of the UNet / transformer")
    lines += [HEADER, *(format_row(r) for r in rows)]
    lines.append(
        "s/image: median seconds of one pipeline call / batch; warm-up s: the first, untimed call "
        "(with compile: its compilation, also shown alone as compile s); peak GiB: torch.cuda.max_memory_allocated"
    )
    if not args.tiny:
        goals = {"SDXL base 1.0": 1.5, "FLUX.1-schnell": 0.6}
        for row in rows:
            if row.batch == 1 and row.model in goals:
                verdict = "meets" if row.seconds_per_image <= goals[row.model] else "misses"
                lines.append(f"{row.model} {row.mode} batch 1: {row.seconds_per_image:.3f} s/image {verdict} the {goals[row.model]} s goal")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--tiny", action="store_true", help="toy sizes on the CPU (the suite's smoke run)")
    parser.add_argument("--models", type=lambda s: s.split(","), default=["sdxl", "flux"], help="sdxl,flux")
    parser.add_argument("--batches", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4])
    parser.add_argument("--modes", type=lambda s: s.split(","), default=["eager", "compiled"], help="eager,compiled")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per row (default 3; --tiny 1)")
    parser.add_argument(
        "--compile-mode",
        default="default",
        choices=["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"],
        help="torch.compile mode of the compiled rows (max-autotune tunes every matrix multiplication per shape first: a much longer warm-up)",
    )
    parser.add_argument("--backend", default=None, help="torch.compile backend (default inductor; --tiny eager)")
    args = parser.parse_args(argv)
    unknown = [m for m in args.models if m not in BUILDERS] + [m for m in args.modes if m not in ("eager", "compiled")]
    if unknown:
        parser.error(f"unknown model or mode {unknown[0]!r}")
    args.repeats = args.repeats or (1 if args.tiny else 3)
    args.backend = args.backend or ("eager" if args.tiny else "inductor")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(HEADER, flush=True)
    rows = run(args)
    print()
    print(table(rows, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
