"""Shared parts of the flow benchmarks (flow_overhead.py, flow_concurrency.py): a loopback
AUTOMATIC1111 provider in its own process, a Prefect server, and one ``content-pipeline
run daily`` measured from outside (wall, CPU of the CLI and its children, CPU of the
Prefect server, the flow run's own wall and its task runs from the Prefect API).

Nothing here is imported by the product; the benchmarks print tables (see their docstrings).
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _serve(delay: float, sizes: list[int], conn: Any) -> None:  # pragma: no cover - child process
    from tests.servers import A1111Server, photo

    for size in sizes:
        photo(size, size)  # the photo of each size made (and cached) before any timed request
    with A1111Server(delay_s=delay) as server:
        conn.send(server.url)
        conn.recv()


class LoopbackA1111:
    """tests/servers.py's A1111Server in a child process (its JSON / base64 work does not
    compete with the measured client); ``with LoopbackA1111(delay, [1024]) as url``."""

    def __init__(self, delay: float, sizes: list[int]) -> None:
        self._conn, child = multiprocessing.Pipe()
        self._process = multiprocessing.get_context("spawn").Process(target=_serve, args=(delay, sizes, child), daemon=True)

    def __enter__(self) -> str:
        self._process.start()
        return str(self._conn.recv())

    def __exit__(self, *exc: object) -> None:
        self._conn.send("stop")
        self._process.join(10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrefectServer:
    """``prefect server start`` on a free port with a temporary PREFECT_HOME."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="cp-bench-prefect-"))
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        env = {
            **os.environ,
            "PREFECT_HOME": str(self.home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
            "PREFECT_UI_ENABLED": "false",
        }
        prefect = str(Path(sys.executable).with_name("prefect"))
        self.process = subprocess.Popen(
            [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError("prefect server did not start in 240 s")

    def cpu_s(self) -> float:
        """CPU seconds used so far by the server process and its children."""
        import psutil

        try:
            proc = psutil.Process(self.process.pid)
            total = sum(proc.cpu_times()[:2])
            for child in proc.children(recursive=True):
                total += sum(child.cpu_times()[:2])
            return float(total)
        except psutil.Error:
            return float("nan")

    def flow_run(self, name: str) -> dict[str, Any]:
        """The newest flow run called ``name``, with its task runs (``task_runs``)."""
        runs = httpx.post(
            f"{self.api_url}/flow_runs/filter", json={"flow_runs": {"name": {"any_": [name]}}, "sort": "START_TIME_DESC", "limit": 1}, timeout=30
        ).json()
        run = runs[0]
        tasks: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = httpx.post(
                f"{self.api_url}/task_runs/filter", json={"flow_runs": {"id": {"any_": [run["id"]]}}, "limit": 200, "offset": offset}, timeout=30
            ).json()
            tasks += page
            if len(page) < 200:
                break
            offset += 200
        run["task_runs"] = tasks
        return run

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, 15)
            self.process.wait(30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, 9)
        shutil.rmtree(self.home, ignore_errors=True)


def workdir(images: int, provider_url: str, *, concurrency: int, extra: dict[str, Any] | None = None) -> Path:
    """A folder with templates (the daily plan set to ``images`` slots) and a config aimed
    at the loopback provider (paid: USD 0.01 an image; dedup off: one photo answers all)."""
    folder = Path(tempfile.mkdtemp(prefix="cp-bench-flow-"))
    shutil.copytree(ROOT / "templates", folder / "templates")
    schedules = yaml.safe_load((folder / "templates" / "schedules.yaml").read_text())
    categories = ["products", "food", "landscapes", "architecture"]
    per = [images // 4 + (1 if i < images % 4 else 0) for i in range(4)]
    schedules["daily"]["slots"] = [{"time": f"06:{10 * i:02d}", "category": c, "count": n} for i, (c, n) in enumerate(zip(categories, per, strict=True)) if n]
    (folder / "templates" / "schedules.yaml").write_text(yaml.safe_dump(schedules, sort_keys=False))
    config = {
        "output_dir": str(folder / "output"),
        "templates_dir": str(folder / "templates"),
        "concurrency": concurrency,
        "chain": ["automatic1111"],
        "dedup": {"enabled": False},
        "retry": {"max_retries": 0, "backoff_s": 0.0},
        "budget": {"daily_usd": 1000.0, "monthly_usd": 10000.0},
        "providers": {"automatic1111": {"enabled": True, "base_url": provider_url, "timeout_s": 120, "cost_usd": 0.01}},
        **(extra or {}),
    }
    (folder / "content-pipeline.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


@dataclass
class FlowRun:
    """One measured ``content-pipeline run daily``: seconds and CPU seconds."""

    exit_code: int
    process_wall_s: float
    cli_cpu_s: float
    server_cpu_s: float
    flow_wall_s: float
    task_runs: int
    task_runs_terminal: int
    images_done: int
    output: str


def _iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def run_daily(folder: Path, server: PrefectServer, run_date: str) -> FlowRun:
    """``content-pipeline run daily --date run_date`` in ``folder``, measured."""
    import sqlite3

    env = {
        **os.environ,
        "CONTENT_PIPELINE_CONFIG": str(folder / "content-pipeline.yaml"),
        "PYTHONPATH": str(ROOT),
        "PREFECT_API_URL": server.api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = server.cpu_s()
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "run", "daily", "--date", run_date], env=env, cwd=folder, capture_output=True, text=True, timeout=1800
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    time.sleep(2.0)  # the server finishes writing what the run sent
    server_cpu = server.cpu_s() - server_before
    run = server.flow_run(f"daily-{run_date}")
    flow_wall = (_iso(run["end_time"]) - _iso(run["start_time"])).total_seconds() if run.get("end_time") else float("nan")
    terminal = sum(1 for t in run["task_runs"] if (t.get("state") or {}).get("type") in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"))
    with sqlite3.connect(folder / "output" / "content-pipeline.db") as conn:
        images_done = conn.execute("select count(*) from images where status = 'done' and run_date = ?", (run_date,)).fetchone()[0]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return FlowRun(done.returncode, wall, cpu, server_cpu, flow_wall, len(run["task_runs"]), terminal, images_done, done.stdout[-2000:] + done.stderr[-2000:])
