"""Scale-out on a process work pool: images/s with 1, 2, 3 workers, a worker killed
mid-run, and one large run's Prefect history.

    .venv/bin/python benchmarks/scaleout.py                       # 3 dates x 40 images, workers 1,2,3, the kill run
    .venv/bin/python benchmarks/scaleout.py --dates 1 --images 8 --workers 1,2 --no-kill   # a quick look (7 min at load 10)
    .venv/bin/python benchmarks/scaleout.py --dates 1 --images 1000 --workers 1 --no-kill  # the 1,000-image history

Starts, all on 127.0.0.1 and torn down at the end:

* ``prefect server start`` with its database on PostgreSQL (a fresh database on
  127.0.0.1:5432, user postgres, created and dropped here), the metrics database on
  PostgreSQL too;
* moto's S3 server (tests/s3server.py) as the shared store (``storage_url: s3://...``);
* a loopback AUTOMATIC1111 WebUI (tests/servers.py) in its own process answering each
  txt2img call after ``--delay`` seconds (2 s) with a real photo; it counts the calls it
  answered (what a paid backend bills);
* a ``process`` work pool with the daily deployment on it (``Flow.from_source().deploy``,
  as README "Many machines" does with ``prefect deploy``) and ``prefect worker start
  --limit 1`` processes (each runs one flow run at a time).

Each worker count runs ``--dates`` daily dates of ``--images`` images each (a copy of
templates/ whose schedules.yaml has that many daily slots) with ``concurrency``
(``--concurrency``, default 8) provider calls per run and the Prefect global concurrency
limit ``provider-automatic1111`` (``scale.global_limits``) of ``--limit`` slots shared by
all workers (default: concurrency x the largest worker count, so it is not the bottleneck).

The ideal wall is what the provider alone allows:
``max(ceil(dates / workers) x ceil(images / concurrency), ceil(dates x images / limit)) x delay``;
the measured wall runs from the trigger of the first run to the end time of the last
(as the Prefect API records it), so it includes each flow run's process start.

The kill run (3 workers, unless ``--no-kill``): once the run of one date has finished a
quarter of its images, its worker's whole process group (the worker and the flow-run
process it started) gets SIGKILL, as a machine that dies; the date is triggered again at
once (what the next schedule or an operator does), and that run takes the dead run's
slots over when their lease expires (``pipeline.lease_s``, ``--lease`` seconds here,
120 s by default in the product). Checked and printed: slots lost (not done), slots with
more than one successful provider call, the loopback's answered calls against the
ledger's attempt rows, and the Prefect history (the flow runs' states, the task runs not
in a final state, per flow run, read through the API).

Every table carries the load average (os.getloadavg): the dev machine has 2 cores shared
with other work, so figures are only comparable within one table. Nothing here is
imported by the product.
"""

from __future__ import annotations

import argparse
import logging
import math
import multiprocessing
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.prefect_stack import (  # noqa: E402 - after the sys.path line: benchmarks run as scripts
    PrefectServer,
    Proc,
    base_env,
    create_database,
    drop_database,
    pg_url,
    postgres_available,
    tail,
    wait_for,
    write_config,
)

CATEGORIES = ("products", "food", "landscapes", "architecture")
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def _serve(delay: float, conn: Any) -> None:  # pragma: no cover - child process
    from tests.servers import A1111Server, photo

    photo(1024, 1024)  # made (and cached) before any timed request
    server = A1111Server(delay_s=delay)
    with server:
        conn.send(server.url)
        while (command := conn.recv()) != "stop":
            with server.lock:
                conn.send(len(server.answered) if command == "answered" else len(server.requests))


class Loopback:
    """tests/servers.py's A1111Server in a child process (its JSON / base64 work does not
    compete with the workers in this process's GIL); ``answered()``: the 200 answers so far."""

    def __init__(self, delay: float) -> None:
        self._conn, child = multiprocessing.Pipe()
        self._process = multiprocessing.get_context("spawn").Process(target=_serve, args=(delay, child), daemon=True)
        self._process.start()
        self.url = str(self._conn.recv())

    def answered(self) -> int:
        self._conn.send("answered")
        return int(self._conn.recv())

    def received(self) -> int:
        """Requests received, answered or not (a call whose client died mid-call included)."""
        self._conn.send("received")
        return int(self._conn.recv())

    def close(self) -> None:
        self._conn.send("stop")
        self._process.join(10)


