"""``content-pipeline providers list|check`` and ``models pull civitai:<id>`` against loopback servers."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.providers import servers as srv

runner = CliRunner()
KEYS = {
    "HUGGINGFACE_TOKEN": "hf_test_token",
    "REPLICATE_API_TOKEN": "r8_test_token",
    "STABILITY_API_KEY": "sk-test-key",
    "OPENAI_API_KEY": "sk-test-key",
    "FAL_KEY": "fal-test-key",
    "AUTOMATIC1111_AUTH": "artist:s3cret",
}


@pytest.fixture
def fleet() -> Iterator[dict[str, srv.ProtocolServer]]:
    started = {
        "huggingface": srv.HuggingFaceServer(),
        "replicate": srv.ReplicateServer(),
        "stability": srv.StabilityServer(),
        "openai": srv.OpenAIServer(),
        "automatic1111": srv.A1111Server(auth="artist:s3cret"),
        "flux_studio": srv.FluxStudioServer(),
        "picsum": srv.PicsumServer(),
    }
    for server in started.values():
        server.__enter__()
    yield started
    for server in started.values():
        server.__exit__(None, None, None)


def fleet_config(make_config, fleet, monkeypatch, **keys: str) -> Path:  # type: ignore[no-untyped-def]
    for name, value in {**KEYS, **keys}.items():
        monkeypatch.setenv(name, value)
    url = {name: server.url for name, server in fleet.items()}
    return make_config(
        chain=["huggingface", "replicate", "stability", "openai", "automatic1111", "flux_studio", "fal", "picsum", "placeholder"],
        providers={
            "huggingface": {"endpoint_url": f"{url['huggingface']}/models/x", "hub_url": url["huggingface"]},
            "replicate": {"base_url": url["replicate"]},
            "stability": {"base_url": url["stability"]},
            "openai": {"base_url": f"{url['openai']}/v1"},
            "automatic1111": {"enabled": True, "base_url": url["automatic1111"]},
            "flux_studio": {"enabled": True, "base_url": url["flux_studio"]},
            "picsum": {"base_url": url["picsum"]},
            "download": {"test_base_url": url["picsum"]},
        },
    )


def test_providers_list_shows_models_prices_and_secret_state(make_config, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret-value")
    make_config(chain=["openai", "huggingface", "placeholder"], providers={"huggingface": {"prices_usd": {"*": 0.025}}})
    result = runner.invoke(app, ["providers", "list", "--all"])
    assert result.exit_code == 0, result.output
    out = result.output
    for name in ("openai", "huggingface", "replicate", "stability", "automatic1111", "flux_studio", "fal", "diffusers", "picsum", "placeholder"):
        assert name in out
    assert "gpt-image-1" in out and "low/1024x1024" in out
    from cli.providers import _prices
    from providers.registry import provider_class

    openai_cls, replicate_cls = provider_class("openai"), provider_class("replicate")
    shown = _prices(openai_cls, openai_cls.Config())
    assert "low/1024x1024 0.011" in shown and "standard/1024x1792 0.08" in shown and "hd/1792x1024 0.12" in shown
    assert "https://platform.openai.com/docs/pricing" in shown
    assert "0.0014/s (gpu-a100-large)" in _prices(replicate_cls, replicate_cls.Config())
    assert "0.025" in out  # the configured price table wins
    assert "OPENAI_API_KEY=set" in out and "sk-very-secret-value" not in out
    assert "placeholder (never" in out
    assert out.index("openai") < out.index("huggingface")  # chain order


def test_providers_check_all_green(make_config, fleet, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    fleet_config(make_config, fleet, monkeypatch)
    result = runner.invoke(app, ["providers", "check"])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok") >= 9 and "FAILED" not in result.output
    assert "pipeline-bot" in result.output and "42.5 credits" in result.output and "2 checkpoints" in result.output
    generated = [r.path for s in fleet.values() for r in s.requests if r.method == "POST"]  # nothing generated, nothing spent
    assert generated == []


def test_providers_check_reports_bad_and_missing_credentials(make_config, fleet, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    fleet_config(make_config, fleet, monkeypatch, OPENAI_API_KEY="sk-wrong-key", STABILITY_API_KEY="sk-wrong-key")
    monkeypatch.delenv("REPLICATE_API_TOKEN")
    from wiring.runtime import reset_runtime

    reset_runtime()
    result = runner.invoke(app, ["providers", "check", "openai", "stability", "replicate", "flux_studio"])
    assert result.exit_code == 1
    out = result.output
    assert out.count("FAILED") == 3 and "HTTP 401" in out and "missing REPLICATE_API_TOKEN" in out
    assert "sk-wrong-key" not in out
    assert runner.invoke(app, ["providers", "check", "nope"]).exit_code == 2


@pytest.fixture
def civitai() -> Iterator[srv.CivitaiServer]:
    payload = bytes(range(256)) * 4096  # 1 MiB "safetensors"
    with srv.CivitaiServer(payload) as server:
        yield server  # type: ignore[misc]


def civitai_config(make_config, server: srv.CivitaiServer, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    return make_config(providers={"civitai": {"base_url": server.url, "timeout_s": 10}, "diffusers": {"models_dir": str(tmp_path / "models")}})


def test_models_pull_resumes_and_verifies_sha256(make_config, civitai, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CIVITAI_API_TOKEN", "civitai-test-token")
    civitai_config(make_config, civitai, tmp_path)
    civitai.cut_after = 300_000
    first = runner.invoke(app, ["models", "pull", "civitai:128713"])
    assert first.exit_code == 1 and "run the command again to resume" in first.output
    part = tmp_path / "models" / "loras" / "tiny_test_lora.safetensors.part"
    assert part.exists() and 0 < part.stat().st_size < len(civitai.payload)
    kept = part.stat().st_size
    second = runner.invoke(app, ["models", "pull", "civitai:128713"])
    assert second.exit_code == 0, second.output
    target = tmp_path / "models" / "loras" / "tiny_test_lora.safetensors"
    assert target.read_bytes() == civitai.payload and not part.exists()
    assert civitai.ranges == [None, f"bytes={kept}-"]  # the second request resumed where the first stopped
    assert "resumed at" in second.output and "verified" in second.output and "loras:" in second.output
    third = runner.invoke(app, ["models", "pull", "civitai:128713"])
    assert third.exit_code == 0 and "already present" in third.output
    assert "civitai-test-token" not in first.output + second.output + third.output


def test_models_pull_refuses_a_bad_checksum(make_config, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CIVITAI_API_TOKEN", "civitai-test-token")
    payload = b"not the published file" * 1000
    with srv.CivitaiServer(payload, sha256=hashlib.sha256(b"other").hexdigest()) as server:
        civitai_config(make_config, server, tmp_path)  # type: ignore[arg-type]
        result = runner.invoke(app, ["models", "pull", "civitai:128713"])
    assert result.exit_code == 1 and "SHA-256 mismatch" in result.output
    assert list((tmp_path / "models" / "loras").iterdir()) == []


def test_models_pull_errors(make_config, civitai, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("CIVITAI_API_TOKEN", raising=False)
    civitai_config(make_config, civitai, tmp_path)
    no_token = runner.invoke(app, ["models", "pull", "civitai:128713"])
    assert no_token.exit_code == 1 and "CIVITAI_API_TOKEN" in no_token.output
    assert runner.invoke(app, ["models", "pull", "civitai:999"]).exit_code == 1
    bad = runner.invoke(app, ["models", "pull", "hf:foo"])
    assert bad.exit_code == 2 and "civitai:<model-version-id>" in bad.output
