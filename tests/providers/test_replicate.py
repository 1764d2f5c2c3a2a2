"""Replicate: official models by name, others by version (resolved from latest_version and
cached, or pinned), inputs mapped from the version's OpenAPI schema, E005 filtering, GPU-
second billing (failed and canceled predictions included) and the price table (server:
tests/providers/servers/replicate.py)."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from config import secrets as cfg
from domain.model import GenerationRequest, ImageFormat, Quality
from domain.errors import (
    ContentFilteredError,
    InvalidOutputError,
    ProviderError,
    RejectedProviderError,
    TransientProviderError,
)
from providers.chain import RetryConfig
from providers.chain import ProviderChain
from providers.download import SafeDownloader
from providers.replicate import ReplicateConfig, ReplicateProvider
from tests.providers.servers.replicate import (
    E1000,
    E1001,
    FLUX_VERSION,
    MODEL_ERROR,
    RV_VERSION,
    SD_VERSION,
    TOKEN,
    ReplicateServer,
    is_prediction,
)

A100_USD_PER_S = 0.0014  # gpu-a100-large, stability-ai/stable-diffusion's hardware (replicate.com/pricing)


def secrets() -> cfg.Secrets:
    return cfg.Secrets(_env_file=None, provider_secrets={"REPLICATE_API_TOKEN": TOKEN})  # type: ignore[call-arg]


@pytest.fixture
def server() -> Iterator[ReplicateServer]:
    with ReplicateServer() as running:
        yield running  # type: ignore[misc]


def provider_for(server: ReplicateServer, **settings: object) -> ReplicateProvider:
    config = ReplicateConfig(**{"base_url": server.url, "poll_interval_s": 0.05, "timeout_s": 30, **settings})
    return ReplicateProvider(config=config, secrets=secrets(), downloader=SafeDownloader(test_base_url=server.url))


def request(fmt: ImageFormat, quality: Quality = Quality.hd, seed: int = 5) -> GenerationRequest:
    width, height = fmt.size
    return GenerationRequest(
        prompt="a lighthouse at dawn",
        width=width,
        height=height,
        seed=seed,
        num_inference_steps=quality.num_inference_steps,
        guidance_scale=quality.guidance_scale,
    )


@pytest.mark.parametrize(
    ("model", "expected_sizes"),
    [
        (None, {"square": (1024, 1024), "portrait": (576, 1024), "landscape": (1024, 576)}),
        ("black-forest-labs/flux-schnell", {"square": "1:1", "portrait": "9:16", "landscape": "16:9"}),
    ],
)
def test_default_configuration_and_flux_schnell_make_real_images_in_every_format(
    server: ReplicateServer, model: str | None, expected_sizes: dict[str, object]
) -> None:
    """The shipped default (stability-ai/stable-diffusion, by version) and flux-schnell (an
    official model, by name): three formats, three images, one paid prediction each, every
    input inside the model's schema (the server refuses anything else with a 422)."""
    provider = provider_for(server, **({"model": model} if model else {}))
    chain = ProviderChain([provider], retry=RetryConfig(max_retries=2, backoff_s=0.0))
    attempts: list[object] = []
    for fmt in ImageFormat:
        result = chain.generate(request(fmt), attempts.append)
        with Image.open(io.BytesIO(result.image)) as image:
            colours = image.convert("RGB").resize((32, 32)).getcolors(4096)
            assert colours is not None and len(colours) > 200  # a real photo, not a placeholder
            width, height = image.size
        want_w, want_h = fmt.size
        assert (width > height) == (want_w > want_h) and (width < height) == (want_w < want_h)
        assert result.mapped_size == (expected_sizes[fmt.value] if isinstance(expected_sizes[fmt.value], str) else "{}x{}".format(*expected_sizes[fmt.value]))  # type: ignore[str-format]
        assert not result.is_placeholder and result.cost_usd > 0
    created = [r for r in server.requests if is_prediction(r)]
    assert len(created) == 3 and len(attempts) == 3  # one paid prediction per image, no retry, no fallback
    if model is None:
        assert all(r.path == "/v1/predictions" and r.json()["version"] == SD_VERSION for r in created)
        sent = created[1].json()["input"]
        assert (sent["width"], sent["height"]) == (576, 1024) and sent["num_inference_steps"] == 50
    else:
        assert all(r.path == "/v1/models/black-forest-labs/flux-schnell/predictions" for r in created)
        for r in created:
            sent = r.json()["input"]
            assert sent["num_inference_steps"] == 4 and "width" not in sent and "negative_prompt" not in sent
            assert "guidance_scale" not in sent and sent["num_outputs"] == 1
        assert [r.json()["input"]["aspect_ratio"] for r in created] == ["1:1", "9:16", "16:9"]
    schema_reads = [r for r in server.requests if r.method == "GET" and r.path.startswith("/v1/models/")]
    assert len(schema_reads) <= 1  # the schema (and version) is read once, then cached
    provider.close()


