"""Batched local generation: a daily slot's variations in one pipeline call, and the
out-of-memory path. The pipeline is the tiny random SD 1.5 of test_diffusers_local
(built here, saved and loaded back, nothing downloaded); the database is a SQLite file.

The out-of-memory double is the real provider on the CPU with the pipeline call replaced
by a pretend GPU: it raises ``torch.cuda.OutOfMemoryError`` (what diffusers raises on a
real GPU: https://pytorch.org/docs/stable/generated/torch.cuda.OutOfMemoryError.html)
above a given batch size and otherwise runs the real pipeline."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("diffusers", reason="the local extra is not installed")
torch = pytest.importorskip("torch")

from PIL import Image  # noqa: E402

from domain.model import GenerationRequest  # noqa: E402
from domain.errors import TransientProviderError  # noqa: E402
from config.imaging import PolicyConfig  # noqa: E402
from config.secrets import Secrets  # noqa: E402
from providers.chain import RetryConfig  # noqa: E402
from providers.diffusers_local import DiffusersConfig, LocalModelConfig  # noqa: E402
from providers.placeholder import PlaceholderConfig  # noqa: E402
from tests.providers.test_diffusers_local import SIZE, STEPS, build_tiny_model  # noqa: E402

RUN_DATE = date(2026, 11, 23)
TEMPLATE = f"""name: tiny-mug
category: products
prompt: "product photo of a {{matte white|speckled blue|terracotta}} ceramic mug on a {{light oak|marble}} table"
negative_prompt: "blurry, low quality"
parameters: {{width: {SIZE}, height: {SIZE}, num_inference_steps: {STEPS}, guidance_scale: 7.5}}
styles: ["soft window light", "warm morning light"]
"""
SCHEDULES = """daily:
  window_start: "06:00"
  window_end: "08:00"
  slots:
    - {time: "06:00", category: products, count: 4}
weekly:
  days: {monday: [], tuesday: [], wednesday: [], thursday: [], friday: [], saturday: [], sunday: []}
