"""The pipeline's own overhead: N images (default 100) from an instant loopback provider with
the default post-processing, through the real flow (``content-pipeline run daily`` against
a Prefect server), against a plain sequential script doing the same work for each image:
one HTTP call, base64 decode, the safe decode, the same renditions (the default
``renditions`` plus the stamped original), quality score and pHash, the files written, one
database row per image and one per attempt (SQLite).

    .venv/bin/python benchmarks/flow_overhead.py [--images 100] [--repeat 3]

Two plain scripts are measured. ``plain`` is the issue's definition as first written
(above). The default post-processing has since grown two stages every image goes
through, so ``plain, same work`` also does them: the NudeNet safety check on the decoded
image (imaging.safety.detect, the flow's own settings) and the provenance written into
every file (XMP, PNG text chunks) plus the JSON sidecar, the invisible watermark
(imaging.watermark) and the C2PA Content Credentials (imaging.credentials), both on by
default. The ratios are given against both.

The flow runs once per ``processing.executor`` (``--executors``, default both: threads and
processes), interleaved with the scripts in each repetition.

Goals on a 2-core machine: flow-run wall <= 0.6x the same-work script's (the flow
post-processes on every core), CPU per image <= 1.2x the script's. Each path runs ``--repeat`` times (a new
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

from flowbench import FlowRun, LoopbackA1111, PrefectServer, run_daily, workdir  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

SIZE = 1024


def plain(images: int, url: str, folder: Path, same_work: bool = False) -> None:
    """The plain sequential script (run in its own process by ``main``); ``same_work``: also
    the NudeNet check and the provenance (XMP in every file, the JSON sidecar)."""
    import base64
    import hashlib
    import json
    import sqlite3

    import httpx

    from config.imaging import C2paConfig, DecodeConfig, ImageSafetyConfig
    from config.settings import Settings
    from imaging.credentials import sign_files
    from imaging.decode import decode_image
    from imaging.postprocess import process_file
    from imaging.provenance import Provenance
    from imaging.safety import blocking, detect
    from imaging.watermark import content_id

    specs = list(Settings.model_fields["renditions"].get_default(call_default_factory=True))
    store, spool = folder / "store", folder / "spool"
    store.mkdir(parents=True)
    spool.mkdir()
    db = sqlite3.connect(folder / "plain.db")
    db.execute("create table images (id integer primary key, key text, status text, phash text, quality real, safety text)")
    db.execute("create table attempts (id integer primary key, image_id integer, provider text, status text, latency real, cost real)")
    client = httpx.Client(base_url=url, timeout=120)
    for i in range(images):
        started = time.perf_counter()
        answer = client.post("/sdapi/v1/txt2img", json={"prompt": f"plain image {i}", "width": SIZE, "height": SIZE, "seed": i, "steps": 30}).json()
        data = base64.b64decode(answer["images"][0])
        latency = time.perf_counter() - started
        original = spool / f"{i}.png"
        original.write_bytes(data)
        source, provenance, safety, mark = None, None, None, None
        if same_work:
            source = decode_image(original, config=DecodeConfig()).image
            found = detect(source, ImageSafetyConfig())
            assert blocking(found, ImageSafetyConfig()) is None
            safety = json.dumps(found)
            provenance = Provenance(image_id=f"plain{i:04d}", prompt=f"plain image {i}", seed=i, provider="automatic1111", model="loopback").published()
            mark = content_id(f"plain{i:04d}")
        files, score, _metrics, phash = process_file(
            str(original), specs, str(spool / str(i)), decode=DecodeConfig(), provenance=provenance, source=source, watermark=mark
        )
        if same_work and provenance is not None:
            files = sign_files(files, provenance, C2paConfig(), None, folder / "credentials")
        listing = []
        for made in files:
            body = made.path.read_bytes()
            target = store / f"{i}.{made.name}{made.path.suffix}"
            target.write_bytes(body)
            digest = hashlib.sha256(body).hexdigest()
            (store / f"{target.name}.meta.json").write_text(json.dumps({"sha256": digest}))
            listing.append({"name": made.name, "key": target.name, "bytes": len(body), "sha256": digest})
        if provenance is not None:
            (store / f"{i}.json").write_text(json.dumps({"provenance": provenance.as_dict(), "files": listing}, sort_keys=True))
        cursor = db.execute("insert into images (key, status, phash, quality, safety) values (?, 'done', ?, ?, ?)", (f"plain:{i}", phash, score, safety))
        db.execute("insert into attempts (image_id, provider, status, latency, cost) values (?, 'a1111', 'success', ?, 0.01)", (cursor.lastrowid, latency))
        db.commit()
    client.close()


def run_plain(images: int, url: str, same_work: bool = False) -> tuple[float, float]:
    """(wall s, CPU s) of the plain script in a fresh process."""
    folder = Path(tempfile.mkdtemp(prefix="cp-bench-plain-"))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, __file__, "--plain-same-work" if same_work else "--plain", str(images), url, str(folder)],
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--executors", default="threads,processes", help="processing.executor values to run the flow with (comma-separated)")
    args = parser.parse_args()
    n = args.images
    executors = [e.strip() for e in args.executors.split(",") if e.strip()]
    console = Console(width=170)
    load_start = os.getloadavg()
    server = PrefectServer()
    flows: dict[str, list[FlowRun]] = {e: [] for e in executors}
    plains: list[tuple[float, float]] = []
    same: list[tuple[float, float]] = []
    try:
        with LoopbackA1111(0.0, [SIZE]) as url:
            folders = {e: workdir(n, url, concurrency=8, extra={"processing": {"executor": e}}) for e in executors}
            for k in range(args.repeat):  # interleaved: a load change hits every path alike
                plains.append(run_plain(n, url))
                same.append(run_plain(n, url, same_work=True))
                for executor in executors:
                    run = run_daily(folders[executor], server, (date(2026, 1, 1) + timedelta(days=k)).isoformat())
                    if run.exit_code != 0 or run.images_done != n:
                        console.print(run.output)
                    flows[executor].append(run)
    finally:
        server.stop()
    table = Table(
        title=f"{n} images at {SIZE} px from an instant loopback provider, default post-processing ({os.cpu_count()} CPUs; min / median of {args.repeat})"
    )
    for column in ("path", "images done", "wall s", "CPU s per image", "task runs per image (terminal)", "Prefect server CPU s per 100 images"):
        table.add_column(column, justify="left" if column == "path" else "right")

    def mm(values: list[float], fmt: str = "{:.2f}") -> str:
        return f"{fmt.format(min(values))} / {fmt.format(statistics.median(values))}"

    table.add_row("plain sequential script", f"{n}", mm([p[0] for p in plains]), mm([p[1] / n for p in plains], "{:.3f}"), "-", "-")
    table.add_row(
        "plain, same work (+ NudeNet, provenance, watermark, C2PA)", f"{n}", mm([p[0] for p in same]), mm([p[1] / n for p in same], "{:.3f}"), "-", "-"
    )
    for executor, runs in flows.items():
        table.add_row(
            f"flow run, executor {executor} (Prefect's start to end)",
            f"{min(r.images_done for r in runs)}",
            mm([r.flow_wall_s for r in runs]),
            mm([r.cli_cpu_s / n for r in runs], "{:.3f}"),
            f"{max(r.task_runs for r in runs) / n:.2f} ({min(r.task_runs_terminal for r in runs)}/{max(r.task_runs for r in runs)})",
            mm([100 * r.server_cpu_s / n for r in runs], "{:.1f}"),
        )
        table.add_row(
            f"content-pipeline run, executor {executor} (whole process)",
            "",
            mm([r.process_wall_s for r in runs]),
            mm([(r.cli_cpu_s + r.server_cpu_s) / n for r in runs], "{:.3f}"),
            "",
            "",
        )
    console.print(table)
    for executor, runs in flows.items():
        for label, script in (("plain script", plains), ("plain, same work", same)):
            wall_ratio = [r.flow_wall_s / p[0] for r, p in zip(runs, script, strict=True)]
            cpu_ratio = [(r.cli_cpu_s / n) / (p[1] / n) for r, p in zip(runs, script, strict=True)]
            console.print(
                f"ratio flow ({executor}) / {label} (min / median): wall {min(wall_ratio):.2f}x / "
                f"{statistics.median(wall_ratio):.2f}x (goal <= 0.6x), CPU per image {min(cpu_ratio):.2f}x / "
                f"{statistics.median(cpu_ratio):.2f}x (goal <= 1.2x; the CLI process and its workers, without the Prefect server)"
            )
    end = os.getloadavg()
    console.print(f"load average {load_start[0]:.2f} at the start, {end[0]:.2f} / {end[1]:.2f} / {end[2]:.2f} (1/5/15 min) at the end")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("--plain", "--plain-same-work"):
        plain(int(sys.argv[2]), sys.argv[3], Path(sys.argv[4]), same_work=sys.argv[1] == "--plain-same-work")
    else:
        main()