def test_version_is_resolved_from_latest_version_and_cached(server: ReplicateServer) -> None:
    provider = provider_for(server, model="stability-ai/stable-diffusion")
    provider.generate(request(ImageFormat.square))
    again = provider_for(server, model="stability-ai/stable-diffusion")  # a new instance, same process
    again.generate(request(ImageFormat.square))
    gets = [r.path for r in server.requests if r.method == "GET" and r.path.startswith("/v1/models/")]
    assert gets == ["/v1/models/stability-ai/stable-diffusion"]
    assert [r.json()["version"] for r in server.requests if is_prediction(r)] == [SD_VERSION, SD_VERSION]


def test_pinned_version_in_the_id_or_the_config(server: ReplicateServer) -> None:
    pinned = provider_for(server, model=f"lucataco/realistic-vision-v5.1:{RV_VERSION}")
    result = pinned.generate(request(ImageFormat.portrait, Quality.ultra_hd))
    assert f"/v1/models/lucataco/realistic-vision-v5.1/versions/{RV_VERSION}" in [r.path for r in server.requests]
    sent = [r for r in server.requests if is_prediction(r)][0].json()
    assert sent["version"] == RV_VERSION
    # this model calls them "steps" and "guidance" (3.5..7): read from its schema, clamped with a note
    assert sent["input"]["steps"] == 70 and sent["input"]["guidance"] == 7.0 and "guidance_scale" not in sent["input"]
    assert any("guidance_scale 9.5 -> 7" in note for note in result.metadata["mapping_notes"])
    server.reset()
    configured = provider_for(server, model="black-forest-labs/flux-schnell", versions={"black-forest-labs/flux-schnell": FLUX_VERSION})
    configured.generate(request(ImageFormat.landscape))
    sent = [r for r in server.requests if is_prediction(r)][0]
    assert sent.path == "/v1/predictions" and sent.json()["version"] == FLUX_VERSION  # pinned: by version


def test_a_community_model_by_name_is_refused_by_the_real_route(server: ReplicateServer) -> None:
    """What the old adapter did: POST /v1/models/{owner}/{name}/predictions for a model that
    is not official gets 404 (a rejection, not a retry)."""
    provider = provider_for(server, model="stability-ai/stable-diffusion", official_models=["stability-ai/stable-diffusion"])
    with pytest.raises(RejectedProviderError, match="404"):
        provider.generate(request(ImageFormat.square))


def test_unknown_model_is_a_rejection(server: ReplicateServer) -> None:
    with pytest.raises(RejectedProviderError, match="404"):
        provider_for(server, model="nobody/nothing").generate(request(ImageFormat.square))


def test_e005_sensitive_is_content_filtered(server: ReplicateServer) -> None:
    server.script.append("filtered")
    with pytest.raises(ContentFilteredError, match="E005"):
        provider_for(server).generate(request(ImageFormat.square))