def templates_with(images: int, folder: Path, size: int = 0) -> Path:
    """A copy of templates/ whose daily window has ``images`` slots: the four categories in
    turn, at most 50 images per slot time (the schedule's cap), a slot every 5 minutes from
    06:00 (up to 24 slot times: 1,200 images). ``size``: every template asks for ``size`` x
    ``size`` pixels instead of its format (0: unchanged)."""
    shutil.copytree(ROOT / "templates", folder)
    for path in folder.glob("*/*.yaml") if size else []:
        template = yaml.safe_load(path.read_text())
        template["parameters"] = {"quality": "standard", "width": size, "height": size}
        path.write_text(yaml.safe_dump(template, sort_keys=False))
    schedules = yaml.safe_load((folder / "schedules.yaml").read_text())
    times = max(len(CATEGORIES), math.ceil(images / 50))
    if times > 24:
        raise SystemExit(f"--images {images}: at most 1200 per date (24 slot times of 50 in the 06:00-08:00 window)")
    counts = [images // times + (1 if i < images % times else 0) for i in range(times)]
    schedules["daily"]["slots"] = [
        {"time": f"{6 + i * 5 // 60:02d}:{i * 5 % 60:02d}", "category": CATEGORIES[i % len(CATEGORIES)], "count": n} for i, n in enumerate(counts) if n
    ]
    (folder / "schedules.yaml").write_text(yaml.safe_dump(schedules, sort_keys=False))
    return folder


@dataclass
class Stack:
    """The server, store, provider, pool and deployment one benchmark shares."""

    work: Path
    server: PrefectServer
    s3_url: str
    loopback: Loopback
    pool: str
    config: Path
    metrics_db: str

    def worker_env(self) -> dict[str, str]:
        return base_env(
            self.server.home,
            PREFECT_API_URL=self.server.api_url,
            PREFECT_WORKER_QUERY_SECONDS="1",
            PREFECT_WORKER_PREFETCH_SECONDS="0",
            CONTENT_PIPELINE_CONFIG=str(self.config),
            CONTENT_PIPELINE_REUSE_SERVER="0",
            **S3_CREDENTIALS,
        )

    def start_workers(self, names: list[str]) -> list[Proc]:
        prefect = str(Path(sys.executable).with_name("prefect"))
        workers = [
            Proc([prefect, "worker", "start", "--pool", self.pool, "--limit", "1", "--name", name], self.worker_env(), self.work / f"{name}.log")
            for name in names
        ]
        wait_for(lambda: set(names) <= self.polling_workers(), 180, f"workers {names} polling the pool", workers[-1].log, workers[-1].process)
        return workers

    def polling_workers(self) -> set[str]:
        response = httpx.post(f"{self.server.api_url}/work_pools/{self.pool}/workers/filter", json={}, timeout=10)
        return {w["name"] for w in response.json() if w.get("status") == "ONLINE"}

    def trigger(self, day: date) -> str:
        from prefect.deployments import run_deployment

        run: Any = run_deployment("daily-content/scaleout", parameters={"run_date": day.isoformat()}, timeout=0)
        return str(run.id)

    def flow_runs(self, ids: list[str]) -> list[dict[str, Any]]:
        response = httpx.post(f"{self.server.api_url}/flow_runs/filter", json={"flow_runs": {"id": {"any_": ids}}, "limit": 200}, timeout=30)
        response.raise_for_status()
        return list(response.json())

    def wait_final(self, ids: list[str], timeout_s: float, log: Path) -> list[dict[str, Any]]:
        return wait_for(
            lambda: (runs := self.flow_runs(ids)) and len(runs) == len(ids) and all(r["state_type"] in FINAL for r in runs) and runs,
            timeout_s,
            "the flow runs ending",
            log,
            every_s=1.0,
        )

    def task_runs(self, flow_run_id: str) -> dict[str, int]:
        """Task runs of one flow run by state type (paged through the API)."""
        counts: dict[str, int] = {}
        offset = 0
        while True:
            body = {"flow_runs": {"id": {"any_": [flow_run_id]}}, "limit": 200, "offset": offset}
            page = httpx.post(f"{self.server.api_url}/task_runs/filter", json=body, timeout=60).json()
            for run in page:
                counts[run["state_type"]] = counts.get(run["state_type"], 0) + 1
            if len(page) < 200:
                return counts
            offset += 200


def start_stack(work: Path, args: argparse.Namespace, names: dict[str, str], closers: list[Any]) -> Stack:
    """Everything but the workers (``names``: the databases made, for the caller to drop;
    ``closers``: what to stop at the end, last first)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from tests.s3server import S3Server

    names["prefect"] = create_database("cp_bench_prefect")
    names["metrics"] = create_database("cp_bench_metrics")
    home = work / "prefect-home"
    home.mkdir()
    os.environ.update(S3_CREDENTIALS)
    server = PrefectServer(home, pg_url(names["prefect"], "asyncpg"))
    closers.append(server.stop)
    s3 = S3Server().__enter__()
    closers.append(lambda: s3.__exit__(None, None, None))
    s3.client().create_bucket(Bucket="bench")
    loopback = Loopback(args.delay)
    closers.append(loopback.close)
    server.wait_healthy()
    limit = args.limit or args.concurrency * max(args.workers, default=3)
    config = write_config(
        work / "scaleout.yaml",
        work / "output",
        names["metrics"],
        templates_dir=str(templates_with(args.images, work / "templates", args.size)),
        **(
            {"renditions": [{"name": "thumb", "width": args.size // 2, "height": args.size // 2, "fit": "cover", "format": "webp", "quality": 80}]}
            if args.size
            else {}
        ),
        storage_url="s3://bench/content-pipeline",
        s3={"endpoint_url": s3.url},
        chain=["automatic1111"],
        concurrency=args.concurrency,
        dedup={"enabled": False},
        providers={"automatic1111": {"enabled": True, "base_url": loopback.url, "timeout_s": 300, "cost_usd": 0.001}},
        budget={"daily_usd": 1000.0, "monthly_usd": 10000.0},
        scale={"global_limits": True, "provider_limits": {"automatic1111": limit}},
        pipeline={"lease_s": args.lease},
        alerts={"during_run_every_s": 3600},
    )
    pool = f"bench-{uuid.uuid4().hex[:6]}"
    os.environ.update(S3_CREDENTIALS, CONTENT_PIPELINE_CONFIG=str(config))
    with temporary_settings({PREFECT_API_URL: server.api_url}):
        from flows.daily import daily_content

        with get_client(sync_client=True) as client:
            client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
        source: Any = daily_content.from_source(source=str(ROOT), entrypoint="flows/daily.py:daily_content")
        source.deploy(
            name="scaleout",
            work_pool_name=pool,
            build=False,
            push=False,
            print_next_steps=False,
            job_variables={"env": {"CONTENT_PIPELINE_CONFIG": str(config), "CONTENT_PIPELINE_REUSE_SERVER": "0", **S3_CREDENTIALS}},
        )
    return Stack(work, server, s3.url, loopback, pool, config, names["metrics"])


def ideal_wall(dates: int, images: int, workers: int, concurrency: int, limit: int, delay: float) -> float:
    per_round = math.ceil(images / concurrency) * delay
    return max(math.ceil(dates / workers) * per_round, math.ceil(dates * images / limit) * delay)


def measure(stack: Stack, args: argparse.Namespace, workers: int, days: list[date]) -> dict[str, Any]:
    """One trial: ``workers`` workers, one run per day in ``days``; returns its figures."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from storage.db import Database

    procs = stack.start_workers([f"w{workers}-{i}" for i in range(workers)])
    try:
        answered = stack.loopback.answered()
        start = time.time()
        with temporary_settings({PREFECT_API_URL: stack.server.api_url}):
            ids = [stack.trigger(d) for d in days]
        runs = stack.wait_final(ids, args.timeout, procs[0].log)
        end = max(_ts(r["end_time"]) for r in runs)
        first_start = min(_ts(r["start_time"]) for r in runs)
        run_s = sorted(_ts(r["end_time"]) - _ts(r["start_time"]) for r in runs)
    finally:
        for proc in procs:
            proc.stop()
    db = Database(pg_url(stack.metrics_db, "psycopg"))
    rows = [r for r in db.images(flow="daily") if r.run_date in days]
    db.dispose()
    done = sum(1 for r in rows if r.status == "done")
    histories = [stack.task_runs(i) for i in ids]
    not_final = sum(n for h in histories for s, n in h.items() if s not in FINAL)
    wall = end - start
    limit = args.limit or args.concurrency * max(args.workers, default=3)
    ideal = ideal_wall(len(days), args.images, workers, args.concurrency, limit, args.delay)
    total = len(days) * args.images
    return {
        "workers": workers,
        "images": total,
        "done": done,
        "wall": wall,
        "rate": done / wall,
        "ideal": total / ideal,
        "states": sorted(r["state_type"] for r in runs),
        "task_runs": sum(sum(h.values()) for h in histories),
        "not_final": not_final,
        "calls": stack.loopback.answered() - answered,
        "to_start": first_start - start,
        "run_s": run_s,
        "load": load(),
    }


def _ts(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def print_rates(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"\n{args.dates} dates x {args.images} images, provider delay {args.delay} s, concurrency {args.concurrency} per run, worker --limit 1")
    head = "| workers | images (done) | wall s | images/s | ideal images/s | ratio | trigger to 1st start s | each flow run s "
    print(head + "| provider calls | task runs (not final) | flow runs | load avg 1/5/15 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['workers']} | {r['images']} ({r['done']}) | {r['wall']:.1f} | {r['rate']:.2f} | {r['ideal']:.2f} | {r['rate'] / r['ideal']:.2f} "
            f"| {r['to_start']:.1f} "
            f"| {', '.join(f'{x:.1f}' for x in r['run_s'])} | {r['calls']} "
            f"| {r['task_runs']} ({r['not_final']}) | {','.join(r['states'])} | {r['load']} |"
        )


def print_summary(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """Min / median of the trials of each worker count: images/s, its ratio to the ideal and
    to one worker's median (the speed-up), and every trial's lost and not-final counts."""
    import statistics

    print(f"\nmin / median over the trials, {args.dates} dates x {args.images} images, provider delay {args.delay} s")
    print(
        "| workers | trials | images/s min / median | ideal images/s | ratio to ideal min / median "
        "| speed-up over 1 worker (median) | lost | task runs not final |"
    )
    print("|---|---|---|---|---|---|---|---|")
    by_workers: dict[int, list[dict[str, Any]]] = {}
    for r in results:
        by_workers.setdefault(r["workers"], []).append(r)
    one = statistics.median(r["rate"] for r in by_workers.get(1, [])) if 1 in by_workers else None
    for workers, trials in sorted(by_workers.items()):
        rates = [r["rate"] for r in trials]
        ratios = [r["rate"] / r["ideal"] for r in trials]
        speed_up = f"{statistics.median(rates) / one:.2f}x (ideal {trials[0]['ideal'] / by_workers[1][0]['ideal']:.2f}x)" if one else "-"
        print(
            f"| {workers} | {len(trials)} | {min(rates):.2f} / {statistics.median(rates):.2f} | {trials[0]['ideal']:.2f} "
            f"| {min(ratios):.2f} / {statistics.median(ratios):.2f} | {speed_up} "
            f"| {sum(r['images'] - r['done'] for r in trials)} | {sum(r['not_final'] for r in trials)} |"
        )


def _flow_run_pids(worker: Proc) -> list[int]:
    """The processes a worker started (its flow runs), children first."""
    import psutil

    try:
        return [c.pid for c in psutil.Process(worker.process.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _running_run(stack: Stack, ids: list[str], worker: Proc) -> str | None:
    """The flow run whose process is one of ``worker``'s children (Prefect records its
    ``infrastructure_pid`` as ``host:pid``)."""
    pids = {str(p) for p in _flow_run_pids(worker)}
    for run in stack.flow_runs(ids):
        if run["state_type"] == "RUNNING" and str(run.get("infrastructure_pid") or "").rpartition(":")[2] in pids:
            return str(run["id"])
    return None


def kill_run(stack: Stack, args: argparse.Namespace, days: list[date]) -> dict[str, Any]:
    """3 workers, one run per day; SIGKILL the process group of one worker once its run has
    a quarter of its images done; trigger that day again; check what the ledger and the
    Prefect history say."""
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from sqlmodel import select

    from storage.db import AttemptRecord, Database

    db = Database(pg_url(stack.metrics_db, "psycopg"))
    answered_before, received_before = stack.loopback.answered(), stack.loopback.received()
    procs = stack.start_workers(["k-0", "k-1", "k-2"])
    try:
        with temporary_settings({PREFECT_API_URL: stack.server.api_url}):
            ids = [stack.trigger(d) for d in days]
        # the victim: a worker whose flow-run process runs (the flow-run process is its child)
        victim = wait_for(lambda: [p for p in procs if _flow_run_pids(p)][:1], 180, "a worker running a flow run", procs[0].log, every_s=0.2)[0]
        victim_run = wait_for(lambda: _running_run(stack, ids, victim), 120, "the victim's flow run", victim.log, every_s=0.2)
        victim_day = date.fromisoformat(stack.flow_runs([victim_run])[0]["parameters"]["run_date"])

        def quarter_done() -> bool:
            rows = [r for r in db.images(flow="daily") if r.run_date == victim_day]
            return sum(1 for r in rows if r.status == "done") >= max(1, args.images // 4)

        wait_for(quarter_done, args.timeout, "a quarter of the victim's images", victim.log, every_s=0.2)
        # as a machine that dies: the worker and the flow-run process it started (its own session)
        for pid in [victim.process.pid, *_flow_run_pids(victim)]:
            os.kill(pid, signal.SIGKILL)
        victim.process.wait(10)
        killed_at = time.time()
        at_kill = [r for r in db.images(flow="daily") if r.run_date == victim_day]
        done_at_kill = sum(1 for r in at_kill if r.status == "done")
        with temporary_settings({PREFECT_API_URL: stack.server.api_url}):
            rerun = stack.trigger(victim_day)
        survivors = [p for p in procs if p is not victim]
        runs = stack.wait_final([i for i in ids if i != victim_run] + [rerun], args.timeout + 4 * args.lease, survivors[0].log)
        finished_at = max(_ts(r["end_time"]) for r in runs)
    finally:
        for proc in procs:
            proc.stop()
    rows = [r for r in db.images(flow="daily") if r.run_date in days]
    pks = {r.id for r in rows}
    with db.session() as session:
        attempts = [a for a in session.exec(select(AttemptRecord)) if a.image_pk in pks]
    db.dispose()
    successes: dict[int, int] = {}
    for a in attempts:
        if a.status == "success":
            successes[a.image_pk] = successes.get(a.image_pk, 0) + 1
    taken_over = sum(len(re.findall(r"took over from run", p.log.read_text(errors="replace"))) for p in survivors)
    history = {i: stack.task_runs(i) for i in [*ids, rerun]}
    states = {r["id"]: r["state_type"] for r in stack.flow_runs([*ids, rerun])}
    return {
        "victim_day": victim_day,
        "victim_run": victim_run,
        "done_at_kill": done_at_kill,
        "takeover_s": finished_at - killed_at,
        "slots": len(rows),
        "lost": sum(1 for r in rows if r.status != "done"),
        "paid_twice": sum(1 for n in successes.values() if n > 1),
        "answered": stack.loopback.answered() - answered_before,
        "received": stack.loopback.received() - received_before,
        "attempt_rows": {s: sum(1 for a in attempts if a.status == s) for s in sorted({a.status for a in attempts})},
        "taken_over": taken_over,
        "history": history,
        "states": states,
        "rerun": rerun,
        "load": load(),
    }


def print_kill(k: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"\nkill run: 3 workers, {args.dates} dates x {args.images} images, lease {args.lease} s; SIGKILL of the worker running {k['victim_day']}")
    print("| figure | value |")
    print("|---|---|")
    rows = [
        ("images done by the killed run before the kill", k["done_at_kill"]),
        ("slots planned (all dates)", k["slots"]),
        ("slots lost (not done at the end)", k["lost"]),
        ("slots with more than one successful provider call (paid twice)", k["paid_twice"]),
        ("provider calls received by the loopback", k["received"]),
        ("provider calls answered in full by the loopback (the others cut by the kill)", k["answered"]),
        ("attempt rows in the ledger, by status", ", ".join(f"{s} {n}" for s, n in k["attempt_rows"].items())),
        ("slots taken over after the lease (log lines of the re-run)", k["taken_over"]),
        ("kill to the last run's end, s", f"{k['takeover_s']:.1f}"),
        ("load avg 1/5/15 at the end", k["load"]),
    ]
    for name, value in rows:
        print(f"| {name} | {value} |")
    print("\n| flow run | role | flow-run state | task runs by state |")
    print("|---|---|---|---|")
    for run_id, counts in k["history"].items():
        role = "killed" if run_id == k["victim_run"] else "re-run of the killed date" if run_id == k["rerun"] else "other date"
        print(f"| {run_id[:8]} | {role} | {k['states'].get(run_id)} | {', '.join(f'{s} {n}' for s, n in sorted(counts.items()))} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dates", type=int, default=3)
    parser.add_argument("--images", type=int, default=40, help="images per date")
    parser.add_argument("--workers", default="1,2,3", help="worker counts to measure, e.g. 1,2,3")
    parser.add_argument("--repeat", type=int, default=1, help="trials per worker count")
    parser.add_argument("--delay", type=float, default=2.0, help="seconds the loopback provider takes per call")
    parser.add_argument("--concurrency", type=int, default=8, help="provider calls at once per flow run")
    parser.add_argument("--limit", type=int, default=0, help="slots of the global provider limit (default: concurrency x max workers)")
    parser.add_argument("--lease", type=float, default=10.0, help="pipeline.lease_s for the benchmark, seconds")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for one trial's runs")
    parser.add_argument(
        "--size", type=int, default=0, help="images of SIZE x SIZE pixels, one thumbnail rendition (default: the templates' 1024 px, web + thumb)"
    )
    parser.add_argument("--no-kill", action="store_true", help="skip the kill run")
    args = parser.parse_args()
    args.workers = [int(w) for w in args.workers.split(",") if w]  # "" : the kill run only
    problem = postgres_available()
    if problem:
        sys.exit(problem)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server: one line per S3 request otherwise
    work = Path(tempfile.mkdtemp(prefix="cp-scaleout-"))
    names: dict[str, str] = {}
    closers: list[Any] = []
    print(f"load avg at start: {load()} (2 cores, shared)")
    try:
        stack = start_stack(work, args, names, closers)
        base = date(2030, 1, 1)
        trial = 0
        results = []
        for _ in range(args.repeat):
            for workers in args.workers:
                days = [base + timedelta(days=100 * trial + i) for i in range(args.dates)]
                trial += 1
                results.append(measure(stack, args, workers, days))
                print_rates(results[-1:], args)
        if results:
            print_rates(results, args)
            print_summary(results, args)
        if not args.no_kill:
            days = [base + timedelta(days=100 * trial + i) for i in range(args.dates)]
            print_kill(kill_run(stack, args, days), args)
    except AssertionError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        sys.exit(1)
    finally:
        for close in reversed(closers):
            close()
        from storage.db import reset_databases

        reset_databases()
        for name in names.values():
            drop_database(name)
        if os.environ.get("KEEP_WORKDIR"):
            print(f"work directory kept: {work} ({tail(work / 'prefect-home' / 'server.log', 3)})")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
