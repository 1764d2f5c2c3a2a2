"""The real flow at concurrency: N images (default 40) at C at once (default 8) from a
loopback provider that answers after D seconds (default 1 s) at 1024 x 1024 px, through
``content-pipeline run daily`` against a Prefect server, with the default
post-processing, upload and records. The ideal is ceil(N / C) x D (5 s): only the
provider's own time. The in-process semaphore is held around the provider call only, so
post-processing, upload and recording overlap the next calls.

    .venv/bin/python benchmarks/flow_concurrency.py [--images 40] [--concurrency 8] [--delay 1.0] [--repeat 3]

Goal on a 2-core machine: the flow run (Prefect's start to end) within 1.15x of the
ideal. The table shows min and median of ``--repeat`` runs; the last line is the ratio.
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

from flowbench import LoopbackA1111, PrefectServer, run_daily, workdir  # noqa: E402  (benchmarks/ is on sys.path when run as a script)


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--delay", type=float, default=1.0)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    console = Console(width=160)
    ideal = math.ceil(args.images / args.concurrency) * args.delay
    runs = []
    server = PrefectServer()
    try:
        with LoopbackA1111(args.delay, [args.size]) as url:
            folder = workdir(args.images, url, concurrency=args.concurrency)
            for k in range(args.repeat):
                run = run_daily(folder, server, (date(2026, 3, 1) + timedelta(days=k)).isoformat())
                if run.exit_code != 0 or run.images_done != args.images:
                    console.print(run.output)
                runs.append(run)
    finally:
        server.stop()
    table = Table(
        title=f"{args.images} images at {args.size} px, concurrency {args.concurrency}, provider answers after "
        f"{args.delay:g} s ({os.cpu_count()} CPUs; min / median of {args.repeat})"
    )
    for column in ("path", "images done", "wall s", "ideal s", "task runs (terminal)"):
        table.add_column(column, justify="left" if column == "path" else "right")
    flow = [r.flow_wall_s for r in runs]
    whole = [r.process_wall_s for r in runs]
    table.add_row(
        "flow run (Prefect's start to end)",
        f"{min(r.images_done for r in runs)}/{args.images}",
        f"{min(flow):.2f} / {statistics.median(flow):.2f}",
        f"{ideal:.2f}",
        f"{max(r.task_runs for r in runs)} ({min(r.task_runs_terminal for r in runs)})",
    )
    table.add_row("content-pipeline run (whole process)", "", f"{min(whole):.2f} / {statistics.median(whole):.2f}", "", "")
    console.print(table)
    load = os.getloadavg()[0]
    console.print(
        f"load average {load:.2f} at the end; ratio flow run / ideal (min / median): "
        f"{min(flow) / ideal:.3f}x / {statistics.median(flow) / ideal:.3f}x (goal <= 1.15x)"
    )


if __name__ == "__main__":
    main()