def test_polls_then_succeeds_and_cancels_on_timeout(server: ReplicateServer) -> None:
    server.polls = 2
    provider = provider_for(server, model="black-forest-labs/flux-schnell")
    provider.generate(request(ImageFormat.square))
    gets = [r.path for r in server.requests if r.path.startswith("/v1/predictions/")]
    assert len(gets) == 2 and gets[0] == gets[1]  # polled urls.get twice
    server.reset()
    server.polls = None  # never finishes
    slow = provider_for(server, timeout_s=0.5)
    with pytest.raises(TransientProviderError, match="cancelled"):
        slow.generate(request(ImageFormat.square))
    assert len(server.cancelled) == 1 and server.requests[-1].path.endswith("/cancel")


def test_time_billed_models_cost_predict_time_times_the_hardware_price(server: ReplicateServer) -> None:
    server.predict_time = 3.2
    sd = provider_for(server).generate(request(ImageFormat.square))
    assert sd.cost_usd == pytest.approx(3.2 * 0.0014)  # A100 (80GB): USD 0.0014 per second
    rv = provider_for(server, model="lucataco/realistic-vision-v5.1").generate(request(ImageFormat.square))
    assert rv.cost_usd == pytest.approx(3.2 * 0.000725)  # A40 (Large)
    on_t4 = provider_for(server, hardware={"stability-ai/stable-diffusion": "gpu-t4"}).generate(request(ImageFormat.square))
    assert on_t4.cost_usd == pytest.approx(3.2 * 0.000225) and on_t4.metadata["predict_time"] == 3.2
    flux = provider_for(server, model="black-forest-labs/flux-schnell").generate(request(ImageFormat.square))
    assert flux.cost_usd == pytest.approx(0.003)  # official: per output image, whatever the time


def test_max_cost_bounds_a_time_billed_call_by_its_timeout() -> None:
    provider = ReplicateProvider(config=ReplicateConfig(timeout_s=120), secrets=secrets())
    req = request(ImageFormat.square)
    assert provider.estimate_cost(req) == pytest.approx(4.0 * 0.0014)  # typical 4 s on an A100
    assert provider.max_cost(req) == pytest.approx(120 * 0.0014)
    assert provider.max_cost(req, timeout_s=30) == pytest.approx(30 * 0.0014)
    flux = GenerationRequest(prompt="x", model="black-forest-labs/flux-schnell")
    assert provider.max_cost(flux) == provider.estimate_cost(flux) == pytest.approx(0.003)


def test_price_table() -> None:
    """https://replicate.com/pricing: official models per image, hardware per second."""
    table = ReplicateProvider.price_table
    assert table.source_url == "https://replicate.com/pricing" and table.checked
    assert {m: table.lookup(m, "standard") for m in ("black-forest-labs/flux-schnell", "black-forest-labs/flux-dev", "black-forest-labs/flux-1.1-pro")} == {
        "black-forest-labs/flux-schnell": 0.003,
        "black-forest-labs/flux-dev": 0.025,
        "black-forest-labs/flux-1.1-pro": 0.04,
    }
    assert dict(table.hardware_usd_per_second) == {
        "cpu": 0.0001,
        "gpu-t4": 0.000225,
        "gpu-l40s": 0.000975,
        "gpu-a40-small": 0.000575,
        "gpu-a40-large": 0.000725,
        "gpu-a100-large": 0.0014,
        "gpu-h100": 0.001525,
    }
    assert table.per_second("stability-ai/stable-diffusion") == 0.0014
    assert table.per_second("lucataco/realistic-vision-v5.1") == 0.000725
    provider = ReplicateProvider(config=ReplicateConfig(), secrets=secrets())
    assert provider.per_second_usd("someone/new-model") == 0.0014  # default_hardware for unknown community models
    assert provider.per_second_usd("black-forest-labs/flux-schnell") is None


