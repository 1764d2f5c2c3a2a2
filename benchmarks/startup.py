"""Where the seconds of the README's offline run go: start-up, flow, shutdown.

    .venv/bin/python benchmarks/startup.py [--runs 3] [--skip-server]

Runs ``content-pipeline run daily --date 2026-11-21`` (the offline defaults: 8
placeholder images) ``--runs`` times in a fresh folder, each a new process, in two ways:

* ``temporary server`` (before issue 21; ``CONTENT_PIPELINE_REUSE_SERVER=0``): Prefect
  starts its temporary server for the run and stops it at exit (the PREFECT_HOME is
  warmed first by one untimed run: its database exists and is migrated);
* ``background server`` (the default since issue 21): the first run finds no server,
  starts ``prefect server start`` detached (cli/server.py) and waits for it; later runs
  reuse it. Timed: the first run on a fresh PREFECT_HOME (migrations), then ``--runs``
  times ``content-pipeline server stop`` and the first run on that warm PREFECT_HOME (what
  a fresh shell with nothing running pays once), then ``--runs`` runs reusing the server, then
  ``server stop``. The server listens on a free port named by
  CONTENT_PIPELINE_LOCAL_SERVER (this machine is shared: 4200 may be someone else's).

Each run is timed from outside, without instrumenting the CLI: ``start-up`` from the
process start to the first image row in the run's SQLite database (the flow's first
task), ``flow`` from there to the summary table on stdout, ``shutdown`` from the table to
the process exit. ``peak MiB`` is the peak resident memory of the run's process tree
(the CLI and, for the temporary server or a first run, the server process), sampled every 50 ms with
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
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        COLUMNS="160",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300",
    )
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
    notes = [line.strip() for line in lines if line.startswith(("using the Prefect server", "started a Prefect"))]
    return Timing(marks["row"] - started, marks["table"] - marks["row"], ended - marks["table"], ended - started, peak / 2**20, notes)


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
    results: dict[str, list[float]] = {
        "python -c pass": [],
        "import the CLI and the flows": [],
        "+ import prefect.server.api.server": [],
        "temporary server: start": [],
        "temporary server: stop": [],
    }
    for _ in range(runs):
        results["python -c pass"].append(_python("pass", env))
        results["import the CLI and the flows"].append(_python("import cli.main, flows.daily", env))
        results["+ import prefect.server.api.server"].append(
            _python("import cli.main, flows.daily, prefect.server.api.server", env) - results["import the CLI and the flows"][-1]
        )
        out = subprocess.run([sys.executable, "-c", TEMP_SERVER], env=env, check=True, capture_output=True, text=True)
        up, down = map(float, out.stdout.split()[-2:])
        results["temporary server: start"].append(up)
        results["temporary server: stop"].append(down)
    return list(results.items())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(args: list[str], workdir: Path, env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=workdir, env=env, check=True, capture_output=True, text=True).stdout.strip()


def _server_rss(home: Path) -> float:
    """MiB resident of the background server (its PID file under ``home``) and its children."""
    import psutil

    pid = int((home / "content-pipeline-server" / "server.pid").read_text())
    return _tree_rss(psutil.Process(pid)) / 2**20


def background_path(base: Path, runs: int, paths: dict[str, list[Timing]], notes: list[str]) -> None:
    """The default path: first runs that start the background server, then runs reusing it."""
    home = base / "prefect-background"
    workdir = base / "background"
    workdir.mkdir(parents=True)
    env = _env(home, CONTENT_PIPELINE_REUSE_SERVER="1", CONTENT_PIPELINE_LOCAL_SERVER=f"http://127.0.0.1:{_free_port()}")
    try:
        paths["background server: first run, fresh PREFECT_HOME"] = [timed_run(workdir, env)]
        first_runs = []
        for _ in range(runs):  # a fresh shell with nothing running: no server, warm PREFECT_HOME
            notes.append(_cli(["server", "stop"], workdir, env))
            first_runs.append(timed_run(workdir, env))
        paths["background server: first run, warm PREFECT_HOME"] = first_runs
        paths["background server: reused"] = [timed_run(workdir, env) for _ in range(runs)]
        notes += sorted({n for timings in paths.values() for t in timings for n in t.notes})
        notes.append(f"the background server's own memory (outside a reusing run's tree): {_server_rss(home):.0f} MiB")
    finally:
        notes.append(_cli(["server", "stop"], workdir, env))


def _stats(values: list[float], unit: str = "{:.2f}") -> tuple[str, str]:
    return unit.format(min(values)), unit.format(statistics.median(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-server", action="store_true", help="only the temporary-server path")
    parser.add_argument("--skip-breakdown", action="store_true", help="no start-up breakdown table")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    console = Console(width=150)
    started_load = os.getloadavg()[0]
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
        background_path(base, args.runs, paths, notes)

    load = os.getloadavg()
    table = Table(
        title=f"content-pipeline run daily (8 placeholder images), {args.runs} runs: min / median "
        f"(load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min) on "
        f"{os.cpu_count()} CPUs, {started_load:.1f} at the start)"
    )
    for column in ("path", "start-up s", "flow s", "shutdown s", "wall s", "peak MiB (process tree)"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for name, timings in paths.items():
        cells = [_stats([getattr(t, f) for t in timings]) for f in ("startup_s", "flow_s", "shutdown_s", "wall_s")]
        cells.append(_stats([t.peak_mib for t in timings], "{:.0f}"))
        table.add_row(name, *(f"{lo} / {mid}" for lo, mid in cells))
    console.print(table)
    for note in notes:
        console.print(f"- {note}", highlight=False)
    if args.skip_breakdown:
        return
    parts = Table(title="where the start-up goes (separate processes, min / median)")
    parts.add_column("step")
    parts.add_column("seconds", justify="right")
    for name, values in breakdown(base / "prefect-temp", args.runs):
        lo, mid = _stats(values)
        parts.add_row(name, f"{lo} / {mid}")
    console.print(parts)


if __name__ == "__main__":
    main()
