"""The provider chain against a loopback AUTOMATIC1111 server returning a real photo."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pytest
from PIL import Image

from domain.model import GenerationRequest, ImageSlot
from config.settings import load_settings
from domain.templates import TemplateLibrary
from providers.chain import ProviderChain
from providers.registry import build_providers
from storage.db import Database
from generation.budget import BudgetLedger
from generation.generate import generate_image
from generation.record import record_planned
from tests.conftest import a1111_config
from tests.servers import A1111Server

ROOT = Path(__file__).resolve().parent.parent / "templates"


def setup(make_config, url: str, **extra):  # type: ignore[no-untyped-def]
    settings = load_settings(make_config(**a1111_config(url), **extra))
    db = Database(settings.database_url)
    sleeps: list[float] = []
    chain = ProviderChain(build_providers(settings, settings_secrets()), retry=settings.retry, budget=BudgetLedger(db, settings.budget), sleep=sleeps.append)
    library = TemplateLibrary.load(ROOT)
    slots = [ImageSlot("daily", date(2026, 11, 21), "0600-products", i, "products") for i in range(4)]
    pks = record_planned(db, library, slots)
    return settings, db, chain, pks, sleeps


def settings_secrets():  # type: ignore[no-untyped-def]
    from config.secrets import Secrets

    return Secrets()


def test_success_returns_the_photo_and_real_seed(make_config, a1111: A1111Server) -> None:  # type: ignore[no-untyped-def]
    settings, db, chain, pks, _ = setup(make_config, a1111.url)
    row = generate_image(db, chain, pks[0], spool_dir=settings.spool_dir, policy=settings.policy)
    assert row.status == "generated" and row.provider == "automatic1111" and not row.is_placeholder
    assert row.model == "realisticVision_v51"
    request = a1111.requests[0]["json"]
    assert request["seed"] == row.seed and request["width"] == row.width and request["steps"] == row.num_inference_steps
    assert request["prompt"] == row.prompt and request["negative_prompt"] == row.negative_prompt
    with Image.open(row.spool_path) as image:
        assert image.size == (row.width, row.height)
        colours = image.convert("RGB").resize((32, 32)).getcolors(4096)
        assert colours is not None and len(colours) > 100  # a photo, not a flat image
    attempts = db.attempts(pks[0])
    assert [(a.provider, a.status) for a in attempts] == [("automatic1111", "success")]


def test_random_seed_is_read_from_info(make_config, a1111: A1111Server) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(make_config(**a1111_config(a1111.url)))
    provider = build_providers(settings, settings_secrets())[0]
    result = provider.generate(GenerationRequest(prompt="a red apple on a table", width=512, height=512, seed=None))
    assert a1111.requests[0]["json"]["seed"] == -1
    assert result.seed == 4242


@pytest.mark.parametrize(
    ("mode", "error_class", "http_status", "reason"),
    [
        ("500", "transient", 500, "CUDA out of memory"),
        ("429", "transient", 429, "Too Many Requests"),
        ("garbage", "invalid_output", None, "does not decode"),
        ("html", "invalid_output", None, "not JSON"),
        ("blank", "content_filtered", None, "all-black"),  # a safety checker's black image: a rejection
        ("422", "rejected", 422, "bad width"),
        ("401", "auth_billing", 401, "Not authenticated"),
    ],
)
def test_failure_falls_back_to_placeholder(make_config, mode, error_class, http_status, reason) -> None:  # type: ignore[no-untyped-def]
    with A1111Server(default=mode) as server:
        settings, db, chain, pks, sleeps = setup(make_config, server.url, retry={"max_retries": 1, "backoff_s": 0.0})
        row = generate_image(db, chain, pks[0], spool_dir=settings.spool_dir, policy=settings.policy)
    assert row.status == "generated" and row.provider == "placeholder" and row.is_placeholder
    attempts = db.attempts(pks[0])
    failed = [a for a in attempts if a.status == "failed"]
    assert failed and all(a.provider == "automatic1111" and a.error_class == error_class for a in failed)
    assert all(a.http_status == http_status and reason in (a.error or "") for a in failed)
    assert attempts[-1].provider == "placeholder" and attempts[-1].status == "success"
    retried = error_class == "transient"  # an invalid output is deterministic: not retried on the same provider
    assert len(failed) == (2 if retried else 1)  # one retry of transient failures only
    if mode == "429":
        assert sleeps == [1.0]  # Retry-After honoured


def test_retry_then_success_and_circuit(make_config) -> None:  # type: ignore[no-untyped-def]
    with A1111Server() as server:
        server.script.extend(["500"])
        settings, db, chain, pks, sleeps = setup(make_config, server.url, retry={"max_retries": 1, "circuit_threshold": 2})
        row = generate_image(db, chain, pks[0], spool_dir=settings.spool_dir, policy=settings.policy)
        assert row.provider == "automatic1111"
        assert [a.status for a in db.attempts(pks[0])] == ["failed", "success"]
        server.default = "500"
        generate_image(db, chain, pks[1], spool_dir=settings.spool_dir, policy=settings.policy)
        calls = len(server.requests)
        row = generate_image(db, chain, pks[2], spool_dir=settings.spool_dir, policy=settings.policy)
        assert len(server.requests) == calls  # circuit open: no call
        assert row.provider == "placeholder"
        assert [(a.provider, a.status, a.error_class) for a in db.attempts(pks[2])][0] == ("automatic1111", "skipped", "circuit_open")


def test_auth_failure_disables_provider_for_the_run(make_config) -> None:  # type: ignore[no-untyped-def]
    with A1111Server(default="401") as server:
        settings, db, chain, pks, _ = setup(make_config, server.url)
        for pk in pks[:3]:
            generate_image(db, chain, pk, spool_dir=settings.spool_dir, policy=settings.policy)
        assert len(server.requests) == 1
        assert "automatic1111" in chain.disabled


def test_budget_cap_skips_paid_provider(make_config, a1111: A1111Server) -> None:  # type: ignore[no-untyped-def]
    settings, db, chain, pks, _ = setup(make_config, a1111.url, budget={"daily_usd": 0.25})
    for provider in chain.providers:
        if provider.name == "automatic1111":
            provider.config.cost_usd = 0.1
    rows = [generate_image(db, chain, pk, spool_dir=settings.spool_dir, policy=settings.policy) for pk in pks]
    assert [r.provider for r in rows] == ["automatic1111", "automatic1111", "placeholder", "placeholder"]
    assert sum(r.cost_usd for r in rows) == pytest.approx(0.2)
    skipped = [a for a in db.attempts() if a.status == "skipped"]
    assert len(skipped) == 2 and all(a.error_class == "budget" for a in skipped)


def test_content_policy_blocks_before_any_call(make_config, a1111: A1111Server) -> None:  # type: ignore[no-untyped-def]
    settings, db, chain, pks, _ = setup(make_config, a1111.url, policy={"deny_terms": ["mug", "sneaker"]})
    row = generate_image(db, chain, pks[0], spool_dir=settings.spool_dir, policy=settings.policy)
    assert row.status == "blocked" and "denied term" in (row.error or "")
    assert a1111.requests == [] and db.attempts(pks[0]) == []


def test_generated_row_is_not_generated_again(make_config, a1111: A1111Server) -> None:  # type: ignore[no-untyped-def]
    settings, db, chain, pks, _ = setup(make_config, a1111.url)
    first = generate_image(db, chain, pks[0], spool_dir=settings.spool_dir, policy=settings.policy)
    again = generate_image(db, chain, pks[0], spool_dir=settings.spool_dir, policy=settings.policy)
    assert len(a1111.requests) == 1 and again.checksum == first.checksum
    Path(first.spool_path).write_bytes(b"corrupted")  # a spool file that no longer matches is made again
    generate_image(db, chain, pks[0], spool_dir=settings.spool_dir, policy=settings.policy)
    assert len(a1111.requests) == 2
    assert Image.open(io.BytesIO(Path(first.spool_path).read_bytes())).size == (first.width, first.height)


def test_rate_limit_headers_become_quota_hints_and_an_alert(make_config, a1111: A1111Server) -> None:  # type: ignore[no-untyped-def]
    from reporting.alerts import rule_quota

    settings, db, chain, pks, _ = setup(make_config, a1111.url, retry={"max_retries": 0})
    a1111.extra_headers = {"X-RateLimit-Remaining": "30", "X-RateLimit-Limit": "50"}
    generate_image(db, chain, pks[0], spool_dir=settings.spool_dir, policy=settings.policy)
    first = db.attempts(pks[0])[-1]
    assert (first.status, first.quota_remaining, first.quota_limit) == ("success", 30, 50)
    assert rule_quota(db, settings) == []  # 60 % left: no alert
    a1111.extra_headers = {"X-RateLimit-Remaining": "2", "X-RateLimit-Limit": "50"}
    a1111.script.append("429")  # the failed answer carries the headers too
    generate_image(db, chain, pks[1], spool_dir=settings.spool_dir, policy=settings.policy)
    failed = [a for a in db.attempts(pks[1]) if a.provider == "automatic1111"][0]
    assert (failed.status, failed.http_status, failed.quota_remaining, failed.quota_limit) == ("failed", 429, 2, 50)
    alerts = rule_quota(db, settings)
    assert len(alerts) == 1 and "2 of 50 calls left" in alerts[0].title