# -- failed and canceled predictions are billed -------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "error_type", "billed_s"),
    [
        ("model_error", RejectedProviderError, 3.2),  # the model's own exception: deterministic
        ("oom", RejectedProviderError, 3.2),  # E1001: this input is too large for the model
        ("filtered", ContentFilteredError, 3.2),  # E005
        ("unknown_error", TransientProviderError, 3.2),  # E1000: "try retrying"
        ("failed_no_metrics", RejectedProviderError, 3.2),  # no predict_time: completed_at - started_at
        ("never_started", TransientProviderError, 0.0),  # E6716, started_at null: it never ran
    ],
)
@pytest.mark.parametrize("polls", [0, 2])
def test_a_failed_time_billed_prediction_carries_its_gpu_seconds(
    server: ReplicateServer, mode: str, error_type: type[ProviderError], billed_s: float, polls: int
) -> None:
    """A failed prediction of a time-billed model raises its classified error carrying what
    Replicate bills for it: metrics.predict_time x the hardware's price per second (USD),
    whether it failed inside the create call (``Prefer: wait``) or while polled."""
    server.predict_time, server.polls = 3.2, polls
    server.script.append(mode)
    with pytest.raises(ProviderError) as caught:
        provider_for(server).generate(request(ImageFormat.square))
    error = caught.value
    assert type(error) is error_type and error.provider == "replicate"
    assert error.billed_usd == pytest.approx(billed_s * A100_USD_PER_S, abs=1e-9)
    assert error.status_code is None and not server.cancelled  # it ended on its own: nothing to cancel
    failed = server.predictions[next(iter(server.predictions))]
    assert failed["status"] == "failed" and failed["output"] is None and failed["error"]
    if mode != "filtered":
        assert failed["error"][:40] in str(error)


def test_failures_are_classified_by_their_error_code(server: ReplicateServer) -> None:
    """E1001 (out of memory) and a model exception are the same for the same input: a
    rejection (the chain moves on); E1000 asks for a retry: transient."""
    provider = provider_for(server)
    for mode, wanted, text in (("oom", "rejected", E1001), ("model_error", "rejected", MODEL_ERROR), ("unknown_error", "transient", E1000)):
        server.script.append(mode)
        with pytest.raises(ProviderError) as caught:
            provider.generate(request(ImageFormat.square))
        assert caught.value.error_class == wanted and text[:30] in str(caught.value)


def test_an_official_model_failure_produced_no_image_and_costs_nothing(server: ReplicateServer) -> None:
    """flux-schnell is priced per output image: a failed prediction has none, so $0 (its
    predict_time is not money). A filtered one may have made the image it withheld: no
    billed amount, so the chain counts it as "may have billed" (its price per image)."""
    provider = provider_for(server, model="black-forest-labs/flux-schnell")
    server.script.append("model_error")
    with pytest.raises(RejectedProviderError) as failed:
        provider.generate(request(ImageFormat.square))
    assert failed.value.billed_usd == 0.0
    server.script.append("filtered")
    with pytest.raises(ContentFilteredError) as filtered:
        provider.generate(request(ImageFormat.square))
    assert filtered.value.billed_usd is None
    attempts: list = []
    server.script.append("filtered")
    chain = ProviderChain([provider], retry=RetryConfig(max_retries=2, backoff_s=0.0))
    with pytest.raises(ProviderError):
        chain.generate(request(ImageFormat.square), attempts.append)
    assert [a.cost_usd for a in attempts] == [pytest.approx(0.003)]  # counted once, not retried


def test_our_timeout_cancels_and_counts_the_seconds_the_cancel_answer_reports(server: ReplicateServer) -> None:
    """A prediction still running at our timeout is cancelled; Replicate bills the time it
    ran before ("Canceled (started running): You pay for the time the prediction ran"),
    which the canceled prediction reports as metrics.predict_time."""
    server.polls, server.predict_time = None, 0.4
    with pytest.raises(TransientProviderError, match="cancelled") as caught:
        provider_for(server, timeout_s=0.5).generate(request(ImageFormat.square))
    assert server.cancelled and caught.value.billed_usd == pytest.approx(0.4 * A100_USD_PER_S)


