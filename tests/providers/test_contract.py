"""ONE table-driven contract test that every HTTP provider passes against its loopback
server (tests/providers/servers/<name>.py, found by convention): success with a real
photo, every failure with the right classification, and every format x quality tier
of the product reaching the provider as a request the (strict) server accepts.

Classification rules (providers/base.py): 401 / 402 / 403 auth_billing, 400 / 422
rejected, 429 / 5xx / timeouts transient, bad bytes invalid_output, the provider's
content-filter signal content_filtered.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from config import settings as cfg
from config.secrets import Secrets
from domain.model import GenerationRequest, ImageFormat, Quality
from domain.errors import ProviderError
from providers.base import Provider
from providers.download import SafeDownloader
from providers.registry import PROVIDERS, provider_class
from tests.providers import servers as srv

TIMEOUT_S = 1.0
REQUEST = GenerationRequest(
    prompt=srv.common.PROMPT, negative_prompt=srv.common.NEGATIVE, width=512, height=384, num_inference_steps=30, guidance_scale=7.5, seed=123
)
CASES = srv.cases()

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


def secrets_of(values: dict[str, str]) -> Secrets:
    """Secrets holding exactly ``values`` (environment variable -> value)."""
    return Secrets(_env_file=None, provider_secrets=values)  # type: ignore[call-arg]


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, srv.ProtocolServer]]:
    running: dict[str, srv.ProtocolServer] = {}
    # the photos the servers answer with, made before any timed request
    srv.photo(512, 384), srv.photo(512, 384, fmt="JPEG"), srv.photo(1536, 1024), srv.photo(680, 512)
    srv.photo(*srv.stability_size("5:4")), srv.photo(*srv.stability_size("5:4"), "chelsea")
    try:
        for name, case in CASES.items():
            running[name] = case.server(hang_s=TIMEOUT_S * 2.5).__enter__()
        yield running
    finally:
        for server in running.values():
            server.__exit__(None, None, None)


def make_provider(name: str, server: srv.ProtocolServer, **settings: Any) -> Provider:
    case = CASES[name]
    cls = provider_class(name)
    config = cls.Config(**{"timeout_s": TIMEOUT_S, **case.settings(server.url), **settings})
    downloader = SafeDownloader(test_base_url=server.url, timeout_s=5.0)
    return cls(config=config, secrets=secrets_of(case.secrets), downloader=downloader)


def _is_photo(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        colours = image.convert("RGB").resize((32, 32)).getcolors(4096)
        assert colours is not None and len(colours) > 200, "not a photo"
        return image.size


def test_every_http_provider_has_a_contract_case() -> None:
    local = {"placeholder", "diffusers"}  # no HTTP protocol: tested in their own modules
    assert set(CASES) == set(PROVIDERS) - local


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
            assert result.mapped_size and result.metadata["requested_size"] == "512x384"
            paid = [r for r in server.requests if case.is_generation(r)]
            assert len(paid) == 1  # one paid call per image
            case.sent(paid[0])
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
        for secret in case.secrets.values():
            assert secret not in str(error)
    finally:
        provider.close()


@pytest.mark.parametrize("quality", list(Quality))
@pytest.mark.parametrize("fmt", list(ImageFormat))
@pytest.mark.parametrize("name", list(CASES))
def test_every_format_and_tier_is_an_accepted_request(name: str, fmt: ImageFormat, quality: Quality, servers: dict[str, srv.ProtocolServer]) -> None:
    """The product's requests (1024x1024 / 1024x1792 / 1792x1024 at 30 / 50 / 70 steps,
    guidance 7.5 / 8.5 / 9.5) are mapped onto what each model accepts: the strict server
    takes them, and the image matches the size actually asked for."""
    server = servers[name]
    server.reset()
    width, height = fmt.size
    request = GenerationRequest(
        prompt="a lighthouse on a cliff at dawn",
        width=width,
        height=height,
        num_inference_steps=quality.num_inference_steps,
        guidance_scale=quality.guidance_scale,
        seed=7,
        quality=quality.value,
    )
    provider = make_provider(name, server, timeout_s=20.0)
    try:
        result = provider.generate(request)
    finally:
        provider.close()
    mapped = provider.map(request)
    assert abs(result.width / result.height - mapped.width / mapped.height) < 0.05
    assert (result.width > result.height) == (width > height) and (result.width < result.height) == (width < height)
    assert result.mapped_size == mapped.size_label
    assert len([r for r in server.requests if CASES[name].is_generation(r)]) == 1


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_provider_metadata(name: str) -> None:
    """Every registered provider declares its metadata as class attributes (Apprise-style):
    its own config class, its secrets' environment names, its prices and model schemas."""
    from providers.spec import ModelSpec, PriceTable, ProviderConfig

    cls = provider_class(name)
    assert cls.name == name and cls.__name__.endswith("Provider") and cls.display_name
    assert issubclass(cls.Config, ProviderConfig) and cls.Config is not ProviderConfig
    assert isinstance(cls.models, tuple)
    assert all(isinstance(names, tuple) and names and all(n.isupper() for n in names) for names in cls.secret_env.values())
    assert all(isinstance(spec, ModelSpec) for spec in cls.model_specs.values())
    assert cls.is_placeholder == (name in ("picsum", "placeholder"))
    if cls.price_table is not None:
        assert isinstance(cls.price_table, PriceTable) and cls.price_table.source_url.startswith("https://")
        assert cls.price_table.checked >= "2026-01-01"
    config = cfg.Settings().provider_config(name)
    assert type(config) is cls.Config  # validated from providers.<name> through the registry
    if name in CASES:  # a missing key is reported by check(), before any network call
        provider = cls(config=config, secrets=secrets_of({}))
        if cls.secret_env and name != "automatic1111":
            outcome = provider.check()
            assert not outcome.ok and "missing" in outcome.detail
        provider.close()


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.secrets])
def test_wrong_credentials_get_the_services_refusal(name: str, servers: dict[str, srv.ProtocolServer]) -> None:
    """A wrong key is refused by the server as the real service does (401, BFL's 403
    ``Not authenticated``, Gemini's 400 ``API_KEY_INVALID``): auth/billing, nothing generated, the key never in the message."""
    case, server = CASES[name], servers[name]
    server.reset()
    cls = provider_class(name)
    wrong = {variable: "wrong:credential-value" for variable in case.secrets}
    provider = cls(
        config=cls.Config(**{"timeout_s": 5.0, **case.settings(server.url)}),
        secrets=secrets_of(wrong),
        downloader=SafeDownloader(test_base_url=server.url, timeout_s=5.0),
    )
    try:
        with pytest.raises(ProviderError) as caught:
            provider.generate(REQUEST)
    finally:
        provider.close()
    assert caught.value.error_class == "auth_billing" and caught.value.status_code in case.wrong_key_status
    assert "credential-value" not in str(caught.value)
    assert not server.files  # nothing generated
