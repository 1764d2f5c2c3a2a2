"""Wall time of N images through the provider chain ALONE at concurrency C, against a
loopback AUTOMATIC1111 server that answers every generation after D seconds.

This is not the pipeline's throughput: post-processing, upload and the records of a real
run are left out. benchmarks/flow_concurrency.py measures the real flow
(``content-pipeline run``) at the same settings; read that one for the product's figure.

The ideal is ceil(N / C) x D (40 images, 8 at once, 1 s each: 5 s); the goal is to stay
within 1.15x of it, i.e. the chain, the HTTP client, image validation and (second row)
the database records add less than 15 % on top of the provider's own time.

    .venv/bin/python benchmarks/chain_concurrency.py [--images 40] [--concurrency 8] [--delay 1.0]

Rows:
  chain            ProviderChain.generate from C threads (provider + validation)
  chain+records    generation.generate.generate_image: policy check, attempt rows in SQLite,
                   spool file, status updates, as the pipeline runs it
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from domain.model import GenerationRequest, ImageSlot  # noqa: E402
from config.imaging import PolicyConfig  # noqa: E402
from config.secrets import Secrets  # noqa: E402
from providers.chain import RetryConfig  # noqa: E402
from providers.automatic1111 import Automatic1111Config, Automatic1111Provider  # noqa: E402
from providers.chain import ProviderChain  # noqa: E402
from tests.providers.servers import A1111Server, photo  # noqa: E402


def make_chain(url: str, concurrency: int) -> ProviderChain:
    provider = Automatic1111Provider(config=Automatic1111Config(enabled=True, base_url=url, timeout_s=30), secrets=Secrets(_env_file=None))
    return ProviderChain([provider], retry=RetryConfig(max_retries=0))


def run_chain(url: str, images: int, concurrency: int, size: int) -> tuple[float, int]:
    chain = make_chain(url, concurrency)
    requests = [GenerationRequest(prompt=f"benchmark image {i}", width=size, height=size, seed=i) for i in range(images)]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(chain.generate, requests))
    wall = time.perf_counter() - started
    chain.close()
    return wall, sum(1 for r in results if r.provider == "automatic1111")


def run_with_records(url: str, images: int, concurrency: int, size: int) -> tuple[float, int]:
    from domain.templates import TemplateLibrary
    from storage.db import Database
    from generation.generate import generate_image
    from generation.record import record_planned

    folder = Path(tempfile.mkdtemp(prefix="cp-bench-"))
    db = Database(f"sqlite:///{folder / 'bench.db'}")
    library = TemplateLibrary.load(ROOT / "templates")
    slots = [ImageSlot("adhoc", date(2026, 11, 21), "bench", i, "products", template="ceramic-mug") for i in range(images)]
    from storage.ledger import ImageLedger

    pks = record_planned(db, library, slots)
    ledger = ImageLedger(db)
    with db.write_session() as session:  # the benchmark's size, not the template's (before any claim)
        for row in ledger.rows(pks):
            row.width = row.height = size
            session.add(row)
        session.commit()
    chain = make_chain(url, concurrency)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        rows = list(pool.map(lambda pk: generate_image(db, chain, pk, spool_dir=folder / "spool", policy=PolicyConfig()), pks))
    wall = time.perf_counter() - started
    chain.close()
    return wall, sum(1 for r in rows if r.status == "generated" and r.provider == "automatic1111")


def _serve(delay: float, size: int, conn) -> None:
    """Child process: a loopback A1111 server (its own interpreter, as a real provider would be)."""
    photo(size, size)
    with A1111Server(delay_s=delay) as server:
        conn.send(server.url)
        conn.recv()  # until the parent says stop


class LoopbackProvider:
    """The loopback A1111 server in a child process (so its JSON / base64 work does not
    compete with the measured client for this interpreter's GIL)."""

    def __init__(self, delay: float, size: int) -> None:
        import multiprocessing

        self._conn, child = multiprocessing.Pipe()
        self._process = multiprocessing.get_context("spawn").Process(target=_serve, args=(delay, size, child), daemon=True)

    def __enter__(self) -> str:
        self._process.start()
        return str(self._conn.recv())

    def __exit__(self, *exc: object) -> None:
        self._conn.send("stop")
        self._process.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--delay", type=float, default=1.0, help="seconds the loopback provider takes per image")
    parser.add_argument("--size", type=int, default=1024, help="image side in pixels (1024: the templates' size)")
    parser.add_argument("--goal", type=float, default=1.15)
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; best and median are shown")
    args = parser.parse_args()
    ideal = math.ceil(args.images / args.concurrency) * args.delay
    table = Table(title=f"{args.images} images, concurrency {args.concurrency}, provider answers after {args.delay:g} s")
    for column in ("path", "images ok", "best wall s", "median wall s", "ideal s", "best ratio", "median ratio", f"goal <= {args.goal:g}x (best)"):
        table.add_column(column, justify="right" if column != "path" else "left")
    for label, runner in (("chain", run_chain), ("chain+records", run_with_records)):
        walls, oks = [], []
        with LoopbackProvider(args.delay, args.size) as url:
            for _ in range(args.repeat):
                wall, ok = runner(url, args.images, args.concurrency, args.size)
                walls.append(wall)
                oks.append(ok)
        best, median = min(walls), statistics.median(walls)
        table.add_row(
            label,
            f"{min(oks)}/{args.images}",
            f"{best:.2f}",
            f"{median:.2f}",
            f"{ideal:.2f}",
            f"{best / ideal:.3f}x",
            f"{median / ideal:.3f}x",
            "[green]met[/]" if best / ideal <= args.goal and min(oks) == args.images else "[red]missed[/]",
        )
    Console(width=140).print(table)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    Console(width=140).print(f"{os.cpu_count()} CPUs, load average {load:.2f} at the end (other processes slow the client down)")


if __name__ == "__main__":
    main()
