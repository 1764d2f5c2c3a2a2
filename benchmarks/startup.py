"""Where the seconds of the README's offline run go: start-up, flow, shutdown.

    .venv/bin/python benchmarks/startup.py [--runs 3] [--skip-server]

Runs ``content-pipeline run daily --date 2026-11-21`` (the offline defaults: 8
placeholder images) ``--runs`` times in a fresh folder, each a new process, in two ways:

* ``temporary server``: no PREFECT_API_URL, so Prefect starts its temporary server for
  the run and stops it at exit (the PREFECT_HOME is warmed first by one untimed run:
  its database exists and is migrated);
* ``running server``: a ``prefect server start`` already running (on 127.0.0.1:4200
  when that port is free, which the CLI detects by itself; else on a free port named by
  PREFECT_API_URL). The server's own start (once, not per run) is printed apart; a third
  row repeats it with post-processing in threads instead of the default process pool
  (``processing.executor``), whose spawned workers are part of the process tree.

Each run is timed from outside, without instrumenting the CLI: ``start-up`` from the
process start to the first image row in the run's SQLite database (the flow's first
task), ``flow`` from there to the summary table on stdout, ``shutdown`` from the table to
the process exit. ``peak MiB`` is the peak resident memory of the run's process tree
(the CLI and, for the temporary server, the server process), sampled every 50 ms with
psutil. A second table breaks the start-up down: interpreter + imports of the CLI and
flows, importing Prefect's server module (which the client does to start a temporary
server), and starting / stopping a temporary server alone. Min and median of ``--runs``.
Nothing leaves 127.0.0.1; every PREFECT_HOME is private.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "cli.main", "run", "daily", "--date", "2026-11-21"]


@dataclass
class Timing:
    startup_s: float
    flow_s: float
    shutdown_s: float
    wall_s: float
    peak_mib: float
    notes: list[str] = field(default_factory=list)


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "CONTENT_PIPELINE_"))}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", PYTHONPATH=str(ROOT),
               PYTHONUNBUFFERED="1", COLUMNS="160")
    env.update(extra)
    return env


def _tree_rss(root: Any) -> int:
    """Resident bytes of ``root`` (a psutil.Process) and all its descendants."""
    import psutil

    total = 0
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    for process in processes:
        with contextlib.suppress(psutil.Error):  # a process that ended meanwhile counts nothing
            total += process.memory_info().rss
    return total


def _first_row_time(db: Path) -> bool:
    if not db.exists():
        return False
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05) as conn:
            return conn.execute("select count(*) from images").fetchone()[0] > 0
    except sqlite3.Error:
        return False


def timed_run(workdir: Path, env: dict[str, str]) -> Timing:
    """One CLI run in ``workdir`` (its database under ``workdir/output``)."""
    import psutil

    for old in (workdir / "output").glob("content-pipeline.db*"):
        old.unlink()
    db = workdir / "output" / "content-pipeline.db"
    started = time.monotonic()
    process = subprocess.Popen(CLI, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    root = psutil.Process(process.pid)
    marks: dict[str, float] = {}
    peak = 0
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "daily run:" in line and "table" not in marks:
                marks["table"] = time.monotonic()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    while process.poll() is None:
        peak = max(peak, _tree_rss(root))
        if "row" not in marks and _first_row_time(db):
            marks["row"] = time.monotonic()
        time.sleep(0.05)
    ended = time.monotonic()
    reader.join(5)
    # exit 1 is the truthful end of an offline run: its images are placeholders, not content
    placeholders_only = process.returncode == 1 and any("not done as real content" in line for line in lines)
    if (process.returncode != 0 and not placeholders_only) or "row" not in marks or "table" not in marks:
        raise SystemExit(f"run failed (exit {process.returncode}):\n{''.join(lines)[-3000:]}")
    notes = [line.strip() for line in lines if line.startswith("using the Prefect server")]
    return Timing(marks["row"] - started, marks["table"] - marks["row"], ended - marks["table"], ended - started,
                  peak / 2**20, notes)


def _python(code: str, env: dict[str, str]) -> float:
    """Seconds a fresh interpreter takes to run ``code`` (imports included)."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    return time.monotonic() - started


TEMP_SERVER = """
import time, sys
from prefect.server.api.server import SubprocessASGIServer
server = SubprocessASGIServer()
t = time.monotonic(); server.start(); up = time.monotonic() - t
t = time.monotonic(); server.stop(); down = time.monotonic() - t
print(up, down)
"""


