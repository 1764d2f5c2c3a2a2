"""benchmarks/gpu_generation.py --tiny: the benchmark's whole code path (SDXL- and
FLUX-shaped pipelines built from configs with random weights, offline tokenizers, the
provider's render, eager and torch.compile, batch 1 and 4) at toy size on the CPU, run as
the command an operator types. Nothing is downloaded (HF_HUB_OFFLINE=1)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("diffusers", reason="the local extra is not installed")
pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^(SDXL \(tiny\)|FLUX\.1-schnell \(tiny\))\s+(eager|compiled)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\S+)\s+(\S+)$")


def test_tiny_benchmark_prints_the_full_table() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_generation.py"), "--tiny"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout.split("\n\n", 1)[1]  # the live rows, a blank line, then the final table
    assert table.startswith("benchmarks/gpu_generation.py --tiny: ") and "toy sizes" in table.splitlines()[0]
    rows = [m.groups() for m in map(ROW.match, table.splitlines()) if m]
    assert [(r[0], r[1], int(r[2])) for r in rows] == [
        (model, mode, batch) for model in ("SDXL (tiny)", "FLUX.1-schnell (tiny)") for mode in ("eager", "compiled") for batch in (1, 4)
    ]
    for model, mode, _batch, per_image, per_call, _warmup, compile_s, peak in rows:
        assert 0 < float(per_image) <= float(per_call)
        assert (compile_s != "-") == (mode == "compiled"), (model, mode, compile_s)  # warm-up recorded apart
        assert peak == "-"  # no GPU: no peak memory figure is made up


def test_unknown_model_is_one_clear_line() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_generation.py"), "--tiny", "--models", "sd3"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 2 and "unknown model or mode 'sd3'" in done.stderr and "Traceback" not in done.stderr


def test_full_size_configs_build_the_published_architectures() -> None:
    """The full-size configs, built on the meta device (shapes only, no memory), have the
    published sizes: SDXL's UNet 2.6 B parameters and its two text encoders 817 M together
    (SDXL paper, https://arxiv.org/abs/2307.01952 section 2.1); FLUX.1's transformer 12 B
    (https://huggingface.co/black-forest-labs/FLUX.1-schnell model card)."""
    import torch
    from diffusers import AutoencoderKL, FluxTransformer2DModel, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, T5Config, T5EncoderModel

    sys.path.insert(0, str(ROOT))
    from benchmarks import gpu_generation as bench

    def size(module: torch.nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    with torch.device("meta"):
        unet = size(UNet2DConditionModel(**bench.SDXL_UNET))
        encoders = size(CLIPTextModel(CLIPTextConfig(**bench.SDXL_TEXT_ENCODER))) + size(
            CLIPTextModelWithProjection(CLIPTextConfig(**bench.SDXL_TEXT_ENCODER_2))
        )
        transformer = size(FluxTransformer2DModel(**bench.FLUX_TRANSFORMER))
        t5 = size(T5EncoderModel(T5Config(**bench.FLUX_TEXT_ENCODER_2)))
        vaes = [size(AutoencoderKL(**bench.SDXL_VAE)), size(AutoencoderKL(**bench.FLUX_VAE))]
    assert round(unet / 1e9, 1) == 2.6
    assert round(encoders / 1e6) in (817, 818)
    assert round(transformer / 1e9) == 12
    assert t5 > 4e9 and all(80e6 < v < 90e6 for v in vaes)  # T5 v1.1 XXL's encoder half; 84 M-parameter VAEs