def test_a_prediction_cancelled_before_it_started_costs_nothing(server: ReplicateServer) -> None:
    server.starting_polls = None  # queued (cold boot) until cancelled
    with pytest.raises(TransientProviderError, match="still starting") as caught:
        provider_for(server, timeout_s=0.5).generate(request(ImageFormat.square))
    assert server.cancelled and caught.value.billed_usd == 0.0


def test_a_lost_cancel_answer_counts_the_most_it_can_have_run(server: ReplicateServer) -> None:
    """The cancel call fails: the prediction's seconds are unknown, so it is counted at the
    most it can have run (the time since its create call) x the price, never at 0."""
    server.polls, server.cancel_status = None, 500
    began = time.monotonic()
    with pytest.raises(TransientProviderError, match="cancelled") as caught:
        provider_for(server, timeout_s=0.5).generate(request(ImageFormat.square))
    elapsed = time.monotonic() - began
    billed = caught.value.billed_usd
    assert billed is not None and 0.3 * A100_USD_PER_S < billed <= elapsed * A100_USD_PER_S + 1e-6


def test_a_succeeded_prediction_whose_image_we_refuse_is_billed_its_seconds(server: ReplicateServer) -> None:
    """The prediction succeeded (billed), our check refused its bytes: the error carries
    the prediction's cost, not an estimate."""
    server.predict_time = 3.2
    server.script.append("garbage")
    with pytest.raises(InvalidOutputError) as caught:
        provider_for(server).generate(request(ImageFormat.square))
    assert caught.value.billed_usd == pytest.approx(3.2 * A100_USD_PER_S)


def test_billed_usd_without_any_time_is_counted_not_guessed() -> None:
    """No predict_time and no timestamps: the prediction may have run, so its estimate
    (typical seconds x price) is counted; never-started, aborted and official: 0."""
    provider = ReplicateProvider(config=ReplicateConfig(), secrets=secrets())
    req = request(ImageFormat.square)
    sd = "stability-ai/stable-diffusion"
    assert provider.billed_usd({"status": "failed", "error": "x"}, req, sd) == pytest.approx(4.0 * A100_USD_PER_S)
    assert provider.billed_usd({"status": "failed", "started_at": None, "metrics": {}}, req, sd) == 0.0
    assert provider.billed_usd({"status": "aborted"}, req, sd) == 0.0
    assert provider.billed_usd({"status": "canceled", "metrics": {"predict_time": 1.5}}, req, sd) == pytest.approx(1.5 * A100_USD_PER_S)
    assert provider.billed_usd({"status": "failed", "metrics": {"predict_time": 9.0}}, req, "black-forest-labs/flux-schnell") == 0.0
    priced = ReplicateProvider(config=ReplicateConfig(cost_usd=0.01), secrets=secrets())
    assert priced.billed_usd({"status": "failed", "metrics": {"predict_time": 9.0}}, req, sd) == 0.01


