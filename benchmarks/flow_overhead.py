"""The pipeline's own overhead: N images (default 100) from an instant loopback provider with
the default post-processing, through the real flow (``content-pipeline run daily`` against
a Prefect server), against a plain sequential script doing the same work for each image:
one HTTP call, base64 decode, the safe decode, the same renditions (the default
``renditions`` plus the stamped original), quality score and pHash, the files written, one
database row per image and one per attempt (SQLite).

    .venv/bin/python benchmarks/flow_overhead.py [--images 100] [--repeat 3]

Goals on a 2-core machine: flow-run wall <= 0.6x the script's (the flow post-processes on
every core), CPU per image <= 1.3x the script's. Each path runs ``--repeat`` times (a new
date each time); the table shows min and median; the last line is the ratio.
Also shown: Prefect task runs per image and how many of them ended in a terminal state,
and the Prefect server's CPU per 100 images.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flowbench import LoopbackA1111, PrefectServer, run_daily, workdir  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

SIZE = 1024


def plain(images: int, url: str, folder: Path) -> None:
    """The plain sequential script (run in its own process by ``main``)."""
    import base64
    import hashlib
    import json
    import sqlite3

    import httpx

    from core.settings import DecodeConfig, Settings
    from tasks.postprocess import process_file

    specs = list(Settings.model_fields["renditions"].get_default(call_default_factory=True))
    store, spool = folder / "store", folder / "spool"
    store.mkdir(parents=True)
    spool.mkdir()
    db = sqlite3.connect(folder / "plain.db")
    db.execute("create table images (id integer primary key, key text, status text, phash text, quality real)")
    db.execute("create table attempts (id integer primary key, image_id integer, provider text, status text, "
               "latency real, cost real)")
    client = httpx.Client(base_url=url, timeout=120)
    for i in range(images):
        started = time.perf_counter()
        answer = client.post("/sdapi/v1/txt2img", json={"prompt": f"plain image {i}", "width": SIZE, "height": SIZE,
                                                        "seed": i, "steps": 30}).json()
        data = base64.b64decode(answer["images"][0])
        latency = time.perf_counter() - started
        original = spool / f"{i}.png"
        original.write_bytes(data)
        files, score, _metrics, phash = process_file(str(original), specs, str(spool / str(i)), decode=DecodeConfig(),
                                                     provenance=None)
        for made in files:
            body = made.path.read_bytes()
            target = store / f"{i}.{made.name}{made.path.suffix}"
            target.write_bytes(body)
            (store / f"{target.name}.meta.json").write_text(json.dumps({"sha256": hashlib.sha256(body).hexdigest()}))
        cursor = db.execute("insert into images (key, status, phash, quality) values (?, 'done', ?, ?)",
                            (f"plain:{i}", phash, score))
        db.execute("insert into attempts (image_id, provider, status, latency, cost) values (?, 'a1111', 'success', ?, 0.01)",
                   (cursor.lastrowid, latency))
        db.commit()
    client.close()


def run_plain(images: int, url: str) -> tuple[float, float]:
    """(wall s, CPU s) of the plain script in a fresh process."""
    folder = Path(tempfile.mkdtemp(prefix="cp-bench-plain-"))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--plain", str(images), url, str(folder)], check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n = args.images
    console = Console(width=160)
    server = PrefectServer()
    try:
        with LoopbackA1111(0.0, [SIZE]) as url:
            flows, plains = [], []
            folder = workdir(n, url, concurrency=8)
            for k in range(args.repeat):
                plains.append(run_plain(n, url))
                run = run_daily(folder, server, (date(2026, 1, 1) + timedelta(days=k)).isoformat())
                if run.exit_code != 0 or run.images_done != n:
                    console.print(run.output)
                flows.append(run)
    finally:
        server.stop()
    table = Table(title=f"{n} images at {SIZE} px from an instant loopback provider, default post-processing "
                        f"({os.cpu_count()} CPUs; min / median of {args.repeat})")
    for column in ("path", "images done", "wall s", "CPU s per image", "task runs per image (terminal)",
                   "Prefect server CPU s per 100 images"):
        table.add_column(column, justify="left" if column == "path" else "right")

    def mm(values: list[float], fmt: str = "{:.2f}") -> str:
        return f"{fmt.format(min(values))} / {fmt.format(statistics.median(values))}"

    table.add_row("plain sequential script", f"{n}", mm([p[0] for p in plains]), mm([p[1] / n for p in plains], "{:.3f}"),
                  "-", "-")
    table.add_row("flow run (Prefect's start to end)", f"{min(r.images_done for r in flows)}",
                  mm([r.flow_wall_s for r in flows]), mm([r.cli_cpu_s / n for r in flows], "{:.3f}"),
                  f"{max(r.task_runs for r in flows) / n:.2f} ({min(r.task_runs_terminal for r in flows)}/"
                  f"{max(r.task_runs for r in flows)})", mm([100 * r.server_cpu_s / n for r in flows], "{:.1f}"))
    table.add_row("content-pipeline run (whole process)", "", mm([r.process_wall_s for r in flows]),
                  mm([(r.cli_cpu_s + r.server_cpu_s) / n for r in flows], "{:.3f}"), "", "")
    console.print(table)
    wall_ratio = [r.flow_wall_s / p[0] for r, p in zip(flows, plains, strict=True)]
    cpu_ratio = [(r.cli_cpu_s / n) / (p[1] / n) for r, p in zip(flows, plains, strict=True)]
    console.print(f"ratio flow/script (min / median): wall {min(wall_ratio):.2f}x / {statistics.median(wall_ratio):.2f}x "
                  f"(goal <= 0.6x), CPU per image {min(cpu_ratio):.2f}x / {statistics.median(cpu_ratio):.2f}x "
                  f"(goal <= 1.3x; the CLI process and its workers, without the Prefect server)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--plain":
        plain(int(sys.argv[2]), sys.argv[3], Path(sys.argv[4]))
    else:
        main()
