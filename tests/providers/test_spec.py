"""What every provider module declares (providers/spec.py): request mapping, price lookup,
provider configs validated through the registry, secrets from the environment only, and
no import cycle between the settings and the providers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from config import settings as cfg
from config.secrets import Secrets
from domain.model import GenerationRequest
from domain.errors import ConfigError
from providers.spec import ModelSpec, map_request, nearest_size, price_from_table, size_for_ratio

ROOT = Path(__file__).resolve().parents[2]


def test_sizes_are_mapped_to_the_nearest_allowed_and_noted() -> None:
    request = GenerationRequest(prompt="x", width=1024, height=1792, num_inference_steps=70, guidance_scale=9.5, negative_prompt="blurry")
    choices = map_request(ModelSpec(side_choices=tuple(range(64, 1025, 64)), steps=(1, 500), guidance=(1, 20)), request)
    assert (choices.width, choices.height) == (576, 1024) and choices.notes == ("size 1024x1792 -> 576x1024",)
    ratio = map_request(ModelSpec(aspect_ratios=("1:1", "16:9", "9:16"), steps=(1, 4), guidance=None, negative_prompt=False), request)
    assert ratio.aspect_ratio == "9:16" and ratio.size_label == "9:16" and ratio.num_inference_steps == 4
    assert ratio.guidance_scale is None and ratio.negative_prompt is None
    assert ratio.notes == (
        "size 1024x1792 -> aspect ratio 9:16",
        "num_inference_steps 70 -> 4 (allowed 1..4)",
        "guidance_scale 9.5 dropped (the model takes none)",
        "negative_prompt dropped (the model takes none)",
    )
    ranged = map_request(ModelSpec(side_range=(256, 1440), side_multiple=32, steps=None, guidance=(1.5, 5.0)), request)
    assert (ranged.width, ranged.height) == (832, 1440) and ranged.num_inference_steps is None
    assert ranged.guidance_scale == 5.0
    capped = map_request(ModelSpec(side_range=(64, 4096), side_multiple=64, max_pixels=1_048_576), request)
    assert capped.width * capped.height <= 1_048_576 and capped.width % 64 == 0 and capped.height > capped.width
    same = map_request(ModelSpec(), GenerationRequest(prompt="x", width=1024, height=1024))
    assert same.notes == () and (same.width, same.height) == (1024, 1024)


def test_nearest_size_prefers_the_aspect_then_the_area() -> None:
    assert nearest_size(1792, 1024, ((1024, 1024), (1536, 1024), (1024, 1536))) == (1536, 1024)
    assert nearest_size(512, 512, ((256, 256), (512, 512), (1024, 1024))) == (512, 512)
    assert size_for_ratio("16:9") == (1344, 768) and size_for_ratio("1:1") == (1024, 1024)


def test_price_lookup_by_key_parts() -> None:
    table = {"m": {"hd/1024x1792": 0.12, "hd": 0.08, "1024x1024": 0.05, "default": 0.01}, "*": 0.5}
    assert price_from_table(table, "m", "ultra-hd/hd/1024x1792") == 0.12
    assert price_from_table(table, "m", "hd/1792x1024") == 0.08
    assert price_from_table(table, "m", "standard/low/1024x1024") == 0.05
    assert price_from_table(table, "m", "standard/low/512x512") == 0.01
    assert price_from_table(table, "other", "hd") == 0.5 and price_from_table({}, "m", "hd") is None


def test_provider_sections_are_validated_by_each_providers_config(tmp_path: Path) -> None:
    path = tmp_path / "content-pipeline.yaml"
    path.write_text("chain: [bfl, placeholder]\nproviders:\n  bfl:\n    safety_tolerance: 9\n")
    with pytest.raises(ConfigError) as caught:
        cfg.load_settings(path)
    assert "providers.bfl.safety_tolerance" in str(caught.value) and ":4" in str(caught.value)
    path.write_text("providers:\n  nope: {}\n")
    with pytest.raises(ConfigError, match="nope"):
        cfg.load_settings(path)
    version = "ab" * 32
    path.write_text(f"chain: [bfl, placeholder]\nproviders:\n  bfl: {{model: flux-dev}}\n  replicate: {{versions: {{a/b: {version}}}}}\n")
    settings = cfg.load_settings(path)
    assert settings.providers.bfl.model == "flux-dev" and settings.provider_config("replicate").versions == {"a/b": version}


@pytest.mark.parametrize("key", ["api_token", "REPLICATE_API_TOKEN", "bfl_api_key", "auth"])
def test_a_provider_secret_in_the_file_is_refused(tmp_path: Path, key: str) -> None:
    path = tmp_path / "content-pipeline.yaml"
    path.write_text(f"providers:\n  replicate:\n    {key}: r8_abc\n")
    with pytest.raises(ConfigError, match="is a secret"):
        cfg.load_settings(path)


def test_secrets_come_from_the_environment_and_dotenv_and_empty_is_no_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("BFL_API_KEY", "FAL_KEY", "HUGGINGFACE_TOKEN", "HF_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text("FAL_KEY=fal-from-dotenv\nHF_TOKEN=hf_from_dotenv\n")
    monkeypatch.setenv("BFL_API_KEY", "   ")
    secrets = Secrets()
    assert secrets.lookup(["FAL_KEY"]) == "fal-from-dotenv"
    assert secrets.lookup(["HUGGINGFACE_TOKEN", "HF_TOKEN"]) == "hf_from_dotenv"
    assert secrets.lookup(["BFL_API_KEY"]) is None  # blank is not a key
    monkeypatch.setenv("FAL_KEY", "fal-from-env")
    assert Secrets().lookup(["FAL_KEY"]) == "fal-from-env"  # the environment wins
    assert "fal-from-env" in Secrets().known_values() and Secrets().masked()["FAL_KEY"] == "fal***"


def test_no_import_cycle_between_settings_and_providers() -> None:
    """The providers never import config.settings; config.settings composes the registry's section."""
    code = (
        "import sys, providers.registry as r, providers.download, providers.civitai\n"
        "for name in r.PROVIDERS: r.provider_class(name)\n"
        "assert 'config.settings' not in sys.modules, 'a provider module imported config.settings'\n"
        "print(' '.join(r.PROVIDERS))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    from providers.registry import PROVIDERS

    assert done.stdout.split() == list(PROVIDERS)  # every registered provider was loaded


def test_the_output_check_compares_with_the_size_asked_for() -> None:
    from domain.errors import InvalidOutputError
    from providers.base import validate_image
    from tests.providers.servers.common import photo

    square = photo(1024, 1024)
    assert validate_image(square, provider="p", model="m", expected=(1024, 1024))[:2] == (1024, 1024)
    with pytest.raises(InvalidOutputError, match="does not match the requested 576x1024"):
        validate_image(square, provider="p", model="m", expected=(576, 1024))  # a square for a portrait
    assert validate_image(photo(1152, 896), provider="p", model="m", expected=(1280, 1024))  # 5:4 as ~1 MP