"""


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-sd"))


@pytest.fixture(scope="module", autouse=True)
def offline() -> Iterator[None]:
    os.environ["HF_HUB_OFFLINE"] = "1"  # any hub access would fail loudly
    torch.set_num_threads(2)
    yield
    os.environ.pop("HF_HUB_OFFLINE", None)


def config(tiny: dict[str, Path], **extra: Any) -> DiffusersConfig:
    return DiffusersConfig.model_validate(
        {
            "enabled": True,
            "device": "cpu",
            "model": "tiny",
            "local_files_only": True,
            "max_batch_size": 4,
            "models": {"tiny": LocalModelConfig(path=str(tiny["model"]), pipeline="sd15")},
            **extra,
        }
    )


def secrets() -> Secrets:
    return Secrets(_env_file=None)  # type: ignore[call-arg]


def chain_of(provider: Any) -> Any:
    from providers.chain import ProviderChain
    from providers.placeholder import PlaceholderProvider

    return ProviderChain([provider, PlaceholderProvider(config=PlaceholderConfig(), secrets=secrets())], retry=RetryConfig(backoff_s=0.0))


def pixels(data: bytes) -> Any:
    import numpy as np

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB")).astype(int)


def worker_of(db: Any, chain: Any, tmp_path: Path, policy: PolicyConfig | None = None) -> Any:
    """The per-image process's Worker of one run (generation/produce.py) over ``db`` and ``chain``:
    files under ``tmp_path`` (spool and a local object store)."""
    import threading

    from config.settings import Settings
    from storage.ledger import ImageLedger
    from storage.objects import open_store
    from generation.produce import Worker

    settings = Settings(_env_file=None, output_dir=tmp_path / "output", policy=policy or PolicyConfig())  # type: ignore[call-arg]
    return Worker(ImageLedger(db), chain, open_store(str(tmp_path / "store")), settings, "batch-run", threading.BoundedSemaphore(1))


@pytest.fixture
def planned(tmp_path: Path) -> tuple[Any, list[int]]:
    """A SQLite database with the four planned rows of one daily slot of template tiny-mug."""
    from domain.templates import TemplateLibrary
    from storage.db import Database
    from generation.plan import plan_daily
    from generation.record import record_planned

    folder = tmp_path / "templates"
    (folder / "products").mkdir(parents=True)
    (folder / "products" / "tiny-mug.yaml").write_text(TEMPLATE)
    (folder / "schedules.yaml").write_text(SCHEDULES)
    library = TemplateLibrary.load(folder)
    assert library.schedules is not None
    db = Database(f"sqlite:///{tmp_path / 'batch.db'}")
    pks = record_planned(db, library, plan_daily(library.schedules, RUN_DATE))
    return db, pks


def test_daily_slot_of_four_variations_is_one_batch_call(tiny_model, planned, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from providers.diffusers_local import DiffusersProvider
    from generation.batching import generate_batches, group_for_batch
    from generation.generate import request_of
    from generation.batching import produce_all

    db, pks = planned
    rows = [db.get(pk) for pk in pks]
    assert len(rows) == 4 and len({r.seed for r in rows}) == 4 and len({r.prompt for r in rows}) > 1
    assert [[r.id for r in group] for group in group_for_batch(rows)] == [pks]

    provider = DiffusersProvider(config=config(tiny_model), secrets=secrets())
    chain = chain_of(provider)
    worker = worker_of(db, chain, tmp_path)
    assert generate_batches(worker, pks) == pks
    assert provider.calls == 1  # one pipeline call for the slot's four images

    made = [db.get(pk) for pk in pks]
    assert [r.status for r in made] == ["generated"] * 4
    assert {r.run_key for r in made} == {"batch-run"}  # still claimed: the per-image process goes on
    assert [r.attempt_count for r in made] == [1] * 4  # each claim counted its attempt
    assert [r.seed for r in made] == [r.seed for r in rows]  # each keeps its own planned seed
    assert {(r.provider, r.model, r.device, r.cost_usd, r.is_placeholder) for r in made} == {("diffusers", "tiny", "cpu", 0.0, False)}
    assert [r.idempotency_key for r in made] == [r.idempotency_key for r in rows]
    assert all(len(db.attempts(pk)) == 1 and db.attempts(pk)[0].status == "success" for pk in pks)
    images = [Path(r.spool_path).read_bytes() for r in made]  # type: ignore[arg-type]
    assert len(set(images)) == 4

    for row, image in zip(made, images, strict=True):  # each image again, alone, from its seed
        alone = provider.generate(request_of(row))
        assert alone.seed == row.seed
        assert abs(pixels(alone.image) - pixels(image)).max() <= 2
    assert provider.calls == 5

    calls = provider.calls  # the per-image process goes on from generated: nothing is generated twice
    assert generate_batches(worker, pks) == []
    finished = produce_all(worker, pks, threads=2)
    assert [r.status for r in finished] == ["done"] * 4, [(r.status, r.error) for r in finished]
    assert all(r.storage_key and r.run_key is None for r in finished)
    assert [r.seed for r in finished] == [r.seed for r in rows]
    assert provider.calls == calls and all(len(db.attempts(pk)) == 1 for pk in pks)
    provider.close()


def test_a_blocked_prompt_leaves_the_batch_and_the_rest_is_made(tiny_model, planned, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from providers.diffusers_local import DiffusersProvider
    from generation.batching import generate_batch_images

    db, pks = planned
    prompts = [set((db.get(pk).prompt or "").replace(",", " ").split()) for pk in pks]
    blocked_word = min(prompts[0] - set.intersection(*prompts))  # in the first prompt, not in every one
    provider = DiffusersProvider(config=config(tiny_model), secrets=secrets())
    worker = worker_of(db, chain_of(provider), tmp_path, PolicyConfig(deny_terms=[blocked_word]))
    rows = generate_batch_images(worker, pks)
    blocked = [r for r in rows if r.status == "blocked"]
    assert 0 < len(blocked) < 4 and all("content policy" in (r.error or "") for r in blocked)
    assert all(r.status == "generated" for r in rows if r.status != "blocked")
    assert all(not db.attempts(r.id) for r in blocked)  # never sent to a provider
    assert {r.id for r in blocked} == worker.batch_ended  # the per-image process leaves them as they are
    assert provider.calls == 1
    provider.close()


class PretendGpu:
    """Builds a DiffusersProvider whose configured device is a pretend CUDA GPU holding
    ``capacity`` images per call: its pipeline is the real CPU one; a call of more images
    raises torch.cuda.OutOfMemoryError. ``invocations`` lists (device, batch size) of every call."""

    @staticmethod
    def make(tiny: dict[str, Path], capacity: int, **extra: Any) -> Any:
        from providers.diffusers_local import DiffusersProvider

        class Double(DiffusersProvider):
            invocations: list[tuple[str, int]]

            def device_and_dtype(self, family: str = "sd15", device: str | None = None) -> tuple[str, Any]:
                return device or "cuda", torch.float32

            def pipeline(self, model: str, device: str | None = None) -> Any:
                return super().pipeline(model, "cpu")  # the pretend GPU runs the CPU pipeline

            def _invoke(self, pipe: Any, kwargs: dict[str, Any], device: str) -> Any:
                self.invocations.append((device, len(kwargs["prompt"])))
                if device == "cuda" and len(kwargs["prompt"]) > capacity:
                    raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.50 GiB")
                return super()._invoke(pipe, kwargs, device)

        made = Double(config=config(tiny, **extra), secrets=secrets())
        made.invocations = []
        return made


def requests(seeds: list[int]) -> list[GenerationRequest]:
    return [
        GenerationRequest(
            prompt=f"a ceramic mug, variation {s}", negative_prompt="", width=SIZE, height=SIZE, num_inference_steps=STEPS, guidance_scale=7.5, seed=s
        )
        for s in seeds
    ]


def test_out_of_memory_retries_once_at_half_the_batch(tiny_model) -> None:  # type: ignore[no-untyped-def]
    provider = PretendGpu.make(tiny_model, capacity=2)
    results = provider.generate_batch(requests([1, 2, 3, 4]))
    assert provider.invocations == [("cuda", 4), ("cuda", 2), ("cuda", 2)]
    assert [r.seed for r in results] == [1, 2, 3, 4]
    assert all(r.metadata["device"] == "cuda" and r.metadata["batch_size"] == 2 for r in results)
    assert provider.batch_limit(requests([5])[0]) == 2  # the next batches start at the size that fitted
    provider.invocations.clear()
    provider.generate_batch(requests([5, 6, 7, 8]))
    assert provider.invocations == [("cuda", 2), ("cuda", 2)]
    provider.close()


def test_out_of_memory_again_falls_back_to_the_cpu_when_allowed(tiny_model, planned, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from providers.diffusers_local import DiffusersProvider
    from generation.batching import generate_batch_images

    db, pks = planned
    provider = PretendGpu.make(tiny_model, capacity=0, cpu_fallback=True)
    rows = generate_batch_images(worker_of(db, chain_of(provider), tmp_path), pks)
    assert provider.invocations == [("cuda", 4), ("cuda", 2), ("cpu", 4)]  # retried once smaller, then the CPU
    assert [(r.status, r.provider, r.device) for r in rows] == [("generated", "diffusers", "cpu")] * 4
    assert all([a.status for a in db.attempts(pk)] == ["success"] for pk in pks)

    plain = DiffusersProvider(config=config(tiny_model), secrets=secrets())  # the same seeds on the CPU proper
    expected = plain.generate_batch(
        [
            GenerationRequest(
                prompt=r.prompt or "",
                negative_prompt=r.negative_prompt or "",
                width=SIZE,
                height=SIZE,
                num_inference_steps=STEPS,
                guidance_scale=7.5,
                seed=r.seed,
            )
            for r in rows
        ]
    )
    for row, result in zip(rows, expected, strict=True):
        assert abs(pixels(Path(row.spool_path).read_bytes()) - pixels(result.image)).max() <= 2  # type: ignore[arg-type,union-attr]
    provider.close()
    plain.close()


def test_out_of_memory_without_cpu_fallback_moves_down_the_chain(tiny_model) -> None:  # type: ignore[no-untyped-def]
    provider = PretendGpu.make(tiny_model, capacity=0)  # cpu_fallback off (the default)
    own = provider.generate_batch(requests([1, 2, 3, 4]))
    assert provider.invocations == [("cuda", 4), ("cuda", 2)]
    assert all(isinstance(r, TransientProviderError) and "out of memory" in str(r) for r in own)

    provider.invocations.clear()
    attempts: list[tuple[int, str, str, str | None]] = []
    results = chain_of(provider).generate_batch(requests([1, 2]), lambda i, a: attempts.append((i, a.provider, a.status, a.error_class)))
    assert provider.invocations == [("cuda", 1), ("cuda", 1)]  # the limit halved twice: one image per call, no CPU
    assert [r.provider for r in results] == ["placeholder", "placeholder"]  # type: ignore[union-attr]
    assert sorted(attempts) == [
        (0, "diffusers", "failed", "transient"),
        (0, "placeholder", "success", None),
        (1, "diffusers", "failed", "transient"),
        (1, "placeholder", "success", None),
    ]
    provider.close()


def test_batch_limit_follows_the_free_gpu_memory(tiny_model, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The GPU's memory figures cannot be produced without a GPU: torch.cuda's four readings
    are replaced by a GPU with 10 GiB free of which 1 GiB is cached by the allocator."""
    provider = PretendGpu.make(tiny_model, capacity=64, max_batch_size=8)
    request = requests([1])[0]
    assert provider.batch_limit(request) == 8  # nothing measured yet: the configured size
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (9 * 2**30, 80 * 2**30))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda *a: 3 * 2**30)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda *a: 2 * 2**30)
    per_image = 3 * 2**30  # bytes one 64 x 64 image needed on an earlier call
    provider._bytes_per_pixel["tiny"] = per_image / (SIZE * SIZE)
    assert provider.batch_limit(request) == 3  # 0.9 x 10 GiB // 3 GiB
    provider._bytes_per_pixel["tiny"] = 20 * 2**30 / (SIZE * SIZE)
    assert provider.batch_limit(request) == 1  # never below one image
    provider._bytes_per_pixel["tiny"] = 2**20 / (SIZE * SIZE)
    assert provider.batch_limit(request) == 8  # never above max_batch_size


