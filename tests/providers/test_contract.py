"""ONE table-driven contract test that every HTTP provider passes against its loopback
server (tests/providers/servers.py): success with a real photo, and every failure the
contract lists, each with the right classification (../shared/contracts/providers.md,
"Common rules")."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from PIL import Image

from core import settings as cfg
from core.domain import GenerationRequest
from core.errors import ProviderError
from providers.base import Provider
from providers.download import SafeDownloader
from providers.registry import provider_class
from tests.providers import servers as srv

TIMEOUT_S = 1.0
PROMPT = "a ceramic mug of coffee on an oak table, soft natural light"
REQUEST = GenerationRequest(prompt=PROMPT, negative_prompt="blurry, watermark", width=512, height=384,
                            num_inference_steps=30, guidance_scale=7.5, seed=123)


@dataclass(frozen=True)
class Case:
    """How to aim one provider at its loopback server, and what it must send and cost."""

    server: type[srv.ProtocolServer]
    config: type[cfg.ProviderConfig]
    settings: Callable[[str], dict[str, Any]]
    secrets: dict[str, str]
    cost_usd: float
    sent: Callable[[srv.Request], None]  # asserts on the generation request the server got
    overrides: dict[str, str] = field(default_factory=dict)  # mode -> expected error class
    seed: int | None = 123


def _hf_sent(r: srv.Request) -> None:
    body = r.json()
    assert r.path == "/models/stabilityai/stable-diffusion-xl-base-1.0"
    assert r.headers["authorization"] == "Bearer hf_test_token" and r.headers["accept"] == "image/png"
    assert body["inputs"] == PROMPT
    assert body["parameters"] == {"negative_prompt": "blurry, watermark", "height": 384, "width": 512,
                                  "num_inference_steps": 30, "guidance_scale": 7.5, "seed": 123}


def _replicate_sent(r: srv.Request) -> None:
    assert r.path == "/v1/models/stability-ai/stable-diffusion/predictions"
    assert r.headers["authorization"] == "Bearer r8_test_token" and r.headers["prefer"].startswith("wait=")
    data = r.json()["input"]
    assert data["prompt"] == PROMPT and data["seed"] == 123 and (data["width"], data["height"]) == (512, 384)


def _stability_sent(r: srv.Request) -> None:
    form = r.form()
    assert r.path == "/v2beta/stable-image/generate/ultra" and r.headers["accept"] == "image/*"
    assert r.headers["content-type"].startswith("multipart/form-data")
    assert r.headers["authorization"] == "Bearer sk-test-key"
    assert form["prompt"] == PROMPT and form["aspect_ratio"] == "5:4" and form["seed"] == "123"
    assert form["negative_prompt"] == "blurry, watermark" and form["output_format"] == "png"


def _a1111_sent(r: srv.Request) -> None:
    data = r.json()
    assert r.path == "/sdapi/v1/txt2img" and r.headers["authorization"] == "Basic " + base64.b64encode(b"artist:s3cret").decode()
    assert data["prompt"] == PROMPT and data["seed"] == 123 and data["steps"] == 30 and data["cfg_scale"] == 7.5
    assert data["override_settings"] == {"sd_model_checkpoint": "sd_xl_base_1.0"}


def _flux_sent(r: srv.Request) -> None:
    data = r.json()
    assert r.path == "/generate" and data["prompt"] == PROMPT and data["seed"] == 123
    assert data["num_inference_steps"] == 10 and (data["width"], data["height"]) == (512, 384)


def _openai_sent(r: srv.Request) -> None:
    data = r.json()
    assert r.path == "/v1/images/generations" and r.headers["authorization"] == "Bearer sk-test-key"
    assert data["prompt"] == PROMPT and data["model"] == "gpt-image-1" and data["n"] == 1
    assert data["size"] == "1536x1024" and data["quality"] == "low"


def _fal_sent(r: srv.Request) -> None:
    data = r.json()
    assert r.path == "/fal-ai/flux/schnell" and r.headers["authorization"] == "Key fal-test-key"
    assert data["prompt"] == PROMPT and data["seed"] == 123 and data["image_size"] == {"width": 512, "height": 384}


def _picsum_sent(r: srv.Request) -> None:
    assert r.path == "/seed/123/512/384" and "authorization" not in r.headers


CASES: dict[str, Case] = {
    "huggingface": Case(
        srv.HuggingFaceServer, cfg.HuggingFaceConfig,
        lambda url: {"endpoint_url": f"{url}/models/stabilityai/stable-diffusion-xl-base-1.0", "hub_url": url},
        {"huggingface_token": "hf_test_token"}, 0.02, _hf_sent),
    "replicate": Case(
        srv.ReplicateServer, cfg.ReplicateConfig, lambda url: {"base_url": url, "poll_interval_s": 0.05},
        {"replicate_api_token": "r8_test_token"}, 0.05, _replicate_sent),
    "stability": Case(
        srv.StabilityServer, cfg.StabilityConfig, lambda url: {"base_url": url},
        {"stability_api_key": "sk-test-key"}, 0.08, _stability_sent),
    "automatic1111": Case(
        srv.A1111Server, cfg.Automatic1111Config,
        lambda url: {"enabled": True, "base_url": url, "model": "sd_xl_base_1.0"},
        {"automatic1111_auth": "artist:s3cret"}, 0.0, _a1111_sent),
    "flux_studio": Case(
        srv.FluxStudioServer, cfg.FluxStudioConfig, lambda url: {"enabled": True, "base_url": url},
        {}, 0.0, _flux_sent),
    "openai": Case(
        srv.OpenAIServer, cfg.OpenAIConfig, lambda url: {"base_url": f"{url}/v1"},
        {"openai_api_key": "sk-test-key"}, round(50 * 5 / 1e6 + 1056 * 40 / 1e6, 6), _openai_sent, seed=None),
    "fal": Case(
        srv.FalServer, cfg.FalConfig, lambda url: {"queue_url": url, "poll_interval_s": 0.05},
        {"fal_key": "fal-test-key"}, round(0.003 * 512 * 384 / 1e6, 6), _fal_sent),
    "picsum": Case(
        srv.PicsumServer, cfg.PicsumConfig, lambda url: {"base_url": url}, {}, 0.0, _picsum_sent),
}

#: mode -> (error class, HTTP status or None, retry_after seconds or None)
EXPECTED: dict[str, tuple[str, int | None, float | None]] = {
    "400": ("rejected", 400, None),
    "401": ("auth_billing", 401, None),
    "402": ("auth_billing", 402, None),
    "403": ("auth_billing", 403, None),
    "422": ("rejected", 422, None),
    "429": ("transient", 429, float(srv.RETRY_AFTER_S)),
    "500": ("transient", 500, None),
    "503": ("transient", 503, None),
    "timeout": ("transient", None, None),
    "garbage": ("invalid_output", None, None),
    "truncated": ("invalid_output", None, None),
    "filtered": ("content_filtered", None, None),  # status: the protocol's (200 + flag, 400 moderation ...)
}
MODES = ["ok", *EXPECTED]


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, srv.ProtocolServer]]:
    running: dict[str, srv.ProtocolServer] = {}
    # the photos every server answers with, made before any timed request
    srv.photo(512, 384), srv.photo(512, 384, fmt="JPEG"), srv.photo(1536, 1024)
    srv.photo(*srv.stability_size("5:4")), srv.photo(*srv.stability_size("5:4"), "chelsea")
    try:
        for name, case in CASES.items():
            server = case.server(hang_s=TIMEOUT_S * 2.5)
            if isinstance(server, srv.A1111Server):
                server.auth = "artist:s3cret"
            running[name] = server.__enter__()
        yield running
    finally:
        for server in running.values():
            server.__exit__(None, None, None)


def make_provider(name: str, server: srv.ProtocolServer, **settings: Any) -> Provider:
    case = CASES[name]
    config = case.config(**{"timeout_s": TIMEOUT_S, **case.settings(server.url), **settings})
    secrets = cfg.Secrets(_env_file=None, **case.secrets)  # type: ignore[call-arg]
    downloader = SafeDownloader(test_base_url=server.url, timeout_s=5.0)
    return provider_class(name)(config=config, secrets=secrets, downloader=downloader)


def _is_photo(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        colours = image.convert("RGB").resize((32, 32)).getcolors(4096)
        assert colours is not None and len(colours) > 200, "not a photo"
        return image.size


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(CASES))
def test_provider_contract(name: str, mode: str, servers: dict[str, srv.ProtocolServer]) -> None:
    case, server = CASES[name], servers[name]
    server.reset()
    server.script.append(mode)
    # only the timeout case runs on the short timeout: a loaded machine must not fail the others
    provider = make_provider(name, server, **({} if mode == "timeout" else {"timeout_s": 60.0}))
    assert provider.name == name and provider.display_name and provider.model
    try:
        if mode == "ok":
            result = provider.generate(REQUEST)
            assert result.provider == name and result.model == provider.model
            assert result.cost_usd == pytest.approx(case.cost_usd)
            assert result.is_placeholder == (name == "picsum")
            width, height = _is_photo(result.image)
            assert (result.width, result.height) == (width, height)
            assert abs(width / height - 512 / 384) / (512 / 384) < 0.25
            assert result.seed == case.seed and result.latency_s > 0
            case.sent(server.requests[0])
            return
        error_class, status, retry_after = EXPECTED[mode]
        error_class = case.overrides.get(mode, error_class)
        with pytest.raises(ProviderError) as caught:
            provider.generate(REQUEST)
        error = caught.value
        assert error.error_class == error_class, f"{name} {mode}: {error!r}"
        assert error.provider == name and error.model == provider.model
        if mode != "filtered":
            assert error.status_code == status, f"{name} {mode}: {error}"
        if retry_after is not None:
            assert error.retry_after == pytest.approx(retry_after)
        if mode == "timeout":
            assert "timeout" in str(error).lower()
        if name == "huggingface" and mode == "503":
            assert error.retry_after == 20.0 and "currently loading" in str(error)  # model loading: estimated_time
        for secret in case.secrets.values():
            assert secret not in str(error)
    finally:
        provider.close()


@pytest.mark.parametrize("name", ["huggingface", "replicate", "stability", "automatic1111", "flux_studio", "openai",
                                  "fal", "diffusers", "picsum", "placeholder"])
def test_provider_metadata(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every registered provider declares its metadata as class attributes (Apprise-style)."""
    from providers.registry import PROVIDERS

    for variable in ("HUGGINGFACE_TOKEN", "HF_TOKEN", "REPLICATE_API_TOKEN", "STABILITY_API_KEY", "OPENAI_API_KEY",
                     "FAL_KEY", "CIVITAI_API_TOKEN", "AUTOMATIC1111_AUTH"):
        monkeypatch.delenv(variable, raising=False)

    cls = provider_class(name)
    assert name in PROVIDERS and cls.name == name and cls.__name__.endswith("Provider")
    assert cls.display_name and isinstance(cls.models, tuple) and isinstance(cls.prices_usd, dict)
    assert set(cls.secret_settings) <= set(cfg.Secrets.model_fields)
    assert cls.is_placeholder == (name in ("picsum", "placeholder"))
    config = cfg.Settings().provider_config(name)
    assert type(config).__name__ != "ProviderConfig"  # a typed config class of its own
    assert all(price >= 0 for price in cls.prices_usd.values())
    if name in CASES:  # a missing key is reported by check(), before any network call
        provider = provider_class(name)(config=config, secrets=cfg.Secrets(_env_file=None))  # type: ignore[call-arg]
        if cls.secret_settings and name != "automatic1111":
            outcome = provider.check()
            assert not outcome.ok and "missing" in outcome.detail
        provider.close()
