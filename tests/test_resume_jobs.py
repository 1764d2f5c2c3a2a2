"""Jobs resumed by id, never paid twice: a run SIGKILLed while the provider's jobs are still
running leaves, for each image, an ``in_flight`` attempt row (written before the call was sent,
at its reservation) carrying the job id the provider answered; the re-run polls those jobs
(``Provider.resume``) instead of submitting again. A BFL task still pending at our timeout
(BFL has no cancel endpoint) is recorded ``pending`` and resumed by id on the next run.

Providers are the loopback protocol servers of tests/providers/servers (they count every
submission); the run is tests/ledger_worker.py in a subprocess, killed with SIGKILL once every
image's job id is in the database (a state, not a moment: nothing here is timed).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from config.settings import BudgetConfig
from generation.budget import BudgetLedger
from storage.db import Database
from tests.providers.servers import bfl, fal, replicate
from tests.providers.servers.common import ProtocolServer

ROOT = Path(__file__).resolve().parent.parent
COUNT = 3


def _hold_bfl(server: Any) -> None:
    server.pending_polls = 10**9


def _release_bfl(server: Any) -> None:
    server.pending_polls = 0
    for task in server.tasks.values():
        task["pending"] = 0


def _hold_fal(server: Any) -> None:
    server.in_queue_polls = 10**9


def _release_fal(server: Any) -> None:
    server.in_queue_polls = 0
    for job in server.jobs.values():
        job["polls"] = 0


def _hold_replicate(server: Any) -> None:
    server.polls = None  # processing until cancelled


def _release_replicate(server: Any) -> None:
    server.polls = 0
    for prediction in server.predictions.values():
        prediction["_polls"] = 1  # the next GET finishes it


#: provider -> (its contract case, keep its jobs running, let them finish)
SERVERS: dict[str, tuple[Any, Callable[[Any], None], Callable[[Any], None]]] = {
    "bfl": (bfl.CASE, _hold_bfl, _release_bfl),
    "fal": (fal.CASE, _hold_fal, _release_fal),
    "replicate": (replicate.CASE, _hold_replicate, _release_replicate),
}


def _config(make_config: Callable[..., Path], name: str, server: ProtocolServer) -> Path:
    case = SERVERS[name][0]
    return make_config(
        chain=[name, "placeholder"],
        concurrency=COUNT,
        dedup={"enabled": False},
        retry={"max_retries": 0, "backoff_s": 0.0},
        pipeline={"lease_s": 1},
        providers={name: {"enabled": True, **case.settings(server.url), "timeout_s": 600}, "download": {"test_base_url": server.url}},
    )


def _env(config: Path, name: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"CONTENT_PIPELINE_CONFIG": str(config), "PREFECT_API_URL": "http://127.0.0.1:9/api", "PYTHONPATH": str(ROOT), **SERVERS[name][0].secrets})
    return env


def _jobs_recorded(db: Database) -> int:
    try:
        return sum(1 for a in db.attempts() if a.status == "in_flight" and a.job_id)
    except Exception:  # the worker has not created the tables yet
        return 0


@pytest.mark.parametrize("name", sorted(SERVERS))
def test_killed_mid_poll_then_rerun_pays_one_job_per_image(make_config, tmp_path: Path, name: str) -> None:
    case, hold, release = SERVERS[name]
    with case.server() as server:
        hold(server)
        env = _env(_config(make_config, name, server), name)
        db = Database(f"sqlite:///{tmp_path / 'output' / 'content-pipeline.db'}")
        worker = [sys.executable, "-m", "tests.ledger_worker", "2026-12-04", str(COUNT), "256"]
        proc = subprocess.Popen(worker, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 300  # a guard against a hung test, not an assertion on speed
        while _jobs_recorded(db) < COUNT and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        killed = db.attempts()
        release(server)
        last = subprocess.run(worker, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        submitted = [r for r in server.requests if case.is_generation(r)]
    assert last.returncode == 0, last.stderr[-3000:]
    # the killed run: one in-flight row per image, each with its job id and its reservation
    assert len([a for a in killed if a.status == "in_flight" and a.job_id and a.reservation_id]) == COUNT
    rows = db.images()
    assert len(rows) == COUNT and {r.status for r in rows} == {"done"} and not any(r.is_placeholder for r in rows)
    assert len(submitted) == COUNT  # one paid job per image: the re-run polled, never resubmitted
    attempts = db.attempts()
    assert {a.status for a in attempts} == {"success"} and len(attempts) == COUNT
    assert len({a.job_id for a in attempts}) == COUNT and {a.job_id for a in attempts} == {a.job_id for a in killed}
    entries = BudgetLedger(db, BudgetConfig()).entries()
    assert not [e for e in entries if e.state == "reserved"]
    per_job = attempts[0].cost_usd
    # the killed calls were attributed to their images at their may-have-billed cost (the job's
    # price; for GPU-second billing its hardware price x the timeout), then at what the job was billed
    assert all(a.cost_usd >= per_job for a in killed)
    if name == "replicate":  # billed by the server's predict_time x the hardware's price per second
        assert per_job == pytest.approx(case.cost_usd)
    billed = round(len(submitted) * per_job, 6)
    assert per_job > 0 and round(sum(e.actual_usd for e in entries), 6) == billed  # the ledger: what was billed
    assert sum(r.cost_usd for r in rows) == pytest.approx(billed)
    db.dispose()


def test_a_bfl_task_pending_at_our_timeout_is_billed_then_resumed_by_id(make_config, monkeypatch) -> None:
    """BFL has no cancel endpoint: a task still pending at our timeout runs on and is billed. It is
    recorded ``pending`` at its price with its task id; the next run polls that task and takes its
    image: one submission, the ledger equal to the one task billed."""
    from datetime import date

    from domain.model import ImageSlot
    from generation.generate import generate_image
    from generation.record import record_planned
    from wiring.runtime import get_runtime

    case = bfl.CASE
    with bfl.BFLServer() as server:
        _hold_bfl(server)
        for key, value in case.secrets.items():
            monkeypatch.setenv(key, value)
        make_config(
            chain=["bfl"],
            dedup={"enabled": False},
            retry={"max_retries": 0, "backoff_s": 0.0},
            providers={"bfl": {"enabled": True, **case.settings(server.url), "timeout_s": 3}, "download": {"test_base_url": server.url}},
        )
        rt = get_runtime()
        db = rt.db
        [pk] = record_planned(db, rt.library, [ImageSlot("daily", date(2026, 12, 4), "0600-food", 0, "food")])
        first = generate_image(db, rt.chain("timeout"), pk, spool_dir=rt.settings.spool_dir, policy=rt.settings.policy, ledger=rt.ledger)
        [pending] = db.attempts(pk)
        _release_bfl(server)
        again = generate_image(db, rt.chain("resumed"), pk, spool_dir=rt.settings.spool_dir, policy=rt.settings.policy, ledger=rt.ledger)
        submitted = [r for r in server.requests if case.is_generation(r)]
    assert first.status == "failed" and first.failure_kind == "transient", (first.status, first.error)
    assert pending.status == "pending" and pending.job_id and pending.cost_usd == pytest.approx(case.cost_usd)
    assert again.status == "generated", (again.status, again.error)
    assert len(submitted) == 1  # resumed by id, never resubmitted blind
    [attempt] = db.attempts(pk)
    assert attempt.status == "success" and attempt.job_id == pending.job_id
    assert rt.budget.total_spent() == pytest.approx(case.cost_usd)
    assert db.images()[0].cost_usd == pytest.approx(case.cost_usd)
