"""The run ledger under real conditions: two runs of one date at once, a provider outage
then a re-run, 20 SIGKILLs then re-runs, and exact money (billed-but-rejected outputs,
size mismatches, per-second settlements against a cap).

The paid provider is the loopback AUTOMATIC1111 server (tests/servers.py) with
``cost_usd`` configured: it counts every request and every 200 answer (what a paid
backend bills). Nothing here depends on the machine's speed: loopback timeouts are
generous, kills land at random moments and the assertions hold wherever they land.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from domain.model import GenerationRequest, GenerationResult, ImageSlot
from domain.errors import (
    AllProvidersFailedError,
    BudgetExceededError,
    ContentFilteredError,
    RejectedProviderError,
    TransientProviderError,
)
from config.generation import BudgetConfig
from config.secrets import Secrets
from providers.chain import RetryConfig
from providers.spec import ProviderConfig
from providers.base import Provider
from providers.chain import ProviderChain
from storage.db import Database
from generation.budget import BudgetLedger
from tests.conftest import a1111_config
from tests.servers import A1111Server

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "cli.main"]
PRICE = 0.04


def cli_env(config: Path, api_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"CONTENT_PIPELINE_CONFIG": str(config), "PREFECT_API_URL": api_url, "PYTHONPATH": str(ROOT)})
    return env


def paid(url: str, **extra: Any) -> dict[str, Any]:
    """Config of a chain paid A1111 (USD 0.04 an image) -> placeholder, no retries, no dedup
    (the loopback answers every prompt with the same photo)."""
    config = a1111_config(url, cost_usd=PRICE)
    return {**config, "dedup": {"enabled": False}, "retry": {"max_retries": 0, "backoff_s": 0.0}, **extra}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- two runs of the same date at once ---------------------------------------------------------
@pytest.mark.usefixtures("prefect_server")
def test_two_runs_of_the_same_date_at_once_make_each_image_once(db_url: str, make_config, tmp_path: Path, prefect_server: str) -> None:  # type: ignore[no-untyped-def]
    with A1111Server(delay_s=0.3) as server:
        config = make_config(**paid(server.url), database_url=db_url, concurrency=2)
        env = cli_env(config, prefect_server)
        procs = [
            subprocess.Popen([*CLI, "run", "daily", "--date", "2026-12-01"], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for _ in range(2)
        ]
        outputs = [p.communicate(timeout=600)[0] for p in procs]
        calls = list(server.answered)
    for proc, output in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, output[-3000:]
        assert "Traceback" not in output and "cannot become" not in output
    db = Database(db_url)
    rows = db.images(flow="daily")
    assert len(rows) == 8 and {r.status for r in rows} == {"done"}
    assert not any(r.is_placeholder for r in rows)  # no placeholder where a real image was paid for
    assert len(calls) == 8 and sorted(Counter(calls).values()) == [1] * 8  # each slot paid exactly once
    successes = [a for a in db.attempts() if a.status == "success"]
    assert sorted(a.image_pk for a in successes) == sorted(r.id for r in rows)
    ledger = BudgetLedger(db, BudgetConfig())
    assert ledger.total_spent() == pytest.approx(8 * PRICE)
    assert not [e for e in ledger.entries() if e.state == "reserved"]
    db.dispose()


# -- an outage, then a re-run --------------------------------------------------------------------
@pytest.mark.usefixtures("prefect_server")
def test_provider_down_then_back_the_rerun_makes_every_image_real(make_config, tmp_path: Path, prefect_server: str) -> None:  # type: ignore[no-untyped-def]
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    port = free_port()  # nothing listens there yet: connection refused
    config = make_config(**paid(f"http://127.0.0.1:{port}"))
    env = cli_env(config, prefect_server)
    first = subprocess.run([*CLI, "run", "daily", "--date", "2026-12-02"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert first.returncode == 1, first.stdout[-2000:] + first.stderr[-2000:]
    assert "8 of 8 images not done as real content: 8 placeholder" in " ".join(first.stderr.split())
    with get_client(sync_client=True) as client:
        [run] = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=["daily-2026-12-02"])))
    assert run.state is not None and run.state.is_failed() and "8 placeholder" in (run.state.message or "")
    db = Database(f"sqlite:///{tmp_path / 'output' / 'content-pipeline.db'}")
    assert {(r.status, r.failure_kind) for r in db.images()} == {("placeholder", "transient")}
    # refused connections (transient), then the circuit opened: no call made, nothing billed
    classes = {a.error_class for a in db.attempts() if a.provider == "automatic1111"}
    assert "transient" in classes and classes <= {"transient", "circuit_open"}
    assert all(a.cost_usd == 0.0 for a in db.attempts())
    assert not list((tmp_path / "output").glob("content/**/*.png"))  # never published in between

    with A1111Server(port=port) as server:  # the provider is back, on the address that refused
        second = subprocess.run([*CLI, "run", "daily", "--date", "2026-12-02"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        calls = list(server.answered)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=["daily-2026-12-02"])))
    assert sorted(r.state.type.value for r in runs if r.state) == ["COMPLETED", "FAILED"]
    rows = db.images()
    assert len(rows) == 8 and {r.status for r in rows} == {"done"} and not any(r.is_placeholder for r in rows)
    assert all(r.storage_key and r.storage_key.startswith("content/") for r in rows)
    assert len(calls) == 8
    db.dispose()


# -- 20 SIGKILLs, then re-runs -------------------------------------------------------------------
def test_twenty_random_sigkills_then_reruns_lose_nothing_and_pay_exactly(make_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A run of 12 small images is killed 20 times at random moments (each re-run resumes
    the last); then a last run finishes. 0 lost, 0 duplicates, extra paid calls at most the
    images the killed runs were generating, 0 reservations open, money exact."""
    count, kills = 12, 20
    rng = random.Random(20261129)
    with A1111Server() as server:
        config = make_config(
            **paid(server.url),
            concurrency=2,
            pipeline={"lease_s": 1},
            renditions=[{"name": "thumb", "width": 64, "height": 64, "fit": "cover", "format": "webp"}],
        )
        env = cli_env(config, "http://127.0.0.1:9/api")  # the worker never talks to Prefect
        db = Database(f"sqlite:///{tmp_path / 'output' / 'content-pipeline.db'}")
        in_flight_at_kills, mid_run = 0, 0
        for _ in range(kills):
            before = progress(db)
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.ledger_worker", "2026-12-03", str(count), "128"],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            # kill at a random point of the run's own progress (not of the clock): 0, 1 or 2 more
            # images past generation, then a random instant in what follows
            target = min(count - 1, before + rng.choice([0, 1, 1, 2]))
            deadline = time.monotonic() + 120
            while progress(db) < target and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.3))
            with contextlib.suppress(ProcessLookupError):  # the run may have ended (and been reaped) already
                os.killpg(proc.pid, signal.SIGKILL)
            code = proc.wait(timeout=60)
            assert code in (0, -signal.SIGKILL), (code, proc.stderr.read().decode(errors="replace")[-3000:] if proc.stderr else "")
            # the slots the killed run was generating: the only calls a re-run may pay again
            in_flight_at_kills += sum(1 for r in db.images() if r.status == "generating")
            mid_run += 0 < progress(db) < count
        last = subprocess.run(
            [sys.executable, "-m", "tests.ledger_worker", "2026-12-03", str(count), "128"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600
        )
        calls = list(server.answered)
    assert last.returncode == 0, last.stderr[-3000:]
    assert mid_run > 0, "no kill landed in the middle of the date"
    rows = db.images()
    assert len(rows) == count and {r.status for r in rows} == {"done"}  # 0 lost
    assert not any(r.is_placeholder for r in rows)
    output = tmp_path / "output"
    # (a kill during a write may leave the store's hidden ``.tmp-*`` file: never a visible object)
    stored = [p for p in (output / "content").rglob("*") if p.is_file() and p.suffix in (".png", ".webp") and not p.name.startswith(".")]
    per_image = Counter(p.name.split(".")[0].rsplit("-", 1)[1] for p in stored)
    assert set(per_image) == {r.image_id for r in rows} and set(per_image.values()) == {2}  # 0 duplicates
    assert all(len(db.renditions(r.id)) == 2 for r in rows)
    extra = len(calls) - count
    assert 0 <= extra <= in_flight_at_kills, (extra, in_flight_at_kills)
    ledger = BudgetLedger(db, BudgetConfig())
    entries = ledger.entries()
    assert not [e for e in entries if e.state == "reserved"]  # 0 open after the last re-run
    billed = round(len(calls) * PRICE, 6)
    spent = round(sum(e.actual_usd for e in entries), 6)
    settled = [e for e in entries if e.state == "settled"]
    expired = [e for e in entries if e.state == "expired"]
    # every call the provider answered is in the ledger, each once: settled by its run, or, for
    # a run killed after the answer, closed at its reservation when its lease expired
    assert len(settled) <= len(calls) <= len(settled) + len(expired)
    # spent == billed, except reservations of calls killed before they left (the ledger cannot
    # know; it counts them at their reservation, the safe side): at most one per kill
    unsent = round((spent - billed) / PRICE)
    assert spent == pytest.approx(billed + unsent * PRICE) and 0 <= unsent <= kills, (spent, billed)
    assert sum(r.cost_usd for r in rows) == pytest.approx(len(settled) * PRICE)
    print(
        f"{kills} kills ({mid_run} mid-date): {len(calls)} paid calls for {count} images, extra {extra} <= "
        f"{in_flight_at_kills} in flight at the kills; ledger USD {spent:.2f} = billed {billed:.2f} + {unsent} "
        f"reservation(s) of calls killed before they left; {len(expired)} closed at lease expiry"
    )
    db.dispose()


def progress(db: Database) -> int:
    """Slots of the date past generation (generated or further, failed excluded)."""
    try:
        return sum(1 for r in db.images() if r.status in ("generated", "processed", "uploaded", "done"))
    except Exception:
        return 0


# -- money -----------------------------------------------------------------------------------------
def _chain_db(make_config, url: str, **extra: Any) -> tuple[Any, Any]:  # type: ignore[no-untyped-def]
    from wiring.runtime import get_runtime

    make_config(**{**paid(url), **extra})
    rt = get_runtime()
    return rt, rt.db


@pytest.mark.parametrize("mode", ["garbage", "blank", "wrongsize"])
def test_billed_but_rejected_output_is_counted_and_paid_once(make_config, mode: str) -> None:  # type: ignore[no-untyped-def]
    """The provider answered 200 (and billed) but the output fails our check: the call costs its
    price in the ledger; the deterministic failure is not retried on the same provider, nor by
    the next run."""
    from generation.generate import generate_image
    from generation.record import record_planned

    with A1111Server(default=mode) as server:
        rt, db = _chain_db(make_config, server.url, retry={"max_retries": 2, "backoff_s": 0.0}, chain=["automatic1111"])
        slot = ImageSlot("daily", date(2026, 12, 4), "0600-food", 0, "food")
        [pk] = record_planned(db, rt.library, [slot])
        row = generate_image(db, rt.chain("money"), pk, spool_dir=rt.settings.spool_dir, policy=rt.settings.policy, ledger=rt.ledger)
        assert row.status == "failed" and row.failure_kind == "rejected", (row.status, row.error)
        assert len(server.requests) == 1  # paid once: not retried on the same provider
        [attempt] = db.attempts(pk)
        # an all-black image is a safety checker's "filtered" answer: a rejection, billed all the same
        assert attempt.error_class == ("content_filtered" if mode == "blank" else "invalid_output")
        assert attempt.cost_usd == pytest.approx(PRICE)
        assert row.cost_usd == pytest.approx(PRICE)
        assert rt.budget.total_spent() == pytest.approx(PRICE)
        assert rt.budget.spent()[0] == pytest.approx(PRICE)
        again = generate_image(db, rt.chain("money-2"), pk, spool_dir=rt.settings.spool_dir, policy=rt.settings.policy, ledger=rt.ledger)
        assert again.status == "failed" and len(server.requests) == 1  # a rejection is not retried by a re-run


def test_refused_connection_and_http_errors_are_not_billed(make_config) -> None:  # type: ignore[no-untyped-def]
    from generation.generate import generate_image
    from generation.record import record_planned

    with A1111Server(default="500") as server:
        rt, db = _chain_db(make_config, server.url, chain=["automatic1111"])
        [pk] = record_planned(db, rt.library, [ImageSlot("daily", date(2026, 12, 5), "0600-food", 0, "food")])
        row = generate_image(db, rt.chain("free"), pk, spool_dir=rt.settings.spool_dir, policy=rt.settings.policy, ledger=rt.ledger)
    assert row.status == "failed" and row.failure_kind == "transient"
    assert [a.cost_usd for a in db.attempts(pk)] == [0.0] and rt.budget.total_spent() == 0.0


class PerSecondProvider(Provider):
    """A provider billed per second of compute (like Replicate's per-second pricing): USD
    ``rate`` a second, at most ``config.timeout_s`` seconds a call. Its answers report the
    seconds used, anywhere up to the timeout; the estimate assumes a typical 5 s."""

    name = "per-second"
    display_name = "Per-second test provider"
    rate = 0.01

    def __init__(self, seconds: Callable[[], float]) -> None:
        super().__init__(config=ProviderConfig(timeout_s=10.0), secrets=Secrets(_env_file=None))  # type: ignore[call-arg]
        self.seconds = seconds

    def estimate_cost(self, request: GenerationRequest) -> float:
        return 5 * self.rate

    def max_cost(self, request: GenerationRequest, timeout_s: float | None = None) -> float:
        return self.rate * (timeout_s or self.config.timeout_s)

    def generate(self, request: GenerationRequest) -> GenerationResult:
        used = self.seconds()
        return GenerationResult(b"png", self.name, "m", 1, 64, 64, cost_usd=round(used * self.rate, 6), latency_s=used)


def test_settlements_above_the_estimate_never_pass_the_cap(db_url: str) -> None:
    """40 calls from 8 threads to a per-second provider whose real cost runs up to twice its
    estimate: the reservation is the upper bound (rate x timeout), so spent never passes the
    USD 1.00 cap, whatever the settlements; calls that could pass it are refused."""
    db = Database(db_url)
    ledger = BudgetLedger(db, BudgetConfig(daily_usd=1.0, monthly_usd=100.0))
    rng = random.Random(7)
    lock = threading.Lock()

    def seconds() -> float:
        with lock:
            return rng.uniform(5.0, 10.0)  # at or above the 5 s estimate: settlements above it

    chain = ProviderChain([PerSecondProvider(seconds)], retry=RetryConfig(max_retries=0), budget=ledger)
    outcomes: list[str] = []
    peaks: list[float] = []

    def one() -> None:
        for _ in range(5):
            try:
                chain.generate(GenerationRequest(prompt="a fox", width=64, height=64))
                outcomes.append("ok")
            except BudgetExceededError:
                outcomes.append("refused")
            except Exception:
                outcomes.append("refused")
            day = next(s for s in ledger.status() if s.scope == "global" and s.period == "day")
            peaks.append(day.spent_usd + day.reserved_usd)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    day = next(s for s in ledger.status() if s.scope == "global" and s.period == "day")
    assert day.reserved_usd == pytest.approx(0.0)
    assert day.spent_usd <= 1.0 + 1e-9 and max(peaks) <= 1.0 + 1e-9
    settled = [e for e in ledger.entries() if e.state == "settled"]
    assert settled and any(e.actual_usd > 5 * PerSecondProvider.rate for e in settled)  # above the estimate
    assert all(e.actual_usd <= e.estimate_usd + 1e-9 for e in settled)  # never above the reservation
    assert outcomes.count("refused") > 0  # the cap stopped the calls that could have passed it
    db.dispose()


class BilledFailureProvider(PerSecondProvider):
    """A per-second provider whose calls fail with ``error`` (which may carry ``billed_usd``)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(lambda: 0.0)
        self.error = error

    def generate(self, request: GenerationRequest) -> GenerationResult:
        raise self.error


@pytest.mark.parametrize(
    ("error", "counted"),
    [
        # an HTTP error status alone says "not billed", but the provider reported 3.7 s of compute
        (TransientProviderError("prediction failed: E1000", provider="per-second", status_code=500, billed_usd=0.037), 0.037),
        # a filtered answer "may have billed" (estimate 0.05), but the provider says it did not
        (ContentFilteredError("content filtered", provider="per-second", billed_usd=0.0), 0.0),
        # unknown: the may_have_billed rule (a rejection after a 2xx: the estimate)
        (RejectedProviderError("prediction failed", provider="per-second"), 0.05),
        # ours, not the provider's answer: a client closed under the call, a database error (issue 19)
        (RuntimeError("Cannot send a request, as the client has been closed."), 0.0),
        (sqlite3.OperationalError("database is locked"), 0.0),
    ],
)
def test_a_failed_call_is_billed_what_its_error_carries(db_url: str, error: Exception, counted: float) -> None:
    """A failed call is counted at ``ProviderError.billed_usd`` when the adapter knows it (the
    attempt row and the budget settlement alike), else by ``may_have_billed``."""
    db = Database(db_url)
    ledger = BudgetLedger(db, BudgetConfig(daily_usd=1.0, monthly_usd=100.0))
    attempts: list[Any] = []
    chain = ProviderChain([BilledFailureProvider(error)], retry=RetryConfig(max_retries=0), budget=ledger)
    with pytest.raises(AllProvidersFailedError):
        chain.generate(GenerationRequest(prompt="a fox", width=64, height=64), attempts.append)
    assert [a.cost_usd for a in attempts] == [pytest.approx(counted)]
    [entry] = ledger.entries()
    assert entry.estimate_usd == pytest.approx(0.1)  # reserved: rate x timeout
    assert entry.actual_usd == pytest.approx(counted) and entry.state == ("settled" if counted else "released")
    assert ledger.total_spent() == pytest.approx(counted)
    db.dispose()


# -- overhead: transactions and task runs per image ------------------------------------------------
def test_an_image_costs_at_most_six_database_transactions(make_config) -> None:  # type: ignore[no-untyped-def]
    """Planning and producing 10 images from a paid provider, counted on the engine: every
    transaction (reads included) over the number of images."""
    from sqlalchemy import event

    from generation.produce import produce_image
    from generation.record import record_planned
    from wiring.runtime import get_runtime

    with A1111Server() as server:
        make_config(**paid(server.url), renditions=[{"name": "thumb", "width": 64, "height": 64, "fit": "cover", "format": "webp"}])
        rt = get_runtime()
        assert rt.ledger is not None  # migrations and engine before counting
        slots = [ImageSlot("daily", date(2026, 12, 6), f"06{i // 4}0-food", i % 4, "food") for i in range(12)]
        begun: list[int] = []
        event.listen(rt.db.engine, "begin", lambda connection: begun.append(1))
        pks = record_planned(rt.db, rt.library, slots)
        planning = len(begun)
        worker = rt.worker("tx-count")
        rows = [produce_image(worker, pk) for pk in pks]
        rt.end_run("tx-count")
    assert {r.status for r in rows} == {"done"} and len(server.answered) == 12
    per_image = len(begun) / len(slots)
    assert planning <= 4, planning  # existing rows, the rotation's previous day, the insert
    assert per_image <= 6, f"{per_image:.2f} transactions per image ({planning} for planning)"
    produce_only = (len(begun) - planning) / len(slots)
    assert produce_only <= 5, produce_only  # claim+generating, reservation, generated+settlement, dedup read, done
    print(f"{per_image:.2f} transactions per image: {planning} for planning 12 slots, {produce_only:.2f} per image after")


@pytest.mark.usefixtures("prefect_server")
def test_one_task_run_per_image_all_recorded_and_terminal(make_config) -> None:  # type: ignore[no-untyped-def]
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.daily import daily_content

    with A1111Server() as server:
        make_config(**paid(server.url))
        state = daily_content(run_date=date(2026, 12, 7), return_state=True)
    assert state.is_completed()
    deadline = time.monotonic() + 60  # task run states reach the server as events, shortly after
    while True:
        with get_client(sync_client=True) as client:
            tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
        if all(t.state and t.state.is_final() for t in tasks) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    names = Counter(t.task_key.rsplit("-", 1)[0] for t in tasks)
    per_image = [t for t in tasks if t.name.startswith("image-")]
    assert len(per_image) == 8, names  # one task run per image
    assert len(tasks) <= 8 + 4, names  # plus close-dead-runs, plan-images, generate-batches, alerts
    assert all(t.state and t.state.is_completed() for t in tasks), [(t.name, t.state) for t in tasks]
