"""Model lifecycle (providers/lifecycle.py): a retired model disables its provider after
one call with one alert naming the replacement; doctor warns of a model shutting down
within 30 days (OpenAI server: tests/providers/servers/openai.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from types import SimpleNamespace

import pytest

from config import secrets as cfg
from cli.doctor import WARN, check_providers
from domain.model import Attempt, GenerationRequest
from providers.chain import RetryConfig
from providers.chain import ProviderChain
from providers.download import SafeDownloader
from providers.lifecycle import ModelStatus, warning_of
from providers.openai import OpenAIConfig, OpenAIProvider
from providers.placeholder import PlaceholderConfig, PlaceholderProvider
from providers.registry import PROVIDERS, provider_class
from tests.providers.servers.openai import KEY, OpenAIServer


def secrets() -> cfg.Secrets:
    return cfg.Secrets(_env_file=None, provider_secrets={"OPENAI_API_KEY": KEY})  # type: ignore[dict-item]


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as running:
        yield running  # type: ignore[misc]


def openai_for(server: OpenAIServer, model: str) -> OpenAIProvider:
    return OpenAIProvider(
        config=OpenAIConfig(base_url=f"{server.url}/v1", model=model, timeout_s=10), secrets=secrets(), downloader=SafeDownloader(test_base_url=server.url)
    )


def test_retired_model_one_call_disabled_one_alert_fallback(server: OpenAIServer) -> None:
    server.retired = {"gpt-image-1"}
    alerts: list[tuple[str, str]] = []
    attempts: list[Attempt] = []
    chain = ProviderChain(
        [openai_for(server, "gpt-image-1"), PlaceholderProvider(config=PlaceholderConfig(), secrets=secrets())],
        retry=RetryConfig(max_retries=3, backoff_s=0.0),
        sleep=lambda s: None,
        on_disable=lambda name, message: alerts.append((name, message)),
    )
    results = [chain.generate(GenerationRequest(prompt=f"a vase {i}", width=1024, height=1024, seed=i), attempts.append) for i in range(3)]
    assert [r.provider for r in results] == ["placeholder"] * 3  # fallback used
    assert len([r for r in server.requests if r.method == "POST"]) == 1  # one call, never again
    assert list(chain.disabled) == ["openai"]
    assert len(alerts) == 1 and "gpt-image-1" in alerts[0][1] and "gpt-image-2.6-flare" in alerts[0][1]
    failed = [a for a in attempts if a.provider == "openai" and a.status == "failed"]
    assert len(failed) == 1 and failed[0].error_class == "model_retired" and failed[0].cost_usd == 0.0
    assert failed[0].http_status == 404


def test_doctor_warns_of_a_model_shutting_down_in_ten_days(server: OpenAIServer) -> None:
    soon = date.today() + timedelta(days=10)
    server.shutdown_dates["gpt-image-1.5"] = soon.isoformat()
    config = OpenAIConfig(base_url=f"{server.url}/v1", model="gpt-image-1.5", timeout_s=5)
    settings = SimpleNamespace(chain=["openai"], provider_config=lambda name: config)
    checks = check_providers(settings, secrets(), timeout_s=5)
    warned = [c for c in checks if c.status == WARN]
    assert len(warned) == 1 and "gpt-image-1.5" in warned[0].detail and soon.isoformat() in warned[0].detail
    assert "in 10 days" in warned[0].detail and "gpt-image-2.6-flare" in warned[0].detail
    assert any(r.path == "/v1/models/gpt-image-1.5" for r in server.requests)  # asked the API, not a table
    # the same model 40 days out: no warning
    server.shutdown_dates["gpt-image-1.5"] = (date.today() + timedelta(days=40)).isoformat()
    assert [c for c in check_providers(settings, secrets(), timeout_s=5) if c.status == WARN] == []


def test_doctor_warns_of_a_retired_model(server: OpenAIServer) -> None:
    server.retired = {"gpt-image-1"}
    status = openai_for(server, "gpt-image-1").model_status("gpt-image-1")
    assert status.status == "retired" and status.replacement == "gpt-image-2.6-flare"
    assert warning_of(status, date.today()) is not None


def test_every_declared_default_model_is_active_with_a_source() -> None:
    declared = [provider_class(name) for name in PROVIDERS if provider_class(name).model_lifecycle]
    assert declared  # at least OpenAI declares its models
    for cls in declared:
        status = cls.model_lifecycle.get(cls.default_model)
        assert status is not None and status.status == "active", f"{cls.name}: default {cls.default_model} not active"
        assert all(s.source.startswith("https://") for s in cls.model_lifecycle.values())


def test_a_deprecated_model_past_its_shutdown_is_retired() -> None:
    status = ModelStatus("m", "deprecated", date(2026, 1, 1), "n")
    assert status.effective(date(2026, 1, 2)) == "retired" and "retired" in (warning_of(status, date(2026, 1, 2)) or "")
    assert warning_of(status, date(2025, 11, 1)) is None
