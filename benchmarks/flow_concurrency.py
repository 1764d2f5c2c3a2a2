"""The real flow at concurrency: N images (default 40) at C at once (default 8) from a
loopback provider that answers after D seconds (default 1 s) at 1024 x 1024 px, through
``content-pipeline run daily`` against a Prefect server, with the default
post-processing, upload and records. The ideal is ceil(N / C) x D (5 s): only the
provider's own time. The in-process semaphore is held around the provider call only, so
post-processing, upload and recording overlap the next calls.

    .venv/bin/python benchmarks/flow_concurrency.py [--images 40] [--concurrency 8] [--delay 1.0] [--repeat 3]

Goal on a 2-core machine: the flow run (Prefect's start to end) within 1.15x of the
ideal. The flow runs once per ``processing.executor`` (``--executors``, default threads and
processes, interleaved). The table shows min and median of ``--repeat`` runs and the
ratio to the ideal; the last line the load average.
(benchmarks/chain_concurrency.py measures the provider chain alone, without the flow.)
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flowbench import FlowRun, LoopbackA1111, PrefectServer, run_daily, workdir  # noqa: E402  (benchmarks/ is on sys.path when run as a script)


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--delay", type=float, default=1.0)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--executors", default="threads,processes", help="processing.executor values to run the flow with (comma-separated)")
    args = parser.parse_args()
    console = Console(width=160)
    executors = [e.strip() for e in args.executors.split(",") if e.strip()]
    ideal = math.ceil(args.images / args.concurrency) * args.delay
    load_start = os.getloadavg()
    runs: dict[str, list[FlowRun]] = {e: [] for e in executors}
    server = PrefectServer()
    try:
        with LoopbackA1111(args.delay, [args.size]) as url:
            folders = {e: workdir(args.images, url, concurrency=args.concurrency, extra={"processing": {"executor": e}}) for e in executors}
            for k in range(args.repeat):  # interleaved: a load change hits every executor alike
                for executor in executors:
                    run = run_daily(folders[executor], server, (date(2026, 3, 1) + timedelta(days=k)).isoformat())
                    if run.exit_code != 0 or run.images_done != args.images:
                        console.print(run.output)
                    runs[executor].append(run)
    finally:
        server.stop()
    table = Table(
        title=f"{args.images} images at {args.size} px, concurrency {args.concurrency}, provider answers after "
        f"{args.delay:g} s ({os.cpu_count()} CPUs; min / median of {args.repeat})"
    )
    for column in ("path", "images done", "wall s", "ideal s", "ratio to the ideal", "task runs (terminal)"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for executor, measured in runs.items():
        flow = [r.flow_wall_s for r in measured]
        whole = [r.process_wall_s for r in measured]
        table.add_row(
            f"flow run, executor {executor} (Prefect's start to end)",
            f"{min(r.images_done for r in measured)}/{args.images}",
            f"{min(flow):.2f} / {statistics.median(flow):.2f}",
            f"{ideal:.2f}",
            f"{min(flow) / ideal:.3f}x / {statistics.median(flow) / ideal:.3f}x",
            f"{max(r.task_runs for r in measured)} ({min(r.task_runs_terminal for r in measured)})",
        )
        table.add_row(f"content-pipeline run, executor {executor} (whole process)", "", f"{min(whole):.2f} / {statistics.median(whole):.2f}", "", "", "")
    console.print(table)
    end = os.getloadavg()
    console.print(
        f"goal: flow run <= 1.15x the ideal; load average {load_start[0]:.2f} at the start, {end[0]:.2f} / {end[1]:.2f} / {end[2]:.2f} (1/5/15 min) at the end"
    )


if __name__ == "__main__":
    main()
