"""The fallback chain across four real protocols: Hugging Face answers 503 (model
loading), Replicate 429 with Retry-After, Stability CONTENT_FILTERED, OpenAI succeeds:
one image, four attempt rows, the right costs, Retry-After honoured."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from PIL import Image

from domain.model import ImageSlot
from config.secrets import Secrets
from config.settings import load_settings
from domain.templates import TemplateLibrary
from providers.chain import ProviderChain
from providers.registry import build_providers
from storage.db import Database
from generation.budget import BudgetLedger
from generation.generate import generate_image
from generation.record import record_planned
from tests.providers import servers as srv
from storage import queries

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@pytest.fixture
def four() -> Iterator[dict[str, srv.ProtocolServer]]:
    started = {
        "huggingface": srv.HuggingFaceServer("503"),
        "replicate": srv.ReplicateServer("429"),
        "stability": srv.StabilityServer("filtered"),
        "openai": srv.OpenAIServer("ok"),
    }
    for server in started.values():
        server.__enter__()
    yield started
    for server in started.values():
        server.__exit__(None, None, None)


def test_four_providers_one_image(make_config, four, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    for name, value in {
        "HUGGINGFACE_TOKEN": "hf_test_token",
        "REPLICATE_API_TOKEN": "r8_test_token",
        "STABILITY_API_KEY": "sk-test-key",
        "OPENAI_API_KEY": "sk-test-key",
    }.items():
        monkeypatch.setenv(name, value)
    hf, rep, stab, oai = (four[n].url for n in ("huggingface", "replicate", "stability", "openai"))
    settings = load_settings(
        make_config(
            chain=["huggingface", "replicate", "stability", "openai", "placeholder"],
            providers={
                "huggingface": {"endpoint_url": f"{hf}/models/stabilityai/stable-diffusion-xl-base-1.0", "timeout_s": 5},
                "replicate": {"base_url": rep, "timeout_s": 5},
                "stability": {"base_url": stab, "model": "core", "timeout_s": 5},
                "openai": {"base_url": f"{oai}/v1", "model": "dall-e-3", "timeout_s": 5},
            },
            retry={"max_retries": 1, "backoff_s": 0.0, "max_retry_after_s": 5.0},
            budget={"daily_usd": 1.0},
        )
    )
    db = Database(settings.database_url)
    sleeps: list[float] = []
    disabled: list[tuple[str, str]] = []
    chain = ProviderChain(
        build_providers(settings, Secrets()),
        retry=settings.retry,
        budget=BudgetLedger(db, settings.budget),
        sleep=sleeps.append,
        on_disable=lambda name, why: disabled.append((name, why)),
    )
    slots = [ImageSlot("daily", date(2026, 11, 21), "0600-products", i, "products") for i in range(2)]
    pks = record_planned(db, TemplateLibrary.load(TEMPLATES), slots)

    row = generate_image(db, chain, pks[0], spool_dir=settings.spool_dir, policy=settings.policy)

    assert row.status == "generated" and row.provider == "openai" and row.model == "dall-e-3"
    assert not row.is_placeholder
    with Image.open(io.BytesIO(Path(row.spool_path).read_bytes())) as image:
        assert image.size == (row.width, row.height)
        assert len(image.convert("RGB").resize((32, 32)).getcolors(4096) or []) > 200  # a real photo
    attempts = db.attempts(pks[0])
    assert [(a.provider, a.status, a.error_class, a.http_status) for a in attempts] == [
        ("huggingface", "failed", "transient", 503),
        ("replicate", "failed", "transient", 429),
        ("stability", "failed", "content_filtered", None),
        ("openai", "success", None, None),
    ]
    # the filtered answer came with HTTP 200: Stability may have billed it (core: USD 0.03), so it is counted
    assert [a.cost_usd for a in attempts] == [0.0, 0.0, pytest.approx(0.03), pytest.approx(0.04)]  # dall-e-3 1024^2
    assert all(a.latency_s > 0 for a in attempts)
    assert [a.model for a in attempts] == ["stabilityai/stable-diffusion-xl-base-1.0", "stability-ai/stable-diffusion", "core", "dall-e-3"]
    assert row.cost_usd == pytest.approx(0.07)
    assert "currently loading" in (attempts[0].error or "") and "throttled" in (attempts[1].error or "")
    assert sleeps == []  # 20 s (estimated_time) and 7 s (Retry-After) are over max_retry_after_s: next provider
    assert [len([r for r in four[n].requests if r.method == "POST"]) for n in ("huggingface", "replicate", "stability", "openai")] == [1, 1, 1, 1]
    assert disabled == []

    # the next image: HF and Replicate asked us to wait, so they are not called again yet
    row = generate_image(db, chain, pks[1], spool_dir=settings.spool_dir, policy=settings.policy)
    assert row.provider == "openai"
    skipped = [(a.provider, a.status, a.error_class) for a in db.attempts(pks[1])][:2]
    assert skipped == [("huggingface", "skipped", "circuit_open"), ("replicate", "skipped", "circuit_open")]
    assert "retry-after" in (db.attempts(pks[1])[0].error or "")
    assert [len([r for r in four[n].requests if r.method == "POST"]) for n in ("huggingface", "replicate")] == [1, 1]
    assert queries.spent_usd(db, db.attempts()[0].created_at.replace(hour=0, minute=0)) == pytest.approx(0.14)  # 2 x (0.03 + 0.04)
    chain.close()


def test_short_retry_after_is_waited_then_succeeds(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Retry-After within ``max_retry_after_s`` is slept, then the same provider is retried."""
    from domain.model import GenerationRequest
    from providers.chain import RetryConfig
    from providers.stability import StabilityConfig, StabilityProvider

    with srv.StabilityServer() as server:
        server.script.extend(["429"])
        provider = StabilityProvider(
            config=StabilityConfig(base_url=server.url, timeout_s=5), secrets=Secrets(_env_file=None, provider_secrets={"STABILITY_API_KEY": "sk-test-key"})
        )  # type: ignore[call-arg]
        sleeps: list[float] = []
        attempts: list = []
        chain = ProviderChain([provider], retry=RetryConfig(max_retries=2, max_retry_after_s=10), sleep=sleeps.append)
        result = chain.generate(GenerationRequest(prompt="a red bicycle", width=1024, height=1024), attempts.append)
        assert result.provider == "stability" and result.cost_usd == pytest.approx(0.08)
        assert sleeps == [float(srv.RETRY_AFTER_S)]
        assert [(a.status, a.http_status) for a in attempts] == [("failed", 429), ("success", None)]