def test_a_batch_reserves_and_settles_the_budget_per_claim(tiny_model, planned, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A priced local model (USD 0.01 per image) under a daily cap of USD 0.03: three images
    of the slot's batch get a reservation naming their slot and run, settled with the row's
    outcome; the fourth is refused by the cap before the call and goes down the chain."""
    from sqlmodel import select

    from config.generation import BudgetConfig
    from providers.chain import ProviderChain
    from providers.diffusers_local import DiffusersProvider
    from providers.placeholder import PlaceholderProvider
    from storage.db import BudgetLedgerRecord
    from storage.ledger import ImageLedger
    from generation.batching import generate_batch_images
    from generation.budget import BudgetLedger

    db, pks = planned
    budget = BudgetLedger(db, BudgetConfig(daily_usd=0.03, monthly_usd=1.0))
    provider = DiffusersProvider(config=config(tiny_model, cost_usd=0.01), secrets=secrets())
    chain = ProviderChain([provider, PlaceholderProvider(config=PlaceholderConfig(), secrets=secrets())], retry=RetryConfig(backoff_s=0.0), budget=budget)
    worker = worker_of(db, chain, tmp_path)
    worker.ledger = ImageLedger(db, settle=budget.settle_in, on_takeover=budget.close_for_claim)
    rows = generate_batch_images(worker, pks)

    assert provider.calls == 1  # one pipeline call for the three images the cap allowed
    assert [r.status for r in rows] == ["generated"] * 4
    paid = [r for r in rows if not r.is_placeholder]
    assert len(paid) == 3 and {(r.provider, r.cost_usd) for r in paid} == {("diffusers", 0.01)}
    (refused,) = [r for r in rows if r.is_placeholder]
    assert refused.provider == "placeholder" and refused.cost_usd == 0.0
    assert [(a.provider, a.status, a.error_class) for a in db.attempts(refused.id)] == [("diffusers", "skipped", "budget"), ("placeholder", "success", None)]
    with db.session() as session:
        entries = list(session.exec(select(BudgetLedgerRecord)))
    settled = sorted((e.image_pk, e.run_key, e.state, e.actual_usd) for e in entries if e.state != "refused")
    assert settled == sorted((r.id, "batch-run", "settled", 0.01) for r in paid)
    assert budget.total_spent() == pytest.approx(0.03)
    provider.close()


def test_a_spool_that_cannot_take_the_batch_still_counts_each_call(tiny_model, planned, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The spool path is a file: no image can be written, yet each row ends ``failed``
    (our side, retried by a later run) with its provider attempt and its cost (USD 0.01)."""
    from config.generation import BudgetConfig
    from providers.chain import ProviderChain
    from providers.diffusers_local import DiffusersProvider
    from storage.ledger import ImageLedger
    from generation.batching import generate_batch_images
    from generation.budget import BudgetLedger

    db, pks = planned
    budget = BudgetLedger(db, BudgetConfig(daily_usd=1.0, monthly_usd=1.0))
    provider = DiffusersProvider(config=config(tiny_model, cost_usd=0.01), secrets=secrets())
    worker = worker_of(db, ProviderChain([provider], retry=RetryConfig(backoff_s=0.0), budget=budget), tmp_path)
    worker.ledger = ImageLedger(db, settle=budget.settle_in, on_takeover=budget.close_for_claim)
    worker.settings.spool_dir.parent.mkdir(parents=True)
    worker.settings.spool_dir.write_text("not a folder")
    rows = generate_batch_images(worker, pks)
    assert provider.calls == 1
    assert [(r.status, r.failure_kind, r.cost_usd) for r in rows] == [("failed", "error", 0.01)] * 4
    assert all("spool" in (r.error or "") for r in rows)
    assert all([a.status for a in db.attempts(pk)] == ["success"] for pk in pks)
    assert budget.total_spent() == pytest.approx(0.04) and worker.batch_ended == set(pks)
    provider.close()
