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
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_generation.py"), "--tiny"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=1800, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout.split("\n\n", 1)[1]  # the live rows, a blank line, then the final table
    assert table.startswith("benchmarks/gpu_generation.py --tiny: ") and "toy sizes" in table.splitlines()[0]
    rows = [m.groups() for m in map(ROW.match, table.splitlines()) if m]
    assert [(r[0], r[1], int(r[2])) for r in rows] == [
        (model, mode, batch) for model in ("SDXL (tiny)", "FLUX.1-schnell (tiny)")
        for mode in ("eager", "compiled") for batch in (1, 4)]
    for model, mode, _batch, per_image, per_call, _warmup, compile_s, peak in rows:
        assert 0 < float(per_image) <= float(per_call)
        assert (compile_s != "-") == (mode == "compiled"), (model, mode, compile_s)  # warm-up recorded apart
        assert peak == "-"  # no GPU: no peak memory figure is made up


def test_unknown_model_is_one_clear_line() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_generation.py"), "--tiny", "--models", "sd3"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 2 and "unknown model or mode 'sd3'" in done.stderr and "Traceback" not in done.stderr
