"""What a Prefect global concurrency limit costs next to the in-process semaphore.

    .venv/bin/python benchmarks/global_limits.py [--calls 12] [--delay 0.2]

Runs ``--calls`` placeholder-provider calls (each sleeping ``--delay`` seconds, 256 x 256
pixels) from 4 threads, at most ``limit`` at once, two ways: a threading semaphore
(what one process uses) and generation.limits.GloballyLimitedProvider (the
``provider-placeholder`` limit on a Prefect server, what several workers share).
Prints a table: wall seconds, the ideal (calls / limit x per-call time) and the
overhead per call in seconds. Starts a temporary Prefect server (prefect_test_harness,
private PREFECT_HOME); nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="cp-bench-prefect-")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
os.environ.pop("PREFECT_API_URL", None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=12)
    parser.add_argument("--delay", type=float, default=0.2, help="seconds each provider call takes")
    args = parser.parse_args()

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.testing.utilities import prefect_test_harness
    from rich.console import Console
    from rich.table import Table

    from domain.model import GenerationRequest
    from config.secrets import Secrets
    from providers.placeholder import PlaceholderConfig, PlaceholderProvider
    from generation.limits import GloballyLimitedProvider, limit_name

    provider = PlaceholderProvider(config=PlaceholderConfig(delay_s=args.delay), secrets=Secrets())
    request = GenerationRequest(prompt="benchmark", width=256, height=256, seed=1)
    started = time.perf_counter()
    provider.generate(request)
    per_call = time.perf_counter() - started

    def timed(call, calls: int) -> float:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda _: call(), range(calls)))
        return time.perf_counter() - started

    table = Table(title=f"{args.calls} placeholder calls of {per_call:.3f} s from 4 threads")
    for column in ("limit", "how", "wall s", "ideal s", "overhead s / call"):
        table.add_column(column, justify="right" if column != "how" else "left")
    with prefect_test_harness(server_startup_timeout=180):
        with get_client(sync_client=True) as client:
            for limit in (1, 2):
                semaphore = threading.BoundedSemaphore(limit)

                def local(semaphore: threading.BoundedSemaphore = semaphore) -> None:
                    with semaphore:
                        provider.generate(request)

                name = limit_name(provider.name)
                try:
                    client.delete_global_concurrency_limit_by_name(name)
                except Exception:  # none yet
                    pass
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))
                wrapped = GloballyLimitedProvider(provider)
                ideal = args.calls / limit * per_call
                for how, call in (("in-process semaphore", local), ("Prefect global limit", lambda wrapped=wrapped: wrapped.generate(request))):
                    wall = timed(call, args.calls)
                    table.add_row(str(limit), how, f"{wall:.2f}", f"{ideal:.2f}", f"{(wall - ideal) / args.calls:.3f}")
    Console().print(table)


if __name__ == "__main__":
    main()
