"""Post-processing throughput and peak memory: this project (Pillow) against libvips.

What is measured: N images (default 100) of a 1024 x 1024 real photo (scikit-image's
``astronaut``, Lanczos-upscaled, PNG), each made into the default renditions
(config.settings: ``web`` 1024 x 1024 contain, JPEG quality 85; ``thumb`` 320 x 320
cover centre crop, WebP quality 80), bytes encoded in memory and written to disk.

* ``project``: imaging.decode.decode_image + imaging.postprocess.render_one for each
  rendition, with provenance XMP (what the pipeline does, minus the lossless master);
* ``project+master``: the pipeline's whole per-image step (``process_file``): the same
  plus the PNG master (``original.png``, provenance re-stamped) and the quality score + pHash;
* ``pyvips``: the same two renditions with libvips (``thumbnail`` + ``jpegsave_buffer``
  Q 85 / ``webpsave_buffer`` Q 80), the reference.

Each is run serially, with a thread pool and with a process pool (``--workers``,
default the CPU count), each in a fresh subprocess whose whole process tree's
resident memory is sampled every 20 ms (/proc) for the peak. Prints one table.

    pip install 'pyvips[binary]'        # the reference only; not a project dependency
    python benchmarks/postprocess_throughput.py [--images 100] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_source(folder: Path) -> Path:
    import skimage.data
    from PIL import Image

    path = folder / "source-1024.png"
    Image.fromarray(skimage.data.astronaut()).resize((1024, 1024), Image.Resampling.LANCZOS).save(path)
    return path


# -- one image, per implementation (module-level: picklable for process pools) -------------
def _specs():
    from config.settings import Settings

    return Settings.model_fields["renditions"].get_default(call_default_factory=True)


def run_project(args: tuple[str, str, int, bool]) -> int:
    from config.imaging import DecodeConfig
    from imaging.decode import decode_image
    from imaging.postprocess import render_one
    from imaging.provenance import Provenance

    source, out, index, master = args
    folder = Path(out) / f"p{index}"
    folder.mkdir(parents=True, exist_ok=True)
    provenance = Provenance(
        image_id=f"bench{index}",
        prompt="an astronaut portrait, studio light",
        seed=index,
        provider="automatic1111",
        model="sdxl",
        template="bench",
        template_version=1,
    )
    if master:  # exactly what the pipeline runs per image (imaging.postprocess.process_file)
        from imaging.postprocess import process_file

        files, _score, _metrics, _phash = process_file(source, _specs(), str(folder), decode=DecodeConfig(), provenance=provenance)
        return sum(f.bytes for f in files)
    image = decode_image(Path(source), config=DecodeConfig()).image
    return sum(render_one(image, spec, folder, provenance=provenance).bytes for spec in _specs())


def run_vips(args: tuple[str, str, int, bool]) -> int:
    import pyvips

    source, out, index, _ = args
    folder = Path(out) / f"v{index}"
    folder.mkdir(parents=True, exist_ok=True)
    web = pyvips.Image.thumbnail(source, 1024, height=1024, size="down")
    data = web.jpegsave_buffer(Q=85, optimize_coding=True, interlace=True)
    (folder / "web.jpg").write_bytes(data)
    thumb = pyvips.Image.thumbnail(source, 320, height=320, crop="centre")
    data2 = thumb.webpsave_buffer(Q=80, effort=4)
    (folder / "thumb.webp").write_bytes(data2)
    return len(data) + len(data2)


def timed(args: tuple[str, str, int, bool, str]) -> tuple[int, float]:
    """Run one job in a worker process: (bytes written, CPU seconds of that worker)."""
    started = time.process_time()
    result = (run_vips if args[4] == "pyvips" else run_project)(args[:4])
    return result, time.process_time() - started


# -- memory sampling of the whole process tree ------------------------------------------
def _tree_rss_kib(pid: int) -> int:
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    stack.extend(int(c) for c in children.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def worker(impl: str, mode: str, images: int, workers: int) -> dict[str, float]:
    """Run one configuration in this process; returns images/s and peak tree RSS (MiB)."""
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss_kib(os.getpid()))
            stop.wait(0.02)

    with tempfile.TemporaryDirectory(prefix="cp-bench-") as tmp:
        source = make_source(Path(tmp))
        func = run_vips if impl == "pyvips" else run_project
        master = impl == "project+master"
        jobs = [(str(source), tmp, i, master) for i in range(images)]
        func(jobs[0])  # warm-up: imports, codec initialisation
        if impl == "pyvips":
            import pyvips

            pyvips.cache_set_max(0)  # no cached decodes: every image decoded like ours
            pyvips.concurrency_set(1 if mode != "serial" else workers)
        pool: Executor | None = None
        if mode != "serial":
            # spawn, not fork: forking a process whose libvips / Pillow threads already run can deadlock
            pool = ThreadPoolExecutor(workers) if mode == "threads" else ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
            list(pool.map(func, jobs[:workers]))  # warm-up: workers started, modules imported
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        cpu_before = os.times()
        worker_cpu = 0.0
        started = time.perf_counter()
        if pool is None:
            total = sum(func(job) for job in jobs)
        else:
            with pool:
                if mode == "threads":
                    total = sum(pool.map(func, jobs, chunksize=1))
                else:
                    results = list(pool.map(timed, [(*job, impl) for job in jobs], chunksize=4))
                    total = sum(r[0] for r in results)
                    worker_cpu = sum(r[1] for r in results)
        elapsed = time.perf_counter() - started
        cpu_after = os.times()
        cpu = sum(getattr(cpu_after, f) - getattr(cpu_before, f) for f in ("user", "system")) + worker_cpu
        stop.set()
        sampler.join()
    return {"images_per_s": images / elapsed, "seconds": elapsed, "peak_mib": peak[0] / 1024, "bytes": total, "cpu_per_wall": cpu / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per configuration")
    parser.add_argument("--only", choices=["project", "project+master", "pyvips"], action="append")
    parser.add_argument("--worker", nargs=2, metavar=("IMPL", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1], args.images, args.workers)))
        return
    impls = args.only or ["project", "project+master", "pyvips"]
    try:
        import pyvips  # noqa: F401
    except ImportError:
        if "pyvips" in impls:
            print("pyvips not installed (pip install 'pyvips[binary]'): reference skipped", file=sys.stderr)
            impls = [i for i in impls if i != "pyvips"]
    rows = []
    for impl in impls:
        for mode in ("serial", "threads", "processes"):
            command = [sys.executable, __file__, "--images", str(args.images), "--workers", str(args.workers), "--worker", impl, mode]
            try:
                done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=args.timeout)
            except subprocess.TimeoutExpired:
                print(f"{impl} {mode}: no result within {args.timeout} s", file=sys.stderr)
                continue
            if done.returncode != 0:
                print(f"{impl} {mode} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
                continue
            result = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append((impl, mode, result))
            print(f"  {impl:15s} {mode:9s} {result['images_per_s']:6.2f} images/s", file=sys.stderr)
    print(
        f"\npost-processing, {args.images} images of 1024x1024, default renditions (web JPEG q85 1024 contain, "
        f"thumb WebP q80 320 cover), {args.workers} workers, {os.cpu_count()} CPUs"
    )
    print(f"load average before: {os.getloadavg()[0]:.2f} (other processes share these CPUs)")
    print(f"{'implementation':16s} {'mode':10s} {'images/s':>9s} {'seconds':>8s} {'CPU/wall':>8s} {'img/CPU-s':>9s} {'peak MiB':>9s} {'output MB':>9s}")
    for impl, mode, r in rows:
        print(
            f"{impl:16s} {mode:10s} {r['images_per_s']:9.2f} {r['seconds']:8.2f} {r['cpu_per_wall']:8.2f} "
            f"{r['images_per_s'] / max(r['cpu_per_wall'], 1e-9):9.2f} {r['peak_mib']:9.0f} {r['bytes'] / 1e6:9.1f}"
        )
    print(
        "CPU/wall: cores kept busy on average (1.0 = one core; threads stay near 1 while the GIL is held);\n"
        "img/CPU-s: images per CPU-second, the figure that other load on the machine does not change"
    )
    vips = max((r["images_per_s"] for i, _, r in rows if i == "pyvips"), default=None)
    ours = max((r["images_per_s"] for i, _, r in rows if i == "project"), default=None)
    if vips and ours:
        print(f"\nbest project / best libvips throughput: {ours / vips:.2f}x")
        per_cpu = {i: max(r["images_per_s"] / max(r["cpu_per_wall"], 1e-9) for j, _, r in rows if j == i) for i in ("project", "pyvips")}
        print(f"best project / best libvips images per CPU-second: {per_cpu['project'] / per_cpu['pyvips']:.2f}x")


if __name__ == "__main__":
    main()