def test_auth_failure_disables_and_alerts() -> None:
    from domain.model import GenerationRequest
    from providers.chain import RetryConfig
    from providers.openai import OpenAIConfig, OpenAIProvider
    from providers.placeholder import PlaceholderConfig, PlaceholderProvider

    with srv.OpenAIServer("401") as server:
        secrets = Secrets(_env_file=None, provider_secrets={"OPENAI_API_KEY": "sk-wrong-key"})  # type: ignore[call-arg]
        providers = [
            OpenAIProvider(config=OpenAIConfig(base_url=f"{server.url}/v1", timeout_s=5), secrets=secrets),
            PlaceholderProvider(config=PlaceholderConfig(), secrets=secrets),
        ]
        disabled: list[tuple[str, str]] = []
        chain = ProviderChain(providers, retry=RetryConfig(), on_disable=lambda n, m: disabled.append((n, m)))
        for _ in range(3):
            result = chain.generate(GenerationRequest(prompt="a red bicycle", width=512, height=512, seed=1))
            assert result.is_placeholder and result.provider == "placeholder"
        assert len(server.requests) == 1 and list(chain.disabled) == ["openai"]
        assert len(disabled) == 1 and disabled[0][0] == "openai" and "invalid_api_key" in disabled[0][1]
        assert "sk-wrong-key" not in disabled[0][1]


def test_auth_failure_raises_an_alert(make_config, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from reporting.alerts import evaluate_rules

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")  # accepted: the account is out of credit
    with srv.OpenAIServer("402") as server:
        settings = load_settings(make_config(chain=["openai", "placeholder"], providers={"openai": {"base_url": f"{server.url}/v1", "timeout_s": 5}}))
        db = Database(settings.database_url)
        chain = ProviderChain(build_providers(settings, Secrets()), retry=settings.retry)
        slots = [ImageSlot("daily", date(2026, 11, 21), "0600-food", 0, "food")]
        pk = record_planned(db, TemplateLibrary.load(TEMPLATES), slots)[0]
        row = generate_image(db, chain, pk, spool_dir=settings.spool_dir, policy=settings.policy)
    assert row.provider == "placeholder" and row.is_placeholder
    # one alert for the cause: a 402 is the quota rule's ("top up"), not also provider-disabled
    alerts = [a for a in evaluate_rules(db, settings) if a.rule in ("provider-disabled", "quota")]
    assert len(alerts) == 1 and alerts[0].rule == "quota" and alerts[0].scope == "openai" and "402" in alerts[0].title
    assert "billing_hard_limit_reached" in alerts[0].message and "sk-test-key" not in alerts[0].message


def test_circuit_opens_then_half_opens_after_cooldown() -> None:
    from providers.chain import Circuit

    now = [100.0]
    circuit = Circuit(threshold=2, cooldown_s=30.0, clock=lambda: now[0])
    circuit.failure()
    assert circuit.allow() is None
    circuit.failure()
    assert circuit.allow() == "circuit open"
    now[0] += 29.0
    assert circuit.allow() == "circuit open"
    now[0] += 1.0
    assert circuit.allow() is None  # half-open: one trial call
    assert circuit.allow() == "circuit open"  # ... and only one
    circuit.success()
    assert circuit.allow() is None and circuit.failures == 0
    circuit.hold(7.0)  # a Retry-After the chain did not wait for
    assert circuit.allow() == "retry-after: asked to wait 7 s more"
    now[0] += 7.0
    assert circuit.allow() is None