def breakdown(home: Path, runs: int) -> list[tuple[str, list[float]]]:
    env = _env(home)
    results: dict[str, list[float]] = {"python -c pass": [], "import the CLI and the flows": [],
                                       "+ import prefect.server.api.server": [], "temporary server: start": [],
                                       "temporary server: stop": []}
    for _ in range(runs):
        results["python -c pass"].append(_python("pass", env))
        results["import the CLI and the flows"].append(_python("import cli.main, flows.daily", env))
        results["+ import prefect.server.api.server"].append(
            _python("import cli.main, flows.daily, prefect.server.api.server", env)
            - results["import the CLI and the flows"][-1])
        out = subprocess.run([sys.executable, "-c", TEMP_SERVER], env=env, check=True, capture_output=True, text=True)
        up, down = map(float, out.stdout.split()[-2:])
        results["temporary server: start"].append(up)
        results["temporary server: stop"].append(down)
    return list(results.items())


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(home: Path) -> tuple[subprocess.Popen[bytes], str, float]:
    """``prefect server start`` (4200 when free); returns the process, its API URL, start seconds."""
    import httpx

    port = 4200 if _port_free(4200) else _free_port()
    api = f"http://127.0.0.1:{port}/api"
    prefect = str(Path(sys.executable).with_name("prefect"))
    started = time.monotonic()
    process = subprocess.Popen([prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                               env=_env(home, PREFECT_SERVER_LOGGING_LEVEL="WARNING"), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    while time.monotonic() - started < 300:
        with contextlib.suppress(httpx.HTTPError):  # not listening yet
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return process, api, time.monotonic() - started
        if process.poll() is not None:
            raise SystemExit(f"prefect server start exited with {process.returncode}")
        time.sleep(0.2)
    process.terminate()
    raise SystemExit("prefect server start: not healthy after 300 s")


def _stats(values: list[float], unit: str = "{:.2f}") -> tuple[str, str]:
    return unit.format(min(values)), unit.format(statistics.median(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-server", action="store_true", help="only the temporary-server path")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    console = Console(width=150)
    base = Path(tempfile.mkdtemp(prefix="cp-startup-"))
    paths: dict[str, list[Timing]] = {}
    notes: list[str] = []

    home = base / "prefect-temp"
    workdir = base / "temp"
    workdir.mkdir(parents=True)
    env = _env(home, CONTENT_PIPELINE_REUSE_SERVER="0")
    console.print("warming the temporary server's PREFECT_HOME (one untimed run) ...")
    warm = timed_run(workdir, env)
    notes.append(f"first run on a fresh PREFECT_HOME (migrations): {warm.wall_s:.1f} s wall")
    paths["temporary server"] = [timed_run(workdir, env) for _ in range(args.runs)]

    if not args.skip_server:
        home = base / "prefect-server"
        workdir = base / "server"
        workdir.mkdir(parents=True)
        process, api, seconds = start_server(home)
        notes.append(f"prefect server start (once, then left running): healthy after {seconds:.1f} s")
        try:
            extra = {} if api == "http://127.0.0.1:4200/api" else {"PREFECT_API_URL": api}
            env = _env(home, **extra)
            timed_run(workdir, env)  # the server's first flow run registers the flow
            paths["running server"] = [timed_run(workdir, env) for _ in range(args.runs)]
            threads = {**env, "CONTENT_PIPELINE_PROCESSING__EXECUTOR": "threads"}
            paths["running server, post-processing in threads"] = [timed_run(workdir, threads)
                                                                  for _ in range(args.runs)]
            notes += sorted({n for t in paths["running server"] for n in t.notes})
            server_rss = _tree_rss(__import__("psutil").Process(process.pid)) / 2**20
            notes.append(f"the running server's own memory (not in the run's tree): {server_rss:.0f} MiB")
        finally:
            os.killpg(process.pid, 15)
            process.wait(30)

    table = Table(title=f"content-pipeline run daily (8 placeholder images), {args.runs} runs: min / median "
                        f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    for column in ("path", "start-up s", "flow s", "shutdown s", "wall s", "peak MiB (process tree)"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for name, timings in paths.items():
        cells = [_stats([getattr(t, f) for t in timings]) for f in ("startup_s", "flow_s", "shutdown_s", "wall_s")]
        cells.append(_stats([t.peak_mib for t in timings], "{:.0f}"))
        table.add_row(name, *(f"{lo} / {mid}" for lo, mid in cells))
    console.print(table)

    parts = Table(title="where the start-up goes (separate processes, min / median)")
    parts.add_column("step")
    parts.add_column("seconds", justify="right")
    for name, values in breakdown(base / "prefect-temp", args.runs):
        lo, mid = _stats(values)
        parts.add_row(name, f"{lo} / {mid}")
    console.print(parts)
    for note in notes:
        console.print(f"- {note}", highlight=False)


if __name__ == "__main__":
    main()
