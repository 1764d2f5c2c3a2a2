"""The daily flow on a real Prefect server with the local diffusers provider first in the
chain: a slot's four variations are generated in one pipeline call, then every image
goes through post-processing, upload and record as usual. The pipeline is the tiny random
SD 1.5 of tests/providers/test_diffusers_local.py (nothing downloaded); the pipeline call
is observed through a spy that calls the real one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("diffusers", reason="the local extra is not installed")
torch = pytest.importorskip("torch")

from wiring.runtime import get_runtime  # noqa: E402
from tests.providers.test_diffusers_batching import SCHEDULES, TEMPLATE  # noqa: E402
from tests.providers.test_diffusers_local import build_tiny_model  # noqa: E402

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    os.environ["HF_HUB_OFFLINE"] = "1"
    torch.set_num_threads(2)
    yield build_tiny_model(tmp_path_factory.mktemp("tiny-sd"))
    os.environ.pop("HF_HUB_OFFLINE", None)


def test_daily_slot_variations_are_one_pipeline_call(
    make_config,
    tiny_model,
    tmp_path: Path,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows.daily import daily_content
    from providers.diffusers_local import DiffusersProvider

    calls: list[tuple[str, int]] = []
    real_invoke = DiffusersProvider._invoke

    def spy(self: DiffusersProvider, pipe: Any, kwargs: dict[str, Any], device: str) -> Any:
        calls.append((device, len(kwargs["prompt"])))
        return real_invoke(self, pipe, kwargs, device)

    monkeypatch.setattr(DiffusersProvider, "_invoke", spy)
    templates = tmp_path / "templates"
    (templates / "products").mkdir(parents=True)
    (templates / "products" / "tiny-mug.yaml").write_text(TEMPLATE)
    (templates / "schedules.yaml").write_text(SCHEDULES)
    make_config(
        templates_dir=str(templates),
        chain=["diffusers", "placeholder"],
        dedup={"enabled": False},
        providers={
            "placeholder": {"enabled": True},
            "diffusers": {
                "enabled": True,
                "device": "cpu",
                "model": "tiny",
                "local_files_only": True,
                "max_batch_size": 4,
                "models": {"tiny": {"path": str(tiny_model["model"]), "pipeline": "sd15"}},
            },
        },
    )
    summary = daily_content(run_date=date(2026, 11, 23))
    rows = get_runtime().db.images()
    assert calls == [("cpu", 4)]  # the slot's four images: one pipeline call
    assert len(rows) == 4 and len({r.seed for r in rows}) == 4
    assert {(r.provider, r.device, r.is_placeholder) for r in rows} == {("diffusers", "cpu", False)}
    assert [i.status for i in summary.images] == [r.status for r in rows]
    assert all(len(get_runtime().db.attempts(r.id)) == 1 for r in rows)
    done = {r.status for r in rows}
    assert done <= {"done", "blocked", "skipped"} and "done" in done, [(r.status, r.error) for r in rows]

    daily_content(run_date=date(2026, 11, 23))  # a re-run generates nothing again
    assert calls == [("cpu", 4)]
