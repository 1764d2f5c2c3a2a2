"""Claims spread over workers (issue 19): three worker processes run the same date against one
PostgreSQL database; each claims slots only as it has capacity (generation.produce
``claim_capacity``), so each does part of the date, every image is made and paid once.

The paid provider is the loopback AUTOMATIC1111 server (tests/servers.py) holding every request
at its gate until the three workers have calls in flight together: a worker that claimed the
whole date before the others started leaves them nothing to ask, and the gate stays shut.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from config.generation import BudgetConfig
from generation.budget import BudgetLedger
from generation.produce import claim_capacity
from storage.db import Database
from tests.servers import A1111Server
from tests.test_run_ledger import PRICE, cli_env, paid

WORKERS, CONCURRENCY, COUNT = 3, 2, 16


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # the session's PostgreSQL database, emptied
def test_three_workers_on_one_date_each_do_part_of_it(db_url: str, make_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert WORKERS * claim_capacity(CONCURRENCY) < COUNT  # room for every worker's first claims
    with A1111Server(hold_until=WORKERS * CONCURRENCY, hold_timeout_s=30) as server:
        config = make_config(**paid(server.url), database_url=db_url, concurrency=CONCURRENCY)
        env = cli_env(config, "http://127.0.0.1:9/api")  # the workers never talk to Prefect
        command = [sys.executable, "-m", "tests.ledger_worker", "2026-12-04", str(COUNT), "64", "16"]  # 16 threads, as a flow's task runner

        def start() -> subprocess.Popen[str]:
            return subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        first = start()
        deadline = time.monotonic() + 120
        # the first worker has its calls in flight (held at the gate) before the others start
        while len(server.requests) < CONCURRENCY and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        procs = [first, *(start() for _ in range(WORKERS - 1))]
        outputs = [proc.communicate(timeout=300) for proc in procs]
        calls = list(server.answered)
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]
    assert server.gate_opened, f"at most {server.held_at_once} calls in flight together: one worker claimed the date"
    run_keys = [next(line.split()[1] for line in out.splitlines() if line.startswith("run-key ")) for out, _ in outputs]
    db = Database(db_url)
    rows = db.images(flow="daily")
    assert len(rows) == COUNT and {r.status for r in rows} == {"done"} and not any(r.is_placeholder for r in rows)
    assert len(calls) == COUNT and set(Counter(calls).values()) == {1}  # each slot paid exactly once
    entries = BudgetLedger(db, BudgetConfig()).entries()
    assert not [e for e in entries if e.state == "reserved"]
    settled = [e for e in entries if e.state == "settled"]
    per_worker = Counter(e.run_key for e in settled)
    assert sorted(per_worker) == sorted(run_keys) and all(per_worker[key] >= 1 for key in run_keys), per_worker
    assert sum(per_worker.values()) == COUNT and len({e.image_pk for e in settled}) == COUNT  # 0 duplicates
    assert sum(e.actual_usd for e in entries) == pytest.approx(COUNT * PRICE)
    print(f"{COUNT} images over {WORKERS} workers: {sorted(per_worker.values())}; {server.held_at_once} calls held together at most")
    db.dispose()