def test_the_chain_counts_a_deterministic_failure_once_and_retries_a_transient_one(server: ReplicateServer) -> None:
    """A model error is paid once (no retry on Replicate); E1000 is retried, and both runs
    are counted: the failed one at its predict_time, the next at its own."""
    server.predict_time = 3.2
    provider = provider_for(server)
    chain = ProviderChain([provider], retry=RetryConfig(max_retries=2, backoff_s=0.0))
    attempts: list = []
    server.script.append("model_error")
    with pytest.raises(ProviderError):
        chain.generate(request(ImageFormat.square), attempts.append)
    assert [(a.status, a.error_class, a.cost_usd) for a in attempts] == [("failed", "rejected", pytest.approx(3.2 * A100_USD_PER_S))]
    assert len([r for r in server.requests if is_prediction(r)]) == 1
    server.reset()
    attempts.clear()
    server.script.append("unknown_error")
    result = chain.generate(request(ImageFormat.square), attempts.append)
    assert [(a.status, a.error_class, a.cost_usd) for a in attempts] == [
        ("failed", "transient", pytest.approx(3.2 * A100_USD_PER_S)),
        ("success", None, pytest.approx(3.2 * A100_USD_PER_S)),
    ]
    assert result.cost_usd == pytest.approx(3.2 * A100_USD_PER_S)
    assert len([r for r in server.requests if is_prediction(r)]) == 2


def test_failed_prediction_is_counted_on_attempt_ledger_and_image(make_config, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """End to end: Replicate's prediction fails (the model's exception after 3.2 GPU
    seconds on an A100), OpenAI makes the image. The failed attempt row, its budget
    settlement and the image's cost count 3.2 x USD 0.0014; OpenAI's cost is added to it;
    Replicate is called once (a deterministic failure is not paid twice)."""
    from datetime import date

    from domain.model import ImageSlot
    from config.secrets import Secrets
    from config.settings import load_settings
    from domain.templates import TemplateLibrary
    from providers.registry import build_providers
    from storage.db import Database
    from generation.budget import BudgetLedger
    from generation.generate import generate_image
    from generation.record import record_planned
    from tests.providers.servers.openai import OpenAIServer

    templates = Path(__file__).resolve().parents[2] / "templates"
    monkeypatch.setenv("REPLICATE_API_TOKEN", TOKEN)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
    with ReplicateServer() as rep, OpenAIServer() as oai:
        rep.predict_time = 3.2
        rep.script.append("model_error")
        settings = load_settings(
            make_config(
                chain=["replicate", "openai", "placeholder"],
                providers={
                    "replicate": {"base_url": rep.url, "timeout_s": 30, "poll_interval_s": 0.05},
                    "openai": {"base_url": f"{oai.url}/v1", "model": "dall-e-3", "timeout_s": 5},
                },
                retry={"max_retries": 2, "backoff_s": 0.0},
                budget={"daily_usd": 1.0},
            )
        )
        db = Database(settings.database_url)
        ledger = BudgetLedger(db, settings.budget)
        chain = ProviderChain(build_providers(settings, Secrets()), retry=settings.retry, budget=ledger)
        slot = ImageSlot("daily", date(2026, 11, 21), "0600-products", 0, "products")
        pk = record_planned(db, TemplateLibrary.load(templates), [slot])[0]

        row = generate_image(db, chain, pk, spool_dir=settings.spool_dir, policy=settings.policy)
        chain.close()

        billed = 3.2 * A100_USD_PER_S
        assert row.status == "generated" and row.provider == "openai"
        attempts = db.attempts(pk)
        assert [(a.provider, a.status, a.error_class) for a in attempts] == [("replicate", "failed", "rejected"), ("openai", "success", None)]
        assert attempts[0].cost_usd == pytest.approx(billed) and attempts[1].cost_usd == pytest.approx(0.04)
        assert MODEL_ERROR[:30] in (attempts[0].error or "")
        assert row.cost_usd == pytest.approx(billed + 0.04)  # added, not replaced
        entries = {e.provider: e for e in ledger.entries()}
        assert entries["replicate"].state == "settled" and entries["replicate"].actual_usd == pytest.approx(billed)
        assert entries["replicate"].estimate_usd == pytest.approx(30 * A100_USD_PER_S)  # reserved: price x timeout
        assert entries["openai"].state == "settled" and entries["openai"].actual_usd == pytest.approx(0.04)
        assert ledger.total_spent() == pytest.approx(billed + 0.04)
        assert len([r for r in rep.requests if is_prediction(r)]) == 1
